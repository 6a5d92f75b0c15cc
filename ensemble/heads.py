"""Linear heads on cached frozen-backbone features: grouped folds, sample weights, out-of-fold logits.

A member is a frozen ImageNet EfficientNet-Lite backbone and one trained dense layer on its pooled
features (``ensemble.features``). Everything here works on the feature cache, so one fit takes seconds and
recipes can be compared over several fold seeds, by how they do on sources they never saw.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from ensemble.calibration import sigmoid
from ensemble.data import Sample, assign_folds
from ensemble.features import backbone_view
from ensemble.lite_layout import VARIANTS, tap_width

FOLDS = 5
# Each source's share of the training weight (split evenly between its classes where it has both; normalised).
# The pool's categories and real-vs-ai's sources are weighted on purpose, not by their sizes. real-vs-ai's three
# familiar sources (CIFAKE, art, diffusiondb-coco) weigh 1.5 to 3 times what they did before Detection v3's share
# sweep (0.08, 0.10, 0.08): of the steps tried, the lowest out-of-fold logloss over all sources, the unseen
# sources' within 0.001 of before (docs/experiments.md, "Familiar sources' shares"; ``ensemble.lab.shares``).
SHARES = {
    "cifake": 0.24,
    "diffusiondb-coco": 0.12,
    "art": 0.26,
    "modern": 0.14,
    "games": 0.22,
    "galleries": 0.14,
    "photos": 0.12,
    "human-art": 0.06,
    "gan-faces": 0.06,
    # photos straight from phones and cameras (pool v2): what users send most, and the REAL side's big
    # pictures, so that size stops telling the classes apart
    "camera": 0.14,
}
# Long-side bins (pixels, as the backbone receives the view) for matching sizes across classes.
SIZE_BINS = (0, 160, 320, 560, 900, 100_000)
# Refits that weight up the groups a head fits worst (``Recipe.worst_group_step``), and how far a group's weight
# may move from its share in all.
WORST_GROUP_ROUNDS = 2
WORST_GROUP_CLIP = (0.25, 4.0)
# The last two tapped layers: more what the picture shows than how its pixels were made. Members that read the
# picture at its own pixel scale leave them out (docs/experiments.md, "How the members were chosen").
LATE_TAPS = ("block15_expand_activation", "top_activation")
TOP_TAP = ("top_activation",)  # the last alone: what a picture scaled down to 224 px shows
UNSEEN_SOURCES = ("games", "galleries", "photos", "human-art", "gan-faces", "camera", "modern")


@dataclass(frozen=True)
class Recipe:
    """How one member's head is fitted."""

    backbone_view: str
    l2: float = 1e-3
    views: tuple[str, ...] = ("telegram", "small")
    shares: dict = field(default_factory=lambda: dict(SHARES))
    match_sizes: bool = True
    group_power: float = 0.5  # within a source, a group of n pictures weighs n ** group_power in all
    # tapped layers the head leaves out (their means and deviations get zero weight), e.g. ("top_activation",):
    # the ImageNet top layer says most about what is in the picture, which differs between sources
    skip_taps: tuple[str, ...] = ()
    # what the head's logit must not follow inside a class, on its training rows (``nuisance_directions``):
    # "size" (the log long side of the view; the two classes' covariances together), "size-per-class" (each
    # class's covariance alone) and "real-sources" (which source group a REAL picture is from)
    invariant: tuple[str, ...] = ()
    # > 0: refit ``WORST_GROUP_ROUNDS`` times, each time weighting up the source groups (per class) the last
    # head fitted worst on its training rows, by exp(step * (group's loss / all rows' loss - 1)) (``fit_rows``)
    worst_group_step: float = 0.0
    # True: one head per tapped layer (its means and deviations), fitted alone with the same weights and penalty;
    # the member's logit is the mean of theirs, so no layer's features can lean on another's (``fit_rows``)
    per_tap: bool = False
    # pooled statistics the head leaves out: "mean", "std", "gram" (the channel correlations of ``gram_taps``)
    skip_stats: tuple[str, ...] = ()


