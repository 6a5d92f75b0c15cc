"""Would calibration that knows the picture's size do better than one Platt fit? Cross-fitted out of fold.

    python -m ensemble.lab.size_calibration data/features [--seeds 0 1 2]

The shipped members' out-of-fold mean logit (telegram view) is calibrated by a weighted logistic fit (sources
weighted equally) on the logit and one of these designs; each fold's rows are calibrated by a fit on the other
folds, so a design with more parameters cannot win by fitting its own rows. ``s`` is log2(long side / 224),
clipped to [-3, 3]: CIFAKE's 32 px pictures are -2.8, a 1280 px camera photo 2.5.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ensemble import calibration, metrics
from ensemble.build import MEMBERS
from ensemble.features import load_cache
from ensemble.heads import remembered_out_of_fold, training_set

DESIGNS = {
    "platt (shipped)": lambda z, s: [z, np.ones_like(z)],
    "+ size": lambda z, s: [z, np.ones_like(z), s],
    "+ size + slope by size": lambda z, s: [z, np.ones_like(z), s, z * s],
    "+ slope by size": lambda z, s: [z, np.ones_like(z), z * s],
    # pictures under 80 px on the long side (in this data: CIFAKE alone) get their own shift and slope
    "+ tiny pictures apart": lambda z, s: [z, np.ones_like(z), (s < -1.5) * 1.0, z * (s < -1.5)],
}


def size_term(long_side: np.ndarray) -> np.ndarray:
    return np.clip(np.log2(np.asarray(long_side, dtype=np.float64) / 224.0), -3.0, 3.0)


def cross_fitted(design: np.ndarray, labels: np.ndarray, weights: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each fold's probabilities from a fit on the other folds."""
    p = np.zeros(len(labels))
    for fold in np.unique(folds):
        held = folds == fold
        params = calibration.fit_logistic(design[~held], labels[~held], weights[~held])
        p[held] = calibration.sigmoid(design[held] @ params)
    return p


SOURCES = ("cifake", "art", "camera")  # their logloss is kept beside the overall figures


def scored_designs(cache: str, seeds: list[int], designs_of) -> dict:
    """Per design and fold seed: the cross-fitted logloss over all rows, averaged over sources and on ``SOURCES``,
    CIFAKE's accuracy, and the fit's parameters on all folds. ``designs_of(members, size)``: {design name: its
    columns}, from the shipped members' out-of-fold logits ({name: logits}, telegram rows) and ``size_term``."""
    names = sorted({recipe.backbone_view for recipe in MEMBERS.values()})
    rows, arrays = load_cache(cache, names)
    record: dict = {}
    for seed in seeds:
        data = training_set(rows, arrays, ("telegram", "small"), fold_seed=seed)
        judged = data.view == "telegram"
        labels, sources = data.label[judged], data.source[judged]
        members = {name: remembered_out_of_fold(data, r, Path(cache) / "oof")[judged] for name, r in MEMBERS.items()}
        weights = calibration.source_balanced_weights(sources)
        for name, columns in designs_of(members, size_term(data.long_side[judged])).items():
            design = np.stack(columns, axis=1)
            p = cross_fitted(design, labels, weights, data.fold[judged])
            table = metrics.table(p, labels, sources, (0.31, 0.73))
            record.setdefault(name, {})[seed] = {
                "overall": table["overall"]["logloss"],
                "sources_averaged": float(np.mean([v["logloss"] for k, v in table.items() if k != "overall"])),
                **{source: table[source]["logloss"] for source in SOURCES if source in table},
                "cifake_accuracy": table["cifake"]["accuracy"] if "cifake" in table else float("nan"),
                "params": calibration.fit_logistic(design, labels, weights).tolist(),
            }
    return record


def designs(members: dict[str, np.ndarray], size: np.ndarray) -> dict[str, list[np.ndarray]]:
    """``DESIGNS`` on the mean of the members' logits."""
    mean = np.mean(list(members.values()), axis=0)
    return {name: columns(mean, size) for name, columns in DESIGNS.items()}


def run(cache: str, seeds: list[int]) -> dict:
    return scored_designs(cache, seeds, designs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ensemble.lab.size_calibration", description=__doc__.splitlines()[0]
    )
    parser.add_argument("cache", nargs="?", default="data/features")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args(argv)
    record = run(args.cache, args.seeds)
    columns = ("overall", "sources_averaged", "cifake", "art", "camera", "cifake_accuracy")
    print("| calibration | fold seed | " + " | ".join(columns) + " |\n|---|---|" + "---|" * len(columns))
    for name, by_seed in record.items():
        for seed, entry in by_seed.items():
            print(f"| {name} | {seed} | " + " | ".join(f"{entry.get(c, float('nan')):.4f}" for c in columns) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
