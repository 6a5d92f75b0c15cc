"""What each Detection v3 change bought: the v3 members against the same members with one change undone (or the
high-pass member added back), out of fold (over fold seeds) and on the cached test pictures.

    python -m ensemble.lab.v3_changes data/features [--seeds 0 1 2] [--variants v3 no-camera] [--json FILE]

Every variant is judged like the shipped ensemble: member heads fitted per fold (folds keep each source group
whole), the mean logit Platt-scaled and the UNSURE band set on those out-of-fold logits (telegram view, sources
weighted equally). Selection reads the out-of-fold rows only. The test rows (their telegram view, as
``python -m ensemble train`` caches it) are scored afterwards with heads fitted on the whole train split and the
seed-0 calibration, to report, never to choose.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from ensemble import calibration, metrics
from ensemble.build import FOLD_SEED, HIGHPASS, LITE0_WHOLE, MEMBERS
from ensemble.features import load_cache
from ensemble.heads import UNSEEN_SOURCES, fit_full, remembered_out_of_fold, training_set
from ensemble.lab.selection import V3_CHANGES

# One member's head penalty moved (the other as shipped), measured after the familiar sources' shares
# (docs/experiments.md, "Familiar sources' shares"): none did better out of fold. The whole-picture member was the
# Lite0 one then (``ensemble.build.LITE0_WHOLE``); the Lite2 one took its place and its name here.
ONE_MEMBER_CHANGES = {
    "whole-l2=3e-3": ("lite2_whole", {"l2": 3e-3}),
    "whole-l2=1e-3": ("lite2_whole", {"l2": 1e-3}),
    "grid-l2=3e-4": ("lite0_native", {"l2": 3e-4}),
    "grid-l2=3e-3": ("lite0_native", {"l2": 3e-3}),
}
# The Lite0 whole-picture member that the Lite2 one replaced (docs/experiments.md, "A Lite2 whole-picture
# member"): beside the shipped two, or back in the Lite2 one's place (the pair shipped until then)
LITE0_CHANGES = {
    "with-lite0-whole": {"lite0_whole": LITE0_WHOLE},
    "lite0-whole-for-lite2": {"lite2_whole": None, "lite0_whole": LITE0_WHOLE},
}
VARIANTS = (
    {"v3": {}}
    | V3_CHANGES
    | {"with-highpass": {}}
    | {name: {} for name in ONE_MEMBER_CHANGES}
    | {name: {} for name in LITE0_CHANGES}
)


def members_of(variant: str) -> dict:
    """The shipped members with the variant's change (on one member for ``ONE_MEMBER_CHANGES``), or
    (``with-highpass``) with the high-pass member beside them, or (``LITE0_CHANGES``) with the Lite0 whole-picture
    member added or in place of one (``None``)."""
    recipes = {name: replace(recipe, **VARIANTS[variant]) for name, recipe in MEMBERS.items()}
    if variant in ONE_MEMBER_CHANGES:
        member, change = ONE_MEMBER_CHANGES[variant]
        recipes[member] = replace(recipes[member], **change)
    if variant in LITE0_CHANGES:
        recipes = {name: recipe for name, recipe in (recipes | LITE0_CHANGES[variant]).items() if recipe is not None}
    return recipes | {"lite0_highpass": HIGHPASS} if variant == "with-highpass" else recipes


def cached_test_rows(rows: list[dict], arrays: dict, view_names: list[str]) -> dict:
    """The cached telegram view of every test picture: features per backbone view, labels, sources, groups."""
    picture = arrays["telegram/row"]
    keep = np.array([rows[i]["split"] == "test" for i in picture], dtype=bool)
    chosen = picture[keep]
    return {
        "features": {name: arrays[f"telegram/{name}"][keep] for name in view_names},
        "label": np.array([rows[i]["label"] for i in chosen]),
        "dataset": np.array([rows[i]["dataset"] for i in chosen]),
        "source": np.array([rows[i]["source"] for i in chosen]),
        "group": np.array([rows[i]["group"] or rows[i]["source"] for i in chosen]),
    }


def scored_by_dataset(p: np.ndarray, test: dict, band) -> dict:
    """``metrics.table`` by source (with "overall") of the ``cached_test_rows`` of each data set."""
    return {
        dataset: metrics.table(p[rows_of], test["label"][rows_of], test["source"][rows_of], band)
        for dataset in np.unique(test["dataset"])
        for rows_of in [test["dataset"] == dataset]
    }


def run(cache: str, seeds: list[int], variants: list[str] | None = None) -> dict:
    chosen = variants or list(VARIANTS)
    names = sorted({recipe.backbone_view for variant in chosen for recipe in members_of(variant).values()})
    rows, arrays = load_cache(cache, names)
    test = cached_test_rows(rows, arrays, names)
    memo = Path(cache) / "oof"
    record: dict = {"out_of_fold": {}, "test": {}}
    for variant in chosen:
        recipes = members_of(variant)
        for seed in seeds:
            data = training_set(rows, arrays, ("telegram", "small"), fold_seed=seed)
            judged = data.view == "telegram"
            labels, sources = data.label[judged], data.source[judged]
            members = {name: remembered_out_of_fold(data, r, memo)[judged] for name, r in recipes.items()}
            mean = np.mean(list(members.values()), axis=0)
            fitted = calibration.fit_from_out_of_fold({"logit": mean, "label": labels, "source": sources})
            band = calibration.band_of(fitted["unsure"])
            scale, shift = fitted["calibration"]["scale"], fitted["calibration"]["shift"]
            entry = {"ensemble": metrics.table(fitted["probabilities"], labels, sources, band)}
            for name, logits in members.items():
                entry[name] = metrics.table(calibration.sigmoid(scale * logits + shift), labels, sources, band)
            entry["band"] = list(band)
            record["out_of_fold"].setdefault(variant, {})[seed] = entry
            print(f"{variant}, fold seed {seed}: done", file=sys.stderr, flush=True)
            if seed != seeds[0]:
                continue
            heads = {name: fit_full(data, r) for name, r in recipes.items()}
            logits = {name: heads[name].logits(test["features"][r.backbone_view]) for name, r in recipes.items()}
            p = calibration.sigmoid(scale * np.mean(list(logits.values()), axis=0) + shift)
            scored = {}
            for dataset in np.unique(test["dataset"]):
                rows_of = test["dataset"] == dataset
                scored[dataset] = {
                    "sources": metrics.table(p[rows_of], test["label"][rows_of], test["source"][rows_of], band),
                    "groups": metrics.table(p[rows_of], test["label"][rows_of], test["group"][rows_of], band),
                    "members": {
                        name: metrics.row(
                            calibration.sigmoid(scale * value[rows_of] + shift), test["label"][rows_of], band
                        )
                        for name, value in logits.items()
                    },
                }
            record["test"][variant] = scored
    return record


def print_record(record: dict) -> None:
    columns = ("logloss", "auc", "accuracy", "unsure", "confident_accuracy", "real_called_fake")
    print("| variant | rows | " + " | ".join(columns) + " |\n|---|---|" + "---|" * len(columns))
    for variant, seeds in record["out_of_fold"].items():
        for seed, entry in seeds.items():
            for source in ("overall", "camera"):
                cells = [f"{entry['ensemble'][source].get(c, float('nan')):.3f}" for c in columns]
                print(f"| {variant} (seed {seed}) | out of fold, {source} | " + " | ".join(cells) + " |")
    for variant, datasets in record["test"].items():
        for dataset, scored in datasets.items():
            for source in ("overall", "camera"):
                if source in scored["sources"]:
                    cells = [f"{scored['sources'][source].get(c, float('nan')):.3f}" for c in columns]
                    print(f"| {variant} | {dataset} test, {source} | " + " | ".join(cells) + " |")


def unseen_logloss(table: dict) -> float:
    """The mean logloss over the unseen sources (``heads.UNSEEN_SOURCES``) a ``metrics.table`` has."""
    return float(np.mean([table[name]["logloss"] for name in UNSEEN_SOURCES if name in table]))


def print_summary(record: dict) -> None:
    """Per variant and fold seed, out of fold: the ensemble's logloss overall, on the unseen sources (their mean)
    and on real-vs-ai's ``art``, and each member's overall logloss (calibrated as the ensemble)."""
    print("\n| variant (fold seed) | ensemble | unseen sources' mean | art | members |\n|---|---|---|---|---|")
    for variant, seeds in record["out_of_fold"].items():
        for seed, entry in seeds.items():
            table = entry["ensemble"]
            unseen = unseen_logloss(table)
            members = ", ".join(
                f"{name} {value['overall']['logloss']:.4f}"
                for name, value in entry.items()
                if name not in ("ensemble", "band")
            )
            print(
                f"| {variant} ({seed}) | {table['overall']['logloss']:.4f} | {unseen:.4f} | "
                f"{table['art']['logloss']:.4f} | {members} |"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ensemble.lab.v3_changes", description=__doc__.splitlines()[0])
    parser.add_argument("cache", nargs="?", default="data/features")
    parser.add_argument("--seeds", type=int, nargs="+", default=[FOLD_SEED])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), help="default: all")
    parser.add_argument("--json", help="write every table here")
    parser.add_argument(
        "--write-manifest", metavar="WEIGHTS", help="record the v3 rows' out-of-fold figures per seed as `selection`"
    )
    args = parser.parse_args(argv)
    record = run(args.cache, args.seeds, args.variants)
    print_record(record)
    print_summary(record)
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1, default=float) + "\n")
    if args.write_manifest:
        write_manifest(Path(args.write_manifest) / "manifest.json", record, argv)
    return 0


def write_manifest(path: Path, record: dict, argv: list[str] | None) -> None:
    """The shipped members' out-of-fold figures over the fold seeds (overall, and per source for the ensemble),
    in ``manifest.json`` under ``selection``: the noise between seeds beside the shipped seed's tables."""
    manifest = json.loads(path.read_text())
    manifest["selection"] = {
        "command": "python -m ensemble.lab.v3_changes " + " ".join(argv if argv is not None else sys.argv[1:]),
        "out_of_fold_by_seed": {
            str(seed): {name: table["overall"] for name, table in entry.items() if name != "band"}
            | {"ensemble_by_source": entry["ensemble"], "band": entry["band"]}
            for seed, entry in record["out_of_fold"]["v3"].items()
        },
    }
    path.write_text(json.dumps(manifest, indent=2, default=float) + "\n")


if __name__ == "__main__":
    sys.exit(main())
