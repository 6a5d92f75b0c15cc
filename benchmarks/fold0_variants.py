"""One-member recipe experiments on fold 0, compared out of fold with the shipped lite0_fold0.

Each variant changes one thing in the shipped member's recipe (same fold, same seed, so the same
out-of-fold pictures) and prints the row that README's "Tried and not shipped" table shows: per source,
log-loss / AUC / accuracy over the plain and telegram views, each model with its own Platt fit (sources
weighted equally). Nothing here touches the test split or weights/.

    python -m benchmarks.fold0_variants ../shared/datasets/real-vs-ai shipped
    python -m benchmarks.fold0_variants ../shared/datasets/real-vs-ai cifake-views  # about 25 min
    python -m benchmarks.fold0_variants ../shared/datasets/real-vs-ai lite1         # about 27 min
    python -m benchmarks.fold0_variants ../shared/datasets/real-vs-ai wise          # about 10 min

- cifake-views: 100 steps an epoch instead of 80, the extra 640 pictures all CIFAKE (1,024 CIFAKE views
  an epoch instead of 384; the other sources keep their counts).
- lite1: the Lite1 backbone instead of Lite0.
- wise: no training; the shipped member's weights interpolated towards its linear-probe start
  (WiSE-FT), at several mixing weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from ensemble import calibration, metrics
from ensemble import train as training

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = next(plan for plan in training.DEFAULT_PLAN if plan.name == "lite0_fold0")


def _row(name: str, logits, labels, sources) -> str:
    weights = calibration.source_balanced_weights(sources)
    scale, shift = calibration.fit_platt(logits, labels, weights)
    table = metrics.table(calibration.sigmoid(scale * np.asarray(logits) + shift), labels, sources, band=0.0)
    cells = " | ".join(f"{v['logloss']:.3f} / {v['auc']:.3f} / {v['accuracy']:.3f}" for v in table.values())
    return f"| {name} | {cells} |"


def _header() -> str:
    sources = ["art", "cifake", "diffusiondb-coco", "modern", "overall"]
    return "| variant | " + " | ".join(sources) + " |\n" + "|---" * (len(sources) + 1) + "|"


def _trained_variant(data_dir: str, plan, shares: dict) -> dict:
    with tempfile.TemporaryDirectory() as out:
        training.train(data_dir, out, [plan], command="benchmarks.fold0_variants", shares=shares)
        return dict(np.load(Path(out) / "oof_predictions.npz"))


def _wise(data_dir: str, alphas: list[float]) -> list[str]:
    from ensemble.augment import telegram_view
    from ensemble.classifier import load_member
    from ensemble.data import assign_folds, load_dataset
    from ensemble.predict_batch import member_logits
    from ensemble.preprocess import DEFAULT_POLICY

    plan = SHIPPED
    members = json.loads((ROOT / "weights/manifest.json").read_text())["members"]
    spec = next(member for member in members if member["name"] == plan.name)
    samples = load_dataset(data_dir, split="train")
    folds = assign_folds(samples, training.FOLDS, training.FOLD_SEED)
    images = training._decode_all(samples)
    train_rows = [i for i, f in enumerate(folds) if f != plan.held_out_fold and images[i] is not None]
    # The linear-probe start exactly as train_member makes it (same seed, same batches).
    start, _batches = training.start_member(
        plan,
        [images[i] for i in train_rows],
        [samples[i].label for i in train_rows],
        [samples[i].source for i in train_rows],
    )
    start_weights = start.get_weights()
    member = load_member(ROOT / "weights", spec)
    tuned_weights = member.get_weights()
    rows = [i for i in training._oof_rows(samples, folds, plan.held_out_fold, plan.seed) if images[i] is not None]
    labels = np.array([samples[i].label for i in rows] * 2)
    sources = [samples[i].source for i in rows] * 2
    pictures = [images[i] for i in rows] + [telegram_view(images[i]) for i in rows]
    lines = []
    for alpha in alphas:
        member.set_weights([alpha * t + (1 - alpha) * s for t, s in zip(tuned_weights, start_weights)])
        logits = member_logits(member, pictures, plan.input_size, DEFAULT_POLICY)
        lines.append(_row(f"WiSE-FT, {alpha:g} fine-tuned + {1 - alpha:g} linear probe", logits, labels, sources))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fold0_variants", description=__doc__.split("\n")[0])
    parser.add_argument("data_dir")
    parser.add_argument("variant", choices=("shipped", "cifake-views", "lite1", "wise"))
    parser.add_argument("--alphas", default="1.0,0.8,0.6,0.4", help="wise: the fine-tuned weights' shares")
    args = parser.parse_args(argv)

    print(_header())
    if args.variant == "shipped":
        oof = dict(np.load(ROOT / "weights/oof_predictions.npz"))
        mine = oof["member"] == SHIPPED.name
        print(_row("shipped lite0_fold0", oof["logit"][mine], oof["label"][mine], oof["source"][mine]))
    elif args.variant == "wise":
        print("\n".join(_wise(args.data_dir, [float(a) for a in args.alphas.split(",")])))
    else:
        if args.variant == "cifake-views":
            plan = replace(SHIPPED, steps_per_epoch=100)
            shares = {"cifake": 0.32, "diffusiondb-coco": 0.20, "art": 0.176, "modern": 0.304}
        else:
            plan, shares = replace(SHIPPED, name="lite1_fold0", backbone="lite1"), training.SOURCE_SHARES
        oof = _trained_variant(args.data_dir, plan, shares)
        print(_row(args.variant, oof["logit"], oof["label"], oof["source"]))
        # Two members that both never saw these pictures: how much does averaging them gain?
        shipped = dict(np.load(ROOT / "weights/oof_predictions.npz"))
        mine = shipped["member"] == SHIPPED.name
        theirs = shipped["logit"][mine]
        if np.array_equal(shipped["label"][mine], oof["label"]) and len(theirs) == len(oof["logit"]):
            mean = (theirs + oof["logit"]) / 2
            print(_row(f"mean of shipped lite0_fold0 and {args.variant}", mean, oof["label"], oof["source"]))
            print(
                f"\nlogit correlation {np.corrcoef(theirs, oof['logit'])[0, 1]:.2f}; standard deviation "
                f"{theirs.std():.2f} (shipped), {oof['logit'].std():.2f} ({args.variant}), {mean.std():.2f} (mean)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