def feature_layout(view) -> list[tuple[str, str, int]]:
    """The view's features in cache order, as (tap, statistic, count) blocks: each tap's means, then (``mean_std``)
    each tap's deviations, then the channel correlations (``gram``) of each of its ``gram_taps``."""
    widths = {tap: tap_width(VARIANTS[view.backbone], tap) for tap in (*view.taps, *view.gram_taps)}
    blocks = [(tap, "mean", widths[tap]) for tap in view.taps]
    if view.pooling == "mean_std":
        blocks += [(tap, "std", widths[tap]) for tap in view.taps]
    return blocks + [(tap, "gram", widths[tap] * (widths[tap] - 1) // 2) for tap in view.gram_taps]


def _read_blocks(recipe: Recipe) -> list[tuple[str, np.ndarray]]:
    """(tap, feature indices) for every block of the recipe's view, and whether the head reads it."""
    view = backbone_view(recipe.backbone_view)
    unknown = sorted(set(recipe.skip_taps) - set(view.taps))
    if unknown:
        raise ValueError(f"{view.name} taps no {unknown}")
    blocks, start = [], 0
    for tap, statistic, count in feature_layout(view):
        read = tap not in recipe.skip_taps and statistic not in recipe.skip_stats
        blocks.append((tap, np.arange(start, start + count), read))
        start += count
    return blocks


def tap_columns(recipe: Recipe) -> list[np.ndarray]:
    """For each tap the head reads, in tap order, the indices of its features that the head reads (its means,
    deviations and channel correlations, less ``recipe.skip_stats``)."""
    columns: dict[str, list[np.ndarray]] = {}
    for tap, indices, read in _read_blocks(recipe):
        if read:
            columns.setdefault(tap, []).append(indices)
    return [np.concatenate(parts) for parts in columns.values()]


def used_columns(recipe: Recipe) -> np.ndarray:
    """Whether the head reads each feature of its view: the taps' means in order, then (``mean_std``) their
    deviations in the same order, then the channel correlations of the view's ``gram_taps``; the taps in
    ``recipe.skip_taps`` and the statistics in ``recipe.skip_stats`` are left out."""
    blocks = _read_blocks(recipe)
    return np.concatenate([np.full(len(indices), read) for _, indices, read in blocks])


@dataclass
class TrainingSet:
    """The train split of the cache: one row per (picture, view)."""

    picture: np.ndarray  # index into the cache's rows
    view: np.ndarray
    label: np.ndarray
    source: np.ndarray
    group: np.ndarray
    long_side: np.ndarray
    fold: np.ndarray  # of the picture, under one fold seed
    features: dict[str, np.ndarray]


def samples_of(rows: list[dict]) -> list[Sample]:
    return [Sample(r["path"], int(r["label"]), r["source"], r["group"], r["split"]) for r in rows]


def picture_folds(rows: list[dict], seed: int, folds: int = FOLDS) -> np.ndarray:
    """Fold per cache row (-1 for test rows); pool groups, modern games and FAKE art generators stay whole."""
    train = [i for i, r in enumerate(rows) if r["split"] == "train"]
    fold_of = np.full(len(rows), -1)
    fold_of[train] = assign_folds(samples_of([rows[i] for i in train]), folds, seed)
    return fold_of


def training_set(rows: list[dict], arrays: dict, views: tuple[str, ...], fold_seed: int) -> TrainingSet:
    folds = picture_folds(rows, fold_seed)
    parts = {key: [] for key in ("picture", "view", "long_side")}
    features: dict[str, list] = {}
    for view in views:
        if f"{view}/row" not in arrays:
            continue
        picture = arrays[f"{view}/row"]
        keep = np.array([rows[i]["split"] == "train" for i in picture], dtype=bool)
        parts["picture"].append(picture[keep])
        parts["view"].append(np.full(keep.sum(), view))
        parts["long_side"].append(arrays[f"{view}/long_side"][keep])
        for key, value in arrays.items():
            if key.startswith(view + "/") and key.split("/", 1)[1] not in ("row", "long_side"):
                features.setdefault(key.split("/", 1)[1], []).append(value[keep])
    picture = np.concatenate(parts["picture"])
    return TrainingSet(
        picture=picture,
        view=np.concatenate(parts["view"]),
        label=np.array([rows[i]["label"] for i in picture]),
        source=np.array([rows[i]["source"] for i in picture]),
        group=np.array([rows[i]["group"] or rows[i]["source"] for i in picture]),
        long_side=np.concatenate(parts["long_side"]),
        fold=folds[picture],
        features={key: np.concatenate(value) for key, value in features.items()},
    )


def sample_weights(data: TrainingSet, mask: np.ndarray, recipe: Recipe) -> np.ndarray:
    """Weights for the rows in ``mask``: source shares, class balance, group damping, matched sizes."""
    weights = np.zeros(len(data.label))
    index = np.flatnonzero(mask)
    for source in np.unique(data.source[index]):
        in_source = index[data.source[index] == source]
        labels = np.unique(data.label[in_source])
        for label in labels:
            rows = in_source[data.label[in_source] == label]
            _, inverse, counts = np.unique(data.group[rows], return_inverse=True, return_counts=True)
            group_weight = counts.astype(float) ** recipe.group_power
            per_row = group_weight[inverse] / counts[inverse]
            weights[rows] = recipe.shares.get(source, 0.05) / len(labels) * per_row / per_row.sum()
    for label in (0, 1):  # the classes weigh the same in all
        rows = index[data.label[index] == label]
        if len(rows):
            weights[rows] *= 0.5 / weights[rows].sum()
    if recipe.match_sizes:
        bins = np.digitize(data.long_side, SIZE_BINS[1:-1])
        share = np.zeros((2, len(SIZE_BINS) - 1))
        for label in (0, 1):
            rows = index[data.label[index] == label]
            share[label] = np.bincount(bins[rows], weights[rows], minlength=share.shape[1])
        share /= share.sum(axis=1, keepdims=True)
        target = share.mean(axis=0)
        factor = np.clip(target / np.maximum(share, 1e-9), 0.2, 5.0)
        weights[index] *= factor[data.label[index], bins[index]]
    return weights * (mask.sum() / weights[index].sum())


@dataclass
class LinearHead:
    """p(FAKE) = sigmoid(features @ kernel + bias), on raw pooled features."""

    kernel: np.ndarray
    bias: float

    def logits(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(features, np.float64) @ self.kernel + self.bias


INVARIANTS = ("size", "size-per-class", "real-sources")


def nuisances(data: TrainingSet, rows: np.ndarray, invariant: tuple[str, ...]) -> np.ndarray | None:
    """Per-row variables (one column each) that the head's logit must not follow inside a class: the view's
    log long side ("size"; "size-per-class": one column per class, zero on the other class's rows, so that
    neither class's logit follows size), and one indicator per REAL source group ("real-sources", zero on FAKE
    rows)."""
    unknown = sorted(set(invariant) - set(INVARIANTS))
    if unknown:
        raise ValueError(f"unknown invariants {unknown}; choose from {INVARIANTS}")
    columns = []
    log_size = np.log(np.maximum(data.long_side[rows], 1)).astype(np.float64)
    if "size" in invariant:
        columns.append(log_size[:, None])
    if "size-per-class" in invariant:
        columns.append(log_size[:, None] * (data.label[rows][:, None] == np.array([[0, 1]])))
    if "real-sources" in invariant:
        real = data.label[rows] == 0
        groups = np.unique(data.group[rows][real])
        columns.append((data.group[rows][:, None] == groups[None, :]) & real[:, None])
    return np.hstack(columns).astype(np.float64) if columns else None


def nuisance_directions(
    x: np.ndarray, labels: np.ndarray, weights: np.ndarray, nuisance: np.ndarray, tolerance: float = 1e-6
) -> np.ndarray:
    """Orthonormal columns spanning each nuisance variable's weighted within-class covariance with the
    features ``x``, summed over the classes. A kernel orthogonal to them gives a logit whose within-class
    covariances with a nuisance variable sum to zero on these rows. For REAL source indicators (zero on FAKE
    rows) that is exact for the REAL class: every REAL source group gets the same mean logit. For size it
    holds for the two classes together only: the logit may still rise with size among REAL pictures if it
    falls as much among FAKE ones; with one size column per class ("size-per-class") it holds in each."""
    covariance = np.zeros((x.shape[1], nuisance.shape[1]))
    for label in np.unique(labels):
        rows = labels == label
        w = weights[rows] / weights[rows].sum()
        centred = nuisance[rows] - w @ nuisance[rows]
        covariance += x[rows].T @ (w[:, None] * centred)  # the features' own mean cancels against the centring
    basis, singular, _ = np.linalg.svd(covariance, full_matrices=False)
    return basis[:, singular > tolerance * max(singular.max(initial=0.0), 1e-300)]


def fit_head(
    features: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    l2: float,
    nuisance: np.ndarray | None = None,
    start: LinearHead | None = None,
    standardise: bool = True,
    offset: np.ndarray | None = None,
) -> LinearHead:
    """Weighted logistic regression with an L2 penalty on standardised features (L-BFGS); with ``nuisance``
    (rows by variables, see ``nuisances``) the kernel is kept orthogonal to ``nuisance_directions``. ``start``:
    a head fitted on the same features and nuisance (other weights) to set out from, for a faster refit.
    ``standardise=False``: the features are on the scale the penalty should see already. ``offset`` (per row): a
    logit the head's own is added to in the loss, so that the head fits what ``offset`` leaves unexplained
    (``ensemble.lab.complementary``)."""
    x = np.asarray(features, np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-3
    if not standardise:
        mean, std = np.zeros(x.shape[1]), np.ones(x.shape[1])
    x = (x - mean) / std
    directions = None  # or orthonormal columns to keep the kernel away from
    if nuisance is not None and nuisance.shape[1]:
        directions = nuisance_directions(x, np.asarray(labels), np.asarray(weights, np.float64), nuisance)
        directions = directions if directions.shape[1] else None
    if directions is not None:
        x -= (x @ directions) @ directions.T
    y = np.asarray(labels, np.float64)
    w = np.asarray(weights, np.float64) / np.sum(weights)
    shift = np.zeros(len(y)) if offset is None else np.asarray(offset, np.float64)

    def objective(params):
        kernel, bias = params[:-1], params[-1]
        margin = x @ kernel + bias + shift
        p = sigmoid(margin)
        loss = np.sum(w * (np.logaddexp(0.0, margin) - y * margin)) + 0.5 * l2 * kernel @ kernel
        residual = w * (p - y)
        gradient = np.concatenate([x.T @ residual + l2 * kernel, [residual.sum()]])
        return loss, gradient

    initial = np.zeros(x.shape[1] + 1)
    if start is not None:  # the same logits on the standardised features
        initial = np.concatenate([start.kernel * std, [start.bias + start.kernel @ mean]])
    result = minimize(objective, initial, jac=True, method="L-BFGS-B", options={"maxiter": 500})
    kernel = result.x[:-1]
    if directions is not None:
        kernel = kernel - directions @ (directions.T @ kernel)
    kernel = kernel / std
    return LinearHead(kernel=kernel, bias=float(result.x[-1] - kernel @ mean))


def out_of_fold(data: TrainingSet, recipe: Recipe, folds: int = FOLDS, scored_view: str | None = None) -> np.ndarray:
    """Logit per training row from the head fitted without that row's fold (NaN for views not fitted on).
    ``scored_view``: a cached backbone view the held-out rows are read from instead of the recipe's own (same
    features, other squares: ``ensemble.lab.grid_squares``)."""
    features = data.features[scored_view or recipe.backbone_view]
    in_views = np.isin(data.view, recipe.views)
    logits = np.full(len(data.label), np.nan)
    for fold in range(folds):
        fit = in_views & (data.fold != fold)
        head = fit_rows(data, fit, recipe)
        held = data.fold == fold
        logits[held] = head.logits(features[held])
    return logits


def fit_rows(data: TrainingSet, fit: np.ndarray, recipe: Recipe, offset: np.ndarray | None = None) -> LinearHead:
    """The head fitted on the rows in ``fit``; a skipped tap's features get zero weight. With
    ``recipe.worst_group_step`` it is refitted with the worst-fitted groups weighted up (``worst_group_factors``).
    ``offset`` (one logit per row of ``data``): added to the head's logit in the loss (``fit_head``)."""
    weights = sample_weights(data, fit, recipe)
    features = data.features[recipe.backbone_view]
    nuisance = nuisances(data, fit, recipe.invariant)
    used = used_columns(recipe) if recipe.skip_taps or recipe.skip_stats else np.ones(features.shape[1], bool)
    if len(used) != features.shape[1]:
        raise ValueError(f"{recipe.backbone_view}: {features.shape[1]} features cached, the taps make {len(used)}")
    if offset is not None and (recipe.per_tap or recipe.worst_group_step > 0):
        raise ValueError("an offset is fitted with one plain head only (no per_tap, no worst_group_step)")
    if recipe.per_tap:
        return _fit_per_tap(data, fit, recipe, weights, nuisance)
    x = features[fit] if used.all() else features[np.ix_(fit, used)]
    shift = None if offset is None else offset[fit]
    head = fit_head(x, data.label[fit], weights[fit], recipe.l2, nuisance, offset=shift)
    if recipe.worst_group_step > 0:
        cells = np.char.add(data.group[fit].astype("U"), np.where(data.label[fit] == 1, "/FAKE", "/REAL"))
        factor = np.ones(len(x))
        for _ in range(WORST_GROUP_ROUNDS):
            factor = worst_group_factors(
                head.logits(x), data.label[fit], weights[fit], cells, recipe.worst_group_step, factor
            )
            head = fit_head(x, data.label[fit], weights[fit] * factor, recipe.l2, nuisance, start=head)
    kernel = np.zeros(features.shape[1])
    kernel[used] = head.kernel
    return LinearHead(kernel=kernel, bias=head.bias)


def _fit_per_tap(
    data: TrainingSet, fit: np.ndarray, recipe: Recipe, weights: np.ndarray, nuisance: np.ndarray | None
) -> LinearHead:
    """``Recipe.per_tap``: one head per read tap on the rows in ``fit``, averaged into one linear head."""
    features = data.features[recipe.backbone_view]
    columns = tap_columns(recipe)
    kernel, bias = np.zeros(features.shape[1]), 0.0
    for tap in columns:
        head = fit_head(features[np.ix_(fit, tap)], data.label[fit], weights[fit], recipe.l2, nuisance)
        kernel[tap] += head.kernel / len(columns)
        bias += head.bias / len(columns)
    return LinearHead(kernel=kernel, bias=bias)


def worst_group_factors(
    logits: np.ndarray, labels: np.ndarray, weights: np.ndarray, cells: np.ndarray, step: float, factor: np.ndarray
) -> np.ndarray:
    """``factor`` (per row) times exp(step * (cell's log loss / all rows' - 1)) for each row's cell (a source group
    and class), clipped to ``WORST_GROUP_CLIP``, then scaled so that each class keeps its weight. ``weights``: the
    rows' weights before any group was weighted up; the losses are weighed by ``weights * factor``."""
    loss = np.logaddexp(0.0, logits) - labels * logits
    current = weights * factor
    _, cell = np.unique(cells, return_inverse=True)
    cell_loss = np.bincount(cell, current * loss) / np.maximum(np.bincount(cell, current), 1e-300)
    overall = np.sum(current * loss) / np.sum(current)
    updated = np.clip(factor * np.exp(step * (cell_loss[cell] / overall - 1.0)), *WORST_GROUP_CLIP)
    for label in (0, 1):
        rows = labels == label
        if rows.any():
            updated[rows] *= weights[rows].sum() / (weights[rows] * updated[rows]).sum()
    return updated


def memo_file(data: TrainingSet, recipe: Recipe, memo: Path) -> Path:
    """Where ``remembered_out_of_fold`` keeps a recipe's logits: named by a hash of the recipe and of what its
    fits read (features, labels, folds, views), so that a re-cached view never reuses old logits."""
    digest = hashlib.sha256()
    for array in (data.features[recipe.backbone_view], data.label, data.fold, data.view.astype("U")):
        digest.update(np.ascontiguousarray(array).data)
    fields = asdict(recipe)
    for name in ("skip_taps", "invariant", "worst_group_step", "per_tap", "skip_stats"):
        if not fields[name]:
            del fields[name]  # recipes from before the field keep the logits already remembered
    key = json.dumps({"recipe": fields, "folds": FOLDS, "rows": digest.hexdigest()}, sort_keys=True)
    return Path(memo) / f"{recipe.backbone_view}_{hashlib.sha256(key.encode()).hexdigest()[:16]}.npy"


def read_or_fit_out_of_fold(path: Path, data: TrainingSet, recipe: Recipe) -> np.ndarray:
    """The logits kept at ``path`` (a ``memo_file``), or ``out_of_fold`` fitted and kept there."""
    if path.is_file():
        return np.load(path)
    logits = out_of_fold(data, recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path.with_suffix(".tmp.npy"), logits)
    path.with_suffix(".tmp.npy").replace(path)  # a run cut while writing leaves no half file under the key
    return logits


def remembered_out_of_fold(data: TrainingSet, recipe: Recipe, memo: Path | None) -> np.ndarray:
    """``out_of_fold``, kept in ``memo`` (a folder; None: not kept; see ``memo_file``), so that ``train`` and
    ``ensemble.lab.selection`` fit each recipe's folds once per fold seed, whichever runs first."""
    if memo is None:
        return out_of_fold(data, recipe)
    return read_or_fit_out_of_fold(memo_file(data, recipe, memo), data, recipe)


def fit_full(data: TrainingSet, recipe: Recipe) -> LinearHead:
    """The shipped head: fitted on every training row of the recipe's views."""
    return fit_rows(data, np.isin(data.view, recipe.views), recipe)


def held_out_groups(rows: list[dict]) -> list[str]:
    """The source groups that only the test split holds (the pool's ten test sources; real-vs-ai's fixed split
    shares its sources with train), so no training row comes from them; recorded in the manifest."""
    groups = {"train": set(), "test": set()}
    for row in rows:
        groups.setdefault(row["split"], set()).add(row["group"] or row["source"])
    return sorted(groups["test"] - groups["train"])
