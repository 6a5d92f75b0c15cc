"""Would averaging a picture's logit over a scaled-down copy help on sources never seen? Out of fold only.

Each train picture longer than ``ensemble.features.SMALL_MAX`` has a ``small`` view in the feature cache (scaled
down to 224-640 px and re-compressed). The shipped ensemble's out-of-fold logit of its telegram view is mixed
with that of its small view, ``(1 - w) * telegram + w * small``, and scored as ``ensemble.lab.selection`` scores a
recipe, over its fold seeds, with the gain against ``w = 0`` when the unseen source groups are drawn again.
Pictures without a small view keep their telegram logit. Reads the remembered folds in ``<cache>/oof``
(fitting the missing ones, as ``selection`` does); the test split is never read.

    python -m benchmarks.small_view_average data/features --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ensemble.features import load_cache
from ensemble.heads import TrainingSet, remembered_out_of_fold, training_set
from ensemble.lab.selection import V2_MEMBERS, print_spread, scored, source_group_gain, spread, variants

WEIGHTS = (0.0, 0.25, 0.5)


def mixed_with_small(logits: np.ndarray, data: TrainingSet, weight: float) -> np.ndarray:
    """The telegram rows' logits, each mixed with its picture's small-view logit where there is one."""
    telegram = np.flatnonzero(data.view == "telegram")
    small_row = {data.picture[row]: row for row in np.flatnonzero(data.view == "small")}
    mixed = logits[telegram].astype(np.float64)
    for position, picture in enumerate(data.picture[telegram]):
        if picture in small_row:
            mixed[position] = (1 - weight) * mixed[position] + weight * logits[small_row[picture]]
    return mixed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.small_view_average", description=__doc__.splitlines()[0]
    )
    parser.add_argument("cache", help="the feature cache (python -m ensemble.features)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    recipes = variants()
    needed = sorted({recipes[name].backbone_view for name in V2_MEMBERS})
    rows, arrays = load_cache(args.cache, needed)
    memo = Path(args.cache) / "oof"
    results: dict[str, list[dict]] = {}
    for seed in args.seeds:
        data = training_set(rows, arrays, ("telegram", "small"), fold_seed=seed)
        ensemble = np.mean([remembered_out_of_fold(data, recipes[name], memo) for name in V2_MEMBERS], axis=0)
        telegram = data.view == "telegram"
        judged = [getattr(data, key)[telegram] for key in ("label", "source", "long_side", "group")]
        print(f"fold seed {seed}: {np.isin(data.picture[telegram], data.picture[~telegram]).mean():.1%} of the "
              "pictures have a small view", file=sys.stderr)  # fmt: skip
        for weight in WEIGHTS:
            results.setdefault(f"w = {weight}", []).append(scored(mixed_with_small(ensemble, data, weight), *judged))
            if weight:
                labels, sources, _, groups = judged
                gain = source_group_gain(results[f"w = {weight}"][-1]["p"], results["w = 0.0"][-1]["p"], labels,
                                         groups, sources)  # fmt: skip
                print(f"  w = {weight}: gain in unseen logloss {gain['gain']:+.4f} (source groups drawn again: "
                      f"{gain['low']:+.4f} to {gain['high']:+.4f})", file=sys.stderr)  # fmt: skip
    print_spread(spread(results), first_column="small view's weight")
    return 0


if __name__ == "__main__":
    sys.exit(main())
