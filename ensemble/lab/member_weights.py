"""Would weighting the members unequally, or by the picture's size, beat their plain mean? Cross-fitted out of fold.

    python -m ensemble.lab.member_weights data/features [--seeds 0 1 2]

The shipped ensemble Platt-scales the mean of its members' logits. Here the members' out-of-fold logits (telegram
view) go into a weighted logistic fit (sources weighted equally) with a weight each, and optionally a slope by
``s`` = log2(long side / 224) each (``ensemble.lab.size_calibration.size_term``): painted 512 px pictures could
lean on one member, 1280 px photos on the other. Each fold's rows are scored by a fit on the other folds, so more
parameters cannot win by fitting their own rows. The members alone, each Platt-scaled the same way, for reference.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ensemble.lab.size_calibration import SOURCES, scored_designs


def designs(members: dict[str, np.ndarray], size: np.ndarray) -> dict[str, list[np.ndarray]]:
    """Columns of each design: the first column is the one the fit starts with a slope of 1 on."""
    logits = list(members.values())
    one = np.ones_like(size)
    columns = {
        "mean (shipped)": [np.mean(logits, axis=0), one],
        "a weight per member": [*logits, one],
        "a weight and a slope by size per member": [*logits, one, *(z * size for z in logits)],
    }
    return columns | {f"{name} alone": [z, one] for name, z in members.items()}


def run(cache: str, seeds: list[int]) -> dict:
    return scored_designs(cache, seeds, designs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ensemble.lab.member_weights", description=__doc__.splitlines()[0])
    parser.add_argument("cache", nargs="?", default="data/features")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args(argv)
    record = run(args.cache, args.seeds)
    columns = ("overall", "sources_averaged", *SOURCES)
    print("| combination | fold seed | " + " | ".join(columns) + " | fitted on all folds |")
    print("|---|---|" + "---|" * len(columns) + "---|")
    for name, by_seed in record.items():
        for seed, entry in by_seed.items():
            cells = " | ".join(f"{entry.get(c, float('nan')):.4f}" for c in columns)
            print(f"| {name} | {seed} | {cells} | " + ", ".join(f"{v:.3f}" for v in entry["params"]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
