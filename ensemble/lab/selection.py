"""Compare head recipes and ensembles by out-of-fold results on sources never seen, over several fold seeds.

    python -m ensemble.lab.selection data/features [--seeds 0 1 2]

Every figure is out of fold: a picture's logit comes from a head fitted without its fold, and folds keep
each pool source, each ``modern`` game and each FAKE ``art`` generator whole, so on those rows the head
never saw the source. The selection figure is logloss and AUC over the rows of the pool and of ``modern``
(telegram view), after a Platt fit on the same out-of-fold logits (the same for every recipe). The test
split is never read.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from ensemble import calibration, metrics
from ensemble.build import HIGHPASS, LITE0_WHOLE, MEMBERS
from ensemble.features import load_cache
from ensemble.heads import (
    LATE_TAPS,
    SHARES,
    TOP_TAP,
    UNSEEN_SOURCES,
    Recipe,
    held_out_groups,
    remembered_out_of_fold,
    training_set,
)

BASE = {
    "lite0_crop": Recipe("lite0_224_crop"),
    "lite2_crop": Recipe("lite2_260_crop"),
    "lite0_native": Recipe("lite0_224_native"),
    "lite0_crop_taps": Recipe("lite0_224_crop_taps"),
    "lite0_native_taps": Recipe("lite0_224_native_taps"),
    "lite0_crop_taps_std": Recipe("lite0_224_crop_taps_std"),
    "lite0_native_taps_std": Recipe("lite0_224_native_taps_std"),
    "lite0_highpass_std": Recipe("lite0_224_native_highpass_std"),
    "lite0_npr_std": Recipe("lite0_224_native_npr_std"),
    "lite0_bandpass_std": Recipe("lite0_224_native_bandpass_std"),
    "lite0_highpass_gram": Recipe("lite0_224_native_highpass_gram"),
}


# More of the training weight on games, ``modern`` games and GAN faces (the same kind of picture REAL and FAKE, as
# users meet them), less on the one-class sources (whose pictures can be told apart by what differs between
# sources) and on CIFAKE and diffusiondb-coco.
PAIRED_SHARES = {
    "cifake": 0.06,
    "diffusiondb-coco": 0.06,
    "art": 0.10,
    "modern": 0.20,
    "games": 0.30,
    "galleries": 0.08,
    "photos": 0.06,
    "human-art": 0.04,
    "gan-faces": 0.10,
}


# One change applied to each of the three members shipped until 2026-12-02 (every tap read): heads whose logit must
# not follow the picture's size or which REAL source it is from (``heads.nuisances``), and ``PAIRED_SHARES``.
TRIO_CHANGES = {
    "size-invariant": {"invariant": ("size",)},
    "source-invariant": {"invariant": ("real-sources",)},
    "invariant": {"invariant": ("size", "real-sources")},
    "paired-shares": {"shares": PAIRED_SHARES},
}


# One change to the whole-picture member shipped until midday on 2026-12-02 (L2 1e-3: the weakest alone out of fold,
# and the one that called the most REAL pictures FAKE), held against the native and high-pass members: a stronger
# penalty on its head (1e-2 is shipped now), or its last two layers left out like theirs.
WHOLE_CHANGES = {
    "no-top l2=1e-2": {"skip_taps": TOP_TAP, "l2": 1e-2},
    "no-top l2=1e-1": {"skip_taps": TOP_TAP, "l2": 1e-1},
    "no-top l2=1": {"skip_taps": TOP_TAP, "l2": 1.0},
    "no-late": {"skip_taps": LATE_TAPS},
}


# The members shipped from 2026-12-02 until Detection v3 (2026-12-07), and one change applied to each of them: heads
# whose logit follows the picture's size in neither class (``heads.nuisances``, "size-per-class"; seed 0: less size
# bias, no gain),
# and heads refitted with the groups they fit worst weighted up (``Recipe.worst_group_step``; seed 0: worse unseen).
V2_MEMBERS = (
    "lite0_crop_taps_std no-top l2=1e-2",
    "lite0_native_taps_std no-late",
    "lite0_highpass_std telegram-only no-late",
)
SHIPPED_CHANGES = {
    "size-per-class-invariant": {"invariant": ("size-per-class",)},
    # refits that weight up the source groups each head fits worst (``heads.worst_group_factors``)
    "worst-groups": {"worst_group_step": 1.0},
    # one head per tapped layer, their logits averaged (``Recipe.per_tap``)
    "per-tap": {"per_tap": True},
    # heads fitted on the telegram view alone, as the high-pass one is (no small view)
    "telegram-only": {"views": ("telegram",)},
    # the same, with heads whose logit follows size in neither class, against the size bias telegram-only brings
    "telegram-only size-per-class-invariant": {"views": ("telegram",), "invariant": ("size-per-class",)},
}


# The members of Detection v3 until the Lite2 whole-picture member (``ensemble.build``): graphs cut after the last
# layer read, the one at the picture's own pixel scale over a grid of squares covering the whole picture, camera
# photos in the shares; and the high-pass member on the same grid, left out of v3 by its out-of-fold figures.
V3_MEMBERS = {
    "lite0_whole v3": LITE0_WHOLE,
    "lite0_grid v3": MEMBERS["lite0_native"],
}
V3_HIGHPASS = {"lite0_grid_highpass v3": HIGHPASS}
# The members shipped now (``ensemble.build.MEMBERS``): the Lite2 whole-picture member in the Lite0 one's place.
SHIPPED_MEMBERS = {"lite2_whole v3": MEMBERS["lite2_whole"], "lite0_grid v3": MEMBERS["lite0_native"]}


# One change applied to each v3 member: without the camera photos (their share 0), or without matching sizes across
# the classes (the camera photos are the first big REAL pictures, so the reason for matching may have gone).
V3_CHANGES = {
    "no-camera": {"shares": SHARES | {"camera": 0.0}},
    "no-size-match": {"match_sizes": False},
}


GRAM_HIGHPASS = "lite0_highpass_gram telegram-only no-late"
GRAM_ONLY = "lite0_highpass_gram telegram-only gram-only"


COMBOS = (
    ("lite0_crop", "lite2_crop", "lite0_native"),
    ("lite0_crop_taps", "lite0_native_taps"),
    ("lite0_crop_taps", "lite0_native_taps", "lite2_crop"),
    ("lite0_crop_taps", "lite2_crop"),
    ("lite0_crop_taps l2=1e-1", "lite0_native_taps l2=1e-1"),
    ("lite0_crop_taps l2=1", "lite0_native_taps l2=1e-1"),
    ("lite0_crop_taps l2=1", "lite0_native_taps l2=1"),
    ("lite0_crop_taps_std", "lite0_native_taps_std"),
    ("lite0_crop_taps_std", "lite0_native_taps"),
    ("lite0_crop_taps", "lite0_native_taps_std"),
    ("lite0_crop_taps_std", "lite0_native_taps_std", "lite0_highpass_std"),
    ("lite0_crop_taps_std", "lite0_highpass_std"),
    ("lite0_native_taps_std", "lite0_highpass_std"),
    ("lite0_crop_taps_std", "lite0_native_taps_std", "lite0_highpass_std telegram-only"),
    ("lite0_crop_taps_std", "lite0_native_taps_std", "lite0_highpass_std telegram-only l2=1e-2"),
    ("lite0_crop_taps_std", "lite0_native_taps_std", "lite0_highpass_std telegram-only photos=0.24"),
    ("lite0_crop_taps_std", "lite0_native_taps_std", "lite0_highpass_std telegram-only no-top"),
    ("lite0_crop_taps_std", "lite0_native_taps_std no-top", "lite0_highpass_std telegram-only"),
    ("lite0_crop_taps_std", "lite0_native_taps_std no-top", "lite0_highpass_std telegram-only no-top"),
    ("lite0_crop_taps_std no-top", "lite0_native_taps_std", "lite0_highpass_std telegram-only"),
    ("lite0_crop_taps_std", "lite0_native_taps_std no-late", "lite0_highpass_std telegram-only"),
    ("lite0_crop_taps_std no-top", "lite0_native_taps_std no-top", "lite0_highpass_std telegram-only no-top"),
    ("lite0_crop_taps_std", "lite0_native_taps_std no-late3", "lite0_highpass_std telegram-only"),
    ("lite0_crop_taps_std", "lite0_native_taps_std no-late", "lite0_highpass_std telegram-only no-late"),
    ("lite0_crop_taps_std", "lite0_native_taps_std no-late", "lite0_highpass_std telegram-only no-top"),
    ("lite0_crop_taps_std no-top", "lite0_native_taps_std no-late", "lite0_highpass_std telegram-only no-late"),
    ("lite0_crop_taps_std", "lite0_native_taps_std", "lite0_npr_std telegram-only"),
    ("lite0_crop_taps_std", "lite0_native_taps_std", "lite0_bandpass_std telegram-only"),
    ("lite0_crop_taps_std", "lite0_native_taps_std", "lite0_highpass_std telegram-only", "lite0_npr_std telegram-only"),
    (
        "lite0_crop_taps_std",
        "lite0_native_taps_std",
        "lite0_highpass_std telegram-only",
        "lite0_bandpass_std telegram-only",
    ),
    ("lite0_crop_taps_std", "lite0_highpass_std telegram-only", "lite0_npr_std telegram-only"),
    ("lite0_crop_taps_std", "lite0_highpass_std telegram-only", "lite0_bandpass_std telegram-only"),
    (
        "lite0_crop_taps_std",
        "lite0_native_taps_std",
        "lite0_highpass_std telegram-only",
        "lite0_npr_std telegram-only",
        "lite0_bandpass_std telegram-only",
    ),
    *(
        (
            f"lite0_crop_taps_std {suffix}",
            f"lite0_native_taps_std {suffix}",
            f"lite0_highpass_std telegram-only {suffix}",
        )
        for suffix in TRIO_CHANGES
    ),
    ("lite0_crop_taps_std", "lite0_native_taps_std source-invariant", "lite0_highpass_std telegram-only"),
    ("lite0_crop_taps_std", "lite0_native_taps_std", "lite0_highpass_std telegram-only source-invariant"),
    ("lite0_crop_taps_std source-invariant", "lite0_native_taps_std", "lite0_highpass_std telegram-only"),
    (
        "lite0_crop_taps_std size-invariant",
        "lite0_native_taps_std source-invariant",
        "lite0_highpass_std telegram-only size-invariant",
    ),
    (
        "lite0_crop_taps_std",
        "lite0_native_taps_std source-invariant",
        "lite0_highpass_std telegram-only source-invariant",
    ),
    (
        "lite0_crop_taps_std source-invariant",
        "lite0_native_taps_std source-invariant",
        "lite0_highpass_std telegram-only",
    ),
    *(
        (f"lite0_crop_taps_std {suffix}", "lite0_native_taps_std no-late", "lite0_highpass_std telegram-only no-late")
        for suffix in WHOLE_CHANGES
    ),
    *(tuple(f"{name} {suffix}" for name in V2_MEMBERS) for suffix in SHIPPED_CHANGES),
    # one of the two members with a small view fitted on the telegram view alone
    ("lite0_crop_taps_std no-top l2=1e-2 telegram-only", *V2_MEMBERS[1:]),
    (V2_MEMBERS[0], "lite0_native_taps_std no-late telegram-only", V2_MEMBERS[2]),
    # the high-pass squares' channel correlations (``features.GRAM_TAPS``): in the high-pass head, or a fourth head
    # on the same backbone pass
    (*V2_MEMBERS[:2], GRAM_HIGHPASS),
    (*V2_MEMBERS, GRAM_ONLY),
    (*V2_MEMBERS[:2], GRAM_HIGHPASS, GRAM_ONLY),
    tuple(V3_MEMBERS),
    (*V3_MEMBERS, *V3_HIGHPASS),
    tuple(SHIPPED_MEMBERS),
    *(tuple(f"{name} {suffix}" for name in V3_MEMBERS) for suffix in V3_CHANGES),
)


LATE3_TAPS = ("block11_expand_activation", *LATE_TAPS)


def variants() -> dict[str, Recipe]:
    """The recipes compared: the backbone views, and one change at a time from them (the shipped members are
    ``SHIPPED``'s members)."""
    shipped, top = BASE["lite0_crop_taps"], BASE["lite0_crop"]
    highpass_telegram = replace(BASE["lite0_highpass_std"], views=("telegram",))
    recipes = (
        BASE
        | {
            "lite0_crop no-size-match": replace(top, match_sizes=False),
            "lite0_crop telegram-only": replace(top, views=("telegram",)),
            "lite0_crop_taps l2=1e-2": replace(shipped, l2=1e-2),
            "lite0_crop_taps l2=1e-1": replace(shipped, l2=1e-1),
            "lite0_crop_taps l2=1": replace(shipped, l2=1.0),
            "lite0_native_taps l2=1e-1": replace(BASE["lite0_native_taps"], l2=1e-1),
            "lite0_native_taps l2=1": replace(BASE["lite0_native_taps"], l2=1.0),
            "lite0_crop_taps equal-shares": replace(shipped, group_power=1.0, shares={}),
            "lite0_highpass_std telegram-only": highpass_telegram,
            "lite0_highpass_std telegram-only l2=1e-2": replace(highpass_telegram, l2=1e-2),
            "lite0_highpass_std telegram-only photos=0.24": replace(
                highpass_telegram, shares=SHARES | {"photos": 0.24}
            ),
            "lite0_highpass_std telegram-only no-top": replace(highpass_telegram, skip_taps=TOP_TAP),
            "lite0_native_taps_std no-top": replace(BASE["lite0_native_taps_std"], skip_taps=TOP_TAP),
            "lite0_crop_taps_std no-top": replace(BASE["lite0_crop_taps_std"], skip_taps=TOP_TAP),
            "lite0_native_taps_std no-late": replace(BASE["lite0_native_taps_std"], skip_taps=LATE_TAPS),
            "lite0_native_taps_std no-late3": replace(BASE["lite0_native_taps_std"], skip_taps=LATE3_TAPS),
            "lite0_highpass_std telegram-only no-late": replace(highpass_telegram, skip_taps=LATE_TAPS),
            "lite0_npr_std telegram-only": replace(BASE["lite0_npr_std"], views=("telegram",)),
            "lite0_bandpass_std telegram-only": replace(BASE["lite0_bandpass_std"], views=("telegram",)),
            GRAM_HIGHPASS: replace(BASE["lite0_highpass_gram"], views=("telegram",), skip_taps=LATE_TAPS),
            GRAM_ONLY: replace(BASE["lite0_highpass_gram"], views=("telegram",), skip_stats=("mean", "std")),
        }
        | one_change(
            {
                "lite0_crop_taps_std": BASE["lite0_crop_taps_std"],
                "lite0_native_taps_std": BASE["lite0_native_taps_std"],
                "lite0_highpass_std telegram-only": highpass_telegram,
            },
            TRIO_CHANGES,
        )
        | one_change({"lite0_crop_taps_std": BASE["lite0_crop_taps_std"]}, WHOLE_CHANGES)
    )
    recipes |= V3_MEMBERS | V3_HIGHPASS | SHIPPED_MEMBERS | one_change(V3_MEMBERS, V3_CHANGES)
    return recipes | one_change({name: recipes[name] for name in V2_MEMBERS}, SHIPPED_CHANGES)


def one_change(recipes: dict[str, Recipe], changes: dict[str, dict]) -> dict[str, Recipe]:
    """Each recipe with each change alone, named "<recipe> <change>"."""
    return {
        f"{name} {suffix}": replace(recipe, **change)
        for name, recipe in recipes.items()
        for suffix, change in changes.items()
    }


def within_group_auc(logits: np.ndarray, labels: np.ndarray, groups: np.ndarray, sources: np.ndarray) -> float:
    """Mean AUC inside each unseen source group that has both classes (at least 20 pictures): how well REAL
    and FAKE pictures of the same kind are told apart, which a pooled AUC can hide behind differences
    between sources (FAKE-only galleries against REAL-only photos)."""
    values = []
    for group in np.unique(groups):
        rows = groups == group
        if rows.sum() >= 20 and len(np.unique(labels[rows])) == 2 and np.isin(sources[rows], UNSEEN_SOURCES).all():
            values.append(metrics.roc_auc(logits[rows], labels[rows]))
    return float(np.mean(values))


def scored(
    logits: np.ndarray, labels: np.ndarray, sources: np.ndarray, long_side: np.ndarray, groups: np.ndarray
) -> dict:
    """Platt-scaled (on these rows, sources weighted equally) logloss and AUC, unseen rows and overall, the
    logloss on the familiar rows (real-vs-ai's sources that are not unseen: art, CIFAKE, diffusiondb-coco),
    how often REAL pictures of 900 px and more get p >= 0.5 (the size bias), and the share of unseen rows
    left UNSURE by the band that ``train`` would fit on these rows."""
    fitted = calibration.fit_from_out_of_fold({"logit": logits, "label": labels, "source": sources})
    p, band = fitted["probabilities"], calibration.band_of(fitted["unsure"])
    unseen = np.isin(sources, UNSEEN_SOURCES)
    unsure = (p > band[0]) & (p < band[1])
    return {
        "unseen_logloss": metrics.log_loss(p[unseen], labels[unseen]),
        "unseen_auc": metrics.roc_auc(p[unseen], labels[unseen]),
        "overall_logloss": metrics.log_loss(p, labels),
        "overall_auc": metrics.roc_auc(p, labels),
        "familiar_logloss": metrics.log_loss(p[~unseen], labels[~unseen]),
        "big_real_fake": float((p[(labels == 0) & (long_side >= 900)] >= 0.5).mean()),
        "within_group_auc": within_group_auc(logits, labels, groups, sources),
        "unseen_unsure": float(unsure[unseen].mean()),
        "p": p,
    }


def source_group_gain(
    p: np.ndarray,
    reference: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    sources: np.ndarray,
    draws: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """How much lower the unseen logloss of ``p`` is than that of ``reference`` (both Platt-scaled on the same
    rows), and how far that gain moves when other unseen source groups had been drawn (``group_bootstrap_gain``
    on the rows of ``UNSEEN_SOURCES``). The fold seeds' ranges cut the same sources into other folds; this
    asks whether the gain holds over other sets of sources, which is what the test split is.
    """
    unseen = np.isin(sources, UNSEEN_SOURCES)
    return group_bootstrap_gain(p[unseen], reference[unseen], labels[unseen], groups[unseen], draws, seed)


def group_bootstrap_gain(
    p: np.ndarray, reference: np.ndarray, labels: np.ndarray, groups: np.ndarray, draws: int = 2000, seed: int = 0
) -> dict[str, float]:
    """How much lower the logloss of ``p`` is than that of ``reference`` on these rows, and how far that moves
    when the groups are drawn again with replacement, ``draws`` times, each drawn group bringing all its rows
    (paired: both predictions on the same rows).

    Returns:
        ``gain`` on these rows and its 5th and 95th percentiles over the draws (``low``, ``high``); positive
        when ``p`` has the lower logloss.
    """
    diff = metrics.log_losses(reference, labels) - metrics.log_losses(p, labels)
    names, index = np.unique(groups, return_inverse=True)
    sums = np.bincount(index, weights=diff, minlength=len(names))
    counts = np.bincount(index, minlength=len(names)).astype(np.float64)
    picks = np.random.default_rng(seed).integers(0, len(names), size=(draws, len(names)))
    gains = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    low, high = np.quantile(gains, [0.05, 0.95])
    return {"gain": float(diff.mean()), "low": float(low), "high": float(high)}


class MissingViews(ValueError):
    """The cache lacks the features of a backbone view that a recipe reads."""


def run(cache: str, seeds: list[int], names: list[str] | None = None) -> dict:
    recipes = variants()
    if names:
        unknown = sorted(set(names) - set(recipes))
        if unknown:
            raise MissingViews(f"unknown recipes {unknown}; choose from {sorted(recipes)}")
        recipes = {name: recipes[name] for name in names}
    needed = sorted({recipe.backbone_view for recipe in recipes.values()})
    missing = [name for name in needed if not (Path(cache) / name / "view.json").is_file()]
    if missing:
        raise MissingViews(
            f"{cache} has no features of {', '.join(missing)}; cache them first with `python -m ensemble.features "
            f"../shared/datasets/real-vs-ai ../pool --out {cache} --views {' '.join(missing)}`"
        )
    rows, arrays = load_cache(cache, needed)
    results: dict[str, list[dict]] = {}
    member_logits: dict[int, dict[str, np.ndarray]] = {}
    gains: dict[str, list[dict[str, float]]] = {}
    for seed in seeds:
        data = training_set(rows, arrays, ("telegram", "small"), fold_seed=seed)
        judged = data.view == "telegram"
        labels, sources, sizes = data.label[judged], data.source[judged], data.long_side[judged]
        groups = data.group[judged]
        member_logits[seed] = {}
        for name, recipe in recipes.items():
            logits = remembered_out_of_fold(data, recipe, Path(cache) / "oof")[judged]
            member_logits[seed][name] = logits
            results.setdefault(name, []).append(scored(logits, labels, sources, sizes, groups))
        for combo in COMBOS:
            if all(name in member_logits[seed] for name in combo):
                mean = np.mean([member_logits[seed][name] for name in combo], axis=0)
                results.setdefault(" + ".join(combo), []).append(scored(mean, labels, sources, sizes, groups))
        if SHIPPED in results:
            shipped = results[SHIPPED][-1]["p"]
            for name, runs in results.items():
                if name != SHIPPED:
                    gains.setdefault(name, []).append(
                        source_group_gain(runs[-1]["p"], shipped, labels, groups, sources)
                    )
        print(f"fold seed {seed} done", file=sys.stderr, flush=True)
    table = spread(results)
    print_spread(table)
    group_gains = {
        name: {key: float(np.median([run[key] for run in runs])) for key in runs[0]} for name, runs in gains.items()
    }
    verdicts = improvements(table, group_gains=group_gains)
    if verdicts:
        print(f"\nShould it replace the shipped ensemble ({SHIPPED})?")
        for name, verdict in verdicts.items():
            print(f"- {name}: {verdict}")
    if group_gains:
        print(
            "\nGain in unseen logloss over the shipped ensemble, and its 5th-95th percentiles when the unseen"
            " source groups are drawn again (median over the fold seeds; an interval that holds 0 is no gain"
            " over other sources):"
        )
        for name, gain in group_gains.items():
            print(f"- {name}: {gain['gain']:+.3f} ({gain['low']:+.3f} to {gain['high']:+.3f})")
    return {"seeds": list(seeds), "recipes": table, "source_group_gains": group_gains}


COLUMNS = {
    "unseen_logloss": "unseen logloss",
    "unseen_auc": "unseen AUC",
    "overall_logloss": "overall logloss",
    "overall_auc": "overall AUC",
    "familiar_logloss": "familiar logloss",
    "big_real_fake": "big REAL p>=0.5",
    "within_group_auc": "within-group AUC",
    "unseen_unsure": "unseen UNSURE",
}


# The ensemble shipped now, the reference every candidate is held against (``improvements``).
SHIPPED = " + ".join(SHIPPED_MEMBERS)
# The trio shipped until Detection v3: the reference of the probes built against it (``TrioComparison``).
V2 = " + ".join(V2_MEMBERS)


def improvements(
    table: dict[str, dict[str, dict[str, float]]],
    reference: str = SHIPPED,
    group_gains: dict[str, dict[str, float]] | None = None,
) -> dict[str, str]:
    """For each recipe, whether it should replace ``reference``, and why not.

    A pooled figure can improve by telling unseen sources apart (FAKE-only galleries from REAL-only
    photos) while REAL and FAKE pictures of one source are told apart worse and big REAL photos look more
    FAKE; twice that won the pooled out-of-fold figure and lost on the test sources (docs/experiments.md,
    "How the members were chosen"). So a recipe must gain beyond the seeds' noise (its highest unseen logloss
    below the reference's lowest: the ranges apart) **and** keep its within-group AUC median at or above
    the reference's lowest and its big REAL median at or below the reference's highest. Once a candidate
    that passed gained nothing on the test sources and lost on the familiar ones (real-vs-ai's art, CIFAKE,
    diffusiondb-coco); so its familiar logloss median must also stay at or below the reference's highest
    (checked when both rows have it: records written before this condition do not). And the gain must hold
    when the unseen source groups are drawn again: the 5th percentile of ``group_gains[name]``
    (``source_group_gain``, median over the seeds) above 0; that candidate's was -0.005 (checked for the
    recipes ``group_gains`` holds).

    Returns:
        Recipe name to ``"yes"`` or the first reason against it; empty when ``reference`` is not in
        ``table``.
    """
    if reference not in table:
        return {}
    ref = table[reference]
    verdicts = {}
    for name, figures in table.items():
        if name == reference:
            continue
        if figures["unseen_logloss"]["max"] >= ref["unseen_logloss"]["min"]:
            verdicts[name] = "no gain beyond the noise"
        elif figures["within_group_auc"]["median"] < ref["within_group_auc"]["min"]:
            verdicts[name] = "worse within groups"
        elif figures["big_real_fake"]["median"] > ref["big_real_fake"]["max"]:
            verdicts[name] = "more big REAL photos look FAKE"
        elif (
            "familiar_logloss" in figures
            and "familiar_logloss" in ref
            and (figures["familiar_logloss"]["median"] > ref["familiar_logloss"]["max"])
        ):
            verdicts[name] = "worse on the familiar sources"
        elif group_gains and name in group_gains and group_gains[name]["low"] <= 0:
            verdicts[name] = "no gain over other source groups"
        else:
            verdicts[name] = "yes"
    return verdicts


def spread(results: dict[str, list[dict]]) -> dict[str, dict[str, dict[str, float]]]:
    """Each recipe's figures over the fold seeds: median, min and max (the noise between seeds)."""
    table = {}
    for name, runs in results.items():
        table[name] = {}
        for key in COLUMNS:
            values = np.array([run[key] for run in runs])
            table[name][key] = {"median": float(np.median(values)), "min": float(values.min()),
                                "max": float(values.max())}  # fmt: skip
    return table


def print_spread(table: dict[str, dict[str, dict[str, float]]], first_column: str = "recipe") -> None:
    """``spread``'s table in Markdown: each cell the median and, in brackets, the range over the seeds."""
    print(f"| {first_column} | " + " | ".join(COLUMNS.values()) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name, figures in table.items():
        cells = [f"{f['median']:.3f} ({f['min']:.3f}-{f['max']:.3f})" for f in figures.values()]
        print(f"| {name} | " + " | ".join(cells) + " |")


class TrioComparison:
    """The probes' scoring (``ensemble.lab.upper_stages``, ``ensemble.lab.complementary``): per fold seed, each
    candidate's out-of-fold logits scored, and its unseen-logloss gain over the shipped trio's with the source-group
    interval; then the spread table and the gains printed."""

    def __init__(self):
        self.results: dict[str, list[dict]] = {}
        self.gains: dict[str, list[dict[str, float]]] = {}

    def add(self, candidates: dict[str, np.ndarray], labels, sources, sizes, groups) -> None:
        """One fold seed's logits per candidate; ``candidates[V2]`` (the trio shipped until v3) is the reference."""
        for name, value in candidates.items():
            self.results.setdefault(name, []).append(scored(value, labels, sources, sizes, groups))
        reference = self.results[V2][-1]["p"]
        for name in candidates:
            if name != V2:
                self.gains.setdefault(name, []).append(
                    source_group_gain(self.results[name][-1]["p"], reference, labels, groups, sources)
                )

    def report(self, seeds: list[int]) -> dict[str, dict[str, dict[str, float]]]:
        table = spread(self.results)
        print_spread(table)
        print("\nGain in unseen logloss over the shipped trio, 5th-95th percentiles over redrawn unseen source groups:")
        for name, runs in self.gains.items():
            cells = ", ".join(
                f"seed {s}: {g['gain']:+.3f} ({g['low']:+.3f} to {g['high']:+.3f})" for s, g in zip(seeds, runs)
            )
            print(f"- {name}: {cells}")
        return table


def write_manifest(weights: str, cache: str, record: dict, command: str) -> None:
    """Record the comparison (out of fold, never the test split) in ``weights/manifest.json`` as ``selection``,
    and the groups only the test split holds (``data.held_out_test_groups``, as ``train`` records them).

    Raises:
        MissingViews: the cache holds other pictures than the ones the weights were trained on.
    """
    path = Path(weights) / "manifest.json"
    manifest = json.loads(path.read_text())
    index = json.loads((Path(cache) / "index.json").read_text())
    if index["data_manifest_sha256"] != manifest["data"]["data_sets"]:
        raise MissingViews(f"{cache} caches other data than {path} was trained on; nothing written")
    manifest["selection"] = {"command": command, **record}
    manifest["data"]["held_out_test_groups"] = held_out_groups(index["rows"])
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ensemble.lab.selection", description=__doc__.splitlines()[0])
    parser.add_argument("cache", nargs="?", default="data/features")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--recipes", nargs="*", help="names from the table (default: all)")
    parser.add_argument("--write-manifest", metavar="WEIGHTS", help="record the table in WEIGHTS/manifest.json")
    args = parser.parse_args(argv)
    try:
        record = run(args.cache, args.seeds, args.recipes)
        if args.write_manifest:
            command = "python -m ensemble.lab.selection " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
            write_manifest(args.write_manifest, args.cache, record, command)
    except MissingViews as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
