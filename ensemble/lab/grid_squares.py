"""Should the grid member's head be fitted on a sample of each train picture's squares, or on its whole grid?

    python -m ensemble.lab.grid_squares data/features [--seeds 0 1 2] [--json FILE]

Until 2026-12-07 (evening) the grid member (``lite0_native``) was fitted on a train picture's features averaged
over at most ``GRID_TRAIN_SQUARES`` of its grid squares (``lite0_224_grid_to11_std``), while serving averages over
all of them; ``lite0_224_grid_to11_std_all`` caches the whole grid for train pictures too, and ships since.
Rows, each the whole ensemble (the whole-picture member as shipped), judged out of fold (grouped folds,
telegram view, sources weighted equally) on the features serving reads, the whole grid:

  * ``sampled, as chosen``: heads fitted and scored on sampled squares, calibrated on those logits: the
    figures the selection read until then;
  * ``sampled, as served``: the same heads (each fold's), scored on the whole grid of the held-out pictures,
    with the calibration fitted on the row above: what that pipeline served;
  * ``whole grid``: heads fitted and scored on the whole grid, calibrated on their own out-of-fold logits.

The test rows (telegram view) are scored afterwards with heads fitted on the whole train split, to report,
never to choose.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from ensemble import calibration, metrics
from ensemble.build import FOLD_SEED, LITE0_WHOLE, MEMBERS
from ensemble.features import load_cache
from ensemble.heads import (
    TrainingSet,
    fit_full,
    memo_file,
    out_of_fold,
    remembered_out_of_fold,
    training_set,
)
from ensemble.lab.v3_changes import cached_test_rows, scored_by_dataset, unseen_logloss

GRID_MEMBER = "lite0_native"
SAMPLED_VIEW = "lite0_224_grid_to11_std"
WHOLE_GRID_VIEW = "lite0_224_grid_to11_std_all"
LOGLOSS_SOURCES = ("art", "cifake", "camera", "galleries")  # printed alone beside the overall figures


def scored_on(data: TrainingSet, recipe, view: str, memo: Path | None = None) -> np.ndarray:
    """Out-of-fold logits of ``recipe``'s fold heads on another cached view of the held-out rows (``view``), kept
    in ``memo`` beside the recipe's own (``heads.memo_file``)."""
    if memo is None:
        return out_of_fold(data, recipe, scored_view=view)
    fitted = memo_file(data, recipe, memo)
    path = fitted.with_name(fitted.stem + f"_on_{view}.npy")
    if not path.is_file():
        np.save(path, out_of_fold(data, recipe, scored_view=view))
    return np.load(path)


def summary(table: dict) -> dict:
    """The overall row, the mean over sources, the unseen sources' mean logloss, and a few sources' logloss."""
    return {
        **{key: table["overall"][key] for key in ("logloss", "auc", "unsure", "confident_accuracy")},
        "unseen_logloss": unseen_logloss(table),
        **{f"{name}_logloss": table[name]["logloss"] for name in LOGLOSS_SOURCES if name in table},
    }


def run(cache: str, seeds: list[int]) -> dict:
    whole_member = LITE0_WHOLE  # the whole-picture member shipped beside it when this was measured
    # the shipped grid recipe (penalty, shares, views) on either cached view
    sampled = replace(MEMBERS[GRID_MEMBER], backbone_view=SAMPLED_VIEW)
    whole_grid = replace(MEMBERS[GRID_MEMBER], backbone_view=WHOLE_GRID_VIEW)
    names = [whole_member.backbone_view, sampled.backbone_view, WHOLE_GRID_VIEW]
    rows, arrays = load_cache(cache, names)
    test = cached_test_rows(rows, arrays, names)
    memo = Path(cache) / "oof"
    record: dict = {"out_of_fold": {}, "test": {}}
    for seed in seeds:
        data = training_set(rows, arrays, ("telegram", "small"), fold_seed=seed)
        judged = data.view == "telegram"
        labels, sources = data.label[judged], data.source[judged]
        whole = remembered_out_of_fold(data, whole_member, memo)[judged]
        grid = {
            "sampled, as chosen": remembered_out_of_fold(data, sampled, memo)[judged],
            "sampled, as served": scored_on(data, sampled, WHOLE_GRID_VIEW, memo)[judged],
            "whole grid": remembered_out_of_fold(data, whole_grid, memo)[judged],
        }
        fits = {}
        for name in ("sampled, as chosen", "whole grid"):
            fits[name] = calibration.fit_from_out_of_fold(
                {"logit": (whole + grid[name]) / 2, "label": labels, "source": sources}
            )
        fits["sampled, as served"] = fits["sampled, as chosen"]
        entry = {}
        for name, logits in grid.items():
            cal, band = fits[name]["calibration"], calibration.band_of(fits[name]["unsure"])
            p = calibration.sigmoid(cal["scale"] * (whole + logits) / 2 + cal["shift"])
            member_p = calibration.sigmoid(cal["scale"] * logits + cal["shift"])
            entry[name] = {
                "ensemble": summary(metrics.table(p, labels, sources, band)),
                "grid member": summary(metrics.table(member_p, labels, sources, band)),
                "band": list(band),
            }
        record["out_of_fold"][seed] = entry
        print(f"fold seed {seed}: done", file=sys.stderr, flush=True)
        if seed != seeds[0]:
            continue
        whole_test = fit_full(data, whole_member).logits(test["features"][whole_member.backbone_view])
        for name, recipe in (("sampled, as served", sampled), ("whole grid", whole_grid)):
            cal, band = fits[name]["calibration"], calibration.band_of(fits[name]["unsure"])
            grid_test = fit_full(data, recipe).logits(test["features"][WHOLE_GRID_VIEW])
            p = calibration.sigmoid(cal["scale"] * (whole_test + grid_test) / 2 + cal["shift"])
            record["test"][name] = scored_by_dataset(p, test, band)
    return record


def print_record(record: dict) -> None:
    columns = ("logloss", "unseen_logloss", "auc", "unsure", "confident_accuracy", "art_logloss", "camera_logloss")
    print("| fold seed | grid head | rows | " + " | ".join(columns) + " |\n|---|---|---|" + "---|" * len(columns))
    for seed, entry in record["out_of_fold"].items():
        for name, scored in entry.items():
            for who in ("ensemble", "grid member"):
                cells = [f"{scored[who].get(c, float('nan')):.4f}" for c in columns]
                print(f"| {seed} | {name} | {who} | " + " | ".join(cells) + " |")
    test_columns = ("logloss", "auc", "unsure", "confident_accuracy", "real_called_fake")
    print("\n| grid head | test split | " + " | ".join(test_columns) + " | art |\n|---|---|" + "---|" * 6)
    for name, datasets in record["test"].items():
        for dataset, scored in datasets.items():
            art = scored.get("art", {}).get("logloss", float("nan"))
            cells = [f"{scored['overall'][c]:.4f}" for c in test_columns]
            print(f"| {name} | {dataset} | " + " | ".join(cells) + f" | {art:.4f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ensemble.lab.grid_squares", description=__doc__.splitlines()[0])
    parser.add_argument("cache", nargs="?", default="data/features")
    parser.add_argument("--seeds", type=int, nargs="+", default=[FOLD_SEED])
    parser.add_argument("--json", help="write every table here")
    args = parser.parse_args(argv)
    record = run(args.cache, args.seeds)
    print_record(record)
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
