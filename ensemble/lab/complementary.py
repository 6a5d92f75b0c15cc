"""Does a whole-picture member fitted against what the other two members miss help on sources never seen?

    python -m ensemble.lab.complementary data/features --seeds 0 1 [--weights 1 0.5]

The shipped members are fitted each on its own, and their out-of-fold logits correlate (docs/experiments.md,
"How the members were chosen"): an equal average of them says little that its best member does not. Here the
whole-picture member's head is fitted on the loss of its logit plus ``weight`` times the other two members'
logits (``heads.fit_rows`` with an offset), so it spends its weights on the pictures the others get wrong.

No held-out label leaks in: for the outer fold k, the others' logits on each training row (fold j) come from
heads fitted without folds j and k (``nested_offsets``), the same "never saw that source" logits the
ensemble's members give in use. A picture's small view gets its telegram view's offset: the ensemble is judged
on the telegram view. The test split is never read.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ensemble.features import load_cache
from ensemble.heads import FOLDS, Recipe, TrainingSet, fit_rows, remembered_out_of_fold, training_set


def telegram_twin(data: TrainingSet) -> np.ndarray:
    """For each row, the index of the same picture's telegram-view row."""
    telegram = np.flatnonzero(data.view == "telegram")
    at = dict(zip(data.picture[telegram].tolist(), telegram.tolist()))
    missing = sorted(set(data.picture.tolist()) - set(at))
    if missing:
        raise ValueError(f"{len(missing)} pictures have no telegram view (cache rows {missing[:5]}...)")
    return np.array([at[p] for p in data.picture.tolist()])


def nested_offsets(data: TrainingSet, others: list[Recipe], folds: int = FOLDS) -> np.ndarray:
    """(folds, rows): in line k, the sum of the ``others``' logits on each row outside fold k, each from a head
    fitted on neither that row's fold nor fold k (NaN on fold k); a row takes its picture's telegram-view logit.
    The heads fitted without folds j and k serve both lines j and k, so each pair of folds is fitted once."""
    twin = telegram_twin(data)
    total = np.full((folds, len(data.label)), np.nan)
    for first, second in itertools.combinations(range(folds), 2):
        pair = np.isin(data.fold, (first, second))
        part = np.zeros(pair.sum())
        for recipe in others:
            head = fit_rows(data, np.isin(data.view, recipe.views) & ~pair, recipe)
            part += head.logits(data.features[recipe.backbone_view][twin[pair]])
        print(f"folds {first} and {second} left out: fitted", file=sys.stderr, flush=True)
        in_first = data.fold[pair] == first
        total[second, np.flatnonzero(pair)[in_first]] = part[in_first]
        total[first, np.flatnonzero(pair)[~in_first]] = part[~in_first]
    return total


@dataclass(frozen=True)
class Probe:
    weights: tuple[float, ...] = (1.0, 0.5)  # how much of the others' logits the member's loss adds to its own


def out_of_fold(
    data: TrainingSet, recipe: Recipe, others: list[Recipe], probe: Probe, keep: Path | None = None
) -> dict[float, np.ndarray]:
    """Per row and per offset weight: the complementary member's logit from the fold that never saw that row's
    fold. With ``keep`` (a folder): the nested offsets are kept there (``offsets.npz``, with the folds and labels
    they hold for), so a rerun refits only the complementary heads."""
    logits = {w: np.full(len(data.label), np.nan) for w in probe.weights}
    features = data.features[recipe.backbone_view]
    in_views = np.isin(data.view, recipe.views)
    saved = None if keep is None else keep / "offsets.npz"
    offsets = None
    if saved is not None and saved.is_file():
        with np.load(saved) as kept:  # kept for these folds and labels only
            if np.array_equal(kept["fold"], data.fold) and np.array_equal(kept["label"], data.label):
                offsets = kept["offsets"]
    if offsets is None:
        started = time.time()
        offsets = nested_offsets(data, others)
        print(f"nested offsets: {time.time() - started:.0f} s", file=sys.stderr, flush=True)
        if saved is not None:
            saved.parent.mkdir(parents=True, exist_ok=True)
            np.savez(saved.with_suffix(".tmp.npz"), offsets=offsets, fold=data.fold, label=data.label)
            saved.with_suffix(".tmp.npz").replace(saved)
    for held in range(FOLDS):
        started, offset = time.time(), offsets[held]
        fit, rows = in_views & (data.fold != held), data.fold == held
        for weight in probe.weights:
            head = fit_rows(data, fit, recipe, offset=weight * offset)  # NaN only on the held fold, not fitted
            logits[weight][rows] = head.logits(features[rows])
        print(f"fold {held}: {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    return logits


def run(cache: str, seeds: list[int], probe: Probe) -> dict:
    from ensemble.lab.selection import V2, V2_MEMBERS, TrioComparison, variants

    recipes = variants()
    shipped = {name: recipes[name] for name in V2_MEMBERS}
    whole, *others = V2_MEMBERS
    rows, arrays = load_cache(cache, sorted({r.backbone_view for r in shipped.values()}))
    comparison = TrioComparison()
    for seed in seeds:
        data = training_set(rows, arrays, ("telegram", "small"), fold_seed=seed)
        keep = Path(cache) / "oof" / f"complementary_seed{seed}"
        tuned = out_of_fold(data, shipped[whole], [shipped[n] for n in others], probe, keep)
        judged = data.view == "telegram"
        labels, sources, sizes, groups = (a[judged] for a in (data.label, data.source, data.long_side, data.group))
        logits = {name: remembered_out_of_fold(data, r, Path(cache) / "oof")[judged] for name, r in shipped.items()}
        rest = [logits[name] for name in others]
        candidates = {V2: np.mean(list(logits.values()), axis=0), whole: logits[whole]}
        for weight, value in tuned.items():
            candidates[f"whole, against the others x{weight:g}"] = value[judged]
            candidates[f"trio, whole against the others x{weight:g}"] = np.mean([value[judged], *rest], axis=0)
        comparison.add(candidates, labels, sources, sizes, groups)
        for weight, value in tuned.items():
            correlation = [np.corrcoef(value[judged], other)[0, 1] for other in rest]
            print(f"seed {seed} x{weight:g}: correlation with the others {np.round(correlation, 3).tolist()}")
        print(
            f"seed {seed} shipped: correlation with the others "
            f"{np.round([np.corrcoef(logits[whole], o)[0, 1] for o in rest], 3).tolist()}"
        )
        print(f"fold seed {seed} done", file=sys.stderr, flush=True)
    table = comparison.report(seeds)
    return {"seeds": seeds, "weights": probe.weights, "recipes": table, "gains": comparison.gains}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ensemble.lab.complementary", description=__doc__.splitlines()[0])
    parser.add_argument("cache", nargs="?", default="data/features")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--weights", type=float, nargs="+", default=list(Probe.weights))
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    run(args.cache, args.seeds, Probe(weights=tuple(args.weights)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
