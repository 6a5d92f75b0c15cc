"""How much training weight real-vs-ai's familiar sources (CIFAKE, art, diffusiondb-coco) should get: the shipped
members refitted with each step of their shares, out of fold and on the cached test pictures.

    python -m ensemble.lab.shares data/features [--steps before step-1 ...] [--seeds 0 1 2] [--json FILE]

Detection v3 first shipped with the shares of before the camera photos came (CIFAKE 0.08, art 0.10,
diffusiondb-coco 0.08) and lost on those sources: the camera photos took weight from them. Each step here
changes only those three shares, on both members. The choice reads the out-of-fold rows (each fold seed,
telegram view, one Platt fit on them, sources weighted equally): the logloss over all of them, and over the
unseen sources alone (``heads.UNSEEN_SOURCES``), which must not get worse. The test rows are scored afterwards,
to report, never to choose.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from ensemble import calibration, metrics
from ensemble.build import FOLD_SEED, MEMBERS
from ensemble.features import load_cache
from ensemble.heads import SHARES, fit_full, remembered_out_of_fold, training_set
from ensemble.lab.selection import scored
from ensemble.lab.v3_changes import cached_test_rows, scored_by_dataset

FAMILIAR = ("cifake", "art", "diffusiondb-coco")
# (cifake, art, diffusiondb-coco) per step; "shipped" is ``heads.SHARES``
STEPS = {
    "before": (0.08, 0.10, 0.08),
    "step-1": (0.12, 0.14, 0.10),
    "step-2": (0.16, 0.18, 0.08),
    "shipped": tuple(SHARES[name] for name in FAMILIAR),
    "step-4": (0.32, 0.34, 0.16),
}


# One other source's share moved, the rest as shipped: the pool's REAL art (`human-art`, 0.06 shipped), for
# real-vs-ai's `art`, whose logloss is the target still missed (docs/experiments.md, "The grid member fitted on
# the whole grid")
ONE_SOURCE_STEPS = {"human-art=0.12": {"human-art": 0.12}, "human-art=0.18": {"human-art": 0.18}}


def changes_of(step: str) -> dict:
    """The shares a step sets (the rest are ``heads.SHARES``)."""
    return dict(ONE_SOURCE_STEPS[step]) if step in ONE_SOURCE_STEPS else dict(zip(FAMILIAR, STEPS[step]))


def shares_of(step: str) -> dict:
    return SHARES | changes_of(step)


def members_of(step: str) -> dict:
    return {name: replace(recipe, shares=shares_of(step)) for name, recipe in MEMBERS.items()}


def run(cache: str, steps: list[str], seeds: tuple[int, ...] = (FOLD_SEED,)) -> dict:
    """Per step: the out-of-fold figures for each fold seed, and the test rows scored with the first seed's
    calibration and band."""
    names = sorted({recipe.backbone_view for recipe in MEMBERS.values()})
    rows, arrays = load_cache(cache, names)
    test = cached_test_rows(rows, arrays, names)
    record: dict = {step: {"shares": changes_of(step), "out_of_fold": {}} for step in steps}
    for seed in seeds:
        data = training_set(rows, arrays, ("telegram", "small"), fold_seed=seed)
        judged = data.view == "telegram"
        labels, sources = data.label[judged], data.source[judged]
        for step in steps:
            recipes = members_of(step)
            logits = {n: remembered_out_of_fold(data, r, Path(cache) / "oof")[judged] for n, r in recipes.items()}
            mean = np.mean(list(logits.values()), axis=0)
            summary = scored(mean, labels, sources, data.long_side[judged], data.group[judged])
            fitted = calibration.fit_from_out_of_fold({"logit": mean, "label": labels, "source": sources})
            band = calibration.band_of(fitted["unsure"])
            record[step]["out_of_fold"][seed] = {key: value for key, value in summary.items() if key != "p"} | {
                "by_source": metrics.table(fitted["probabilities"], labels, sources, band),
                "band": list(band),
            }
            print(f"{step}, fold seed {seed}: done", file=sys.stderr, flush=True)
            if seed != seeds[0]:
                continue
            heads = {n: fit_full(data, r) for n, r in recipes.items()}
            test_mean = np.mean([heads[n].logits(test["features"][r.backbone_view]) for n, r in recipes.items()], 0)
            scale, shift = fitted["calibration"]["scale"], fitted["calibration"]["shift"]
            p = calibration.sigmoid(scale * test_mean + shift)
            record[step]["test"] = scored_by_dataset(p, test, band)
    return record


def print_record(record: dict) -> None:
    """One row per step and fold seed (out of fold), then the first seed's test figures; the mean over seeds
    is what the choice reads."""
    print(
        "| step (cifake, art, ddb) | fold seed | out of fold: all / unseen logloss | familiar | cifake | art | camera |"
    )
    print("|---|---|---|---|---|---|---|")
    for step, entry in record.items():
        for seed, oof in entry["out_of_fold"].items():
            by_source = oof["by_source"]
            cells = [
                f"{step} {tuple(changes_of(step).values())}",
                str(seed),
                f"{oof['overall_logloss']:.4f} / {oof['unseen_logloss']:.4f}",
                f"{oof['familiar_logloss']:.4f}",
                *(f"{by_source[n]['logloss']:.3f}" if n in by_source else "-" for n in ("cifake", "art", "camera")),
            ]
            print("| " + " | ".join(cells) + " |")
        if len(entry["out_of_fold"]) > 1:
            seeds = entry["out_of_fold"].values()
            overall = np.mean([oof["overall_logloss"] for oof in seeds])
            unseen = np.mean([oof["unseen_logloss"] for oof in seeds])
            print(f"| {step} | mean | {overall:.4f} / {unseen:.4f} | | | | |")
    print()
    print(
        "| step | real-vs-ai test: cifake logloss, accuracy | art "
        "| pool test logloss / AUC / UNSURE / right when not UNSURE |"
    )
    print("|---|---|---|---|")
    for step, entry in record.items():
        real_vs_ai, pool = entry["test"].get("real-vs-ai", {}), entry["test"].get("pool", {})
        cells = [
            step,
            f"{real_vs_ai['cifake']['logloss']:.3f}, {real_vs_ai['cifake']['accuracy']:.3f}"
            if "cifake" in real_vs_ai
            else "-",
            f"{real_vs_ai['art']['logloss']:.3f}" if "art" in real_vs_ai else "-",
            " / ".join(f"{pool['overall'][k]:.3f}" for k in ("logloss", "auc", "unsure", "confident_accuracy"))
            if pool
            else "-",
        ]
        print("| " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ensemble.lab.shares", description=__doc__.splitlines()[0])
    parser.add_argument("cache", nargs="?", default="data/features")
    parser.add_argument("--steps", nargs="+", choices=[*STEPS, *ONE_SOURCE_STEPS], default=list(STEPS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[FOLD_SEED], help="fold seeds (test: the first)")
    parser.add_argument("--json", help="write every table here")
    args = parser.parse_args(argv)
    record = run(args.cache, args.steps, tuple(args.seeds))
    print_record(record)
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
