"""Does letting the backbone's last stage learn help on sources never seen? An out-of-fold probe.

    python -m ensemble.lab.upper_stages data/features --seeds 0 1 [--epochs 2] [--lr 3e-5] [--from-block 15]

The shipped whole-picture member is a linear head on pooled taps of a frozen Lite0. Here the last stage
(block 15 and the top convolution, 1.0 M weights) learns as well, on the cached output of block 14
(``features.BackboneView`` "lite0_224_crop_block14", ``pooling="spatial"``), so an epoch takes about a minute on
two cores instead of a full network's hour. ``--from-block 11`` trains stages 5 and 6 too (blocks 11-15), on the
cached output of block 10 ("lite0_224_crop_block10"), about six times the cost:

1. linear probe: the head on every tap of "lite0_224_crop_taps_std" (the stages below the first learning block
   stay frozen and are read from the cache), fitted as ``heads.fit_head`` fits it;
2. fine-tuning from there: the learning blocks, the top convolution and the head together (Adam, batch normalisation
   frozen), on the same objective (weighted logistic loss and the head's L2 penalty), so the upper layers move
   only where the loss gains. Starting from the probe keeps the pretrained features from being torn up by a
   random head's first gradients.

Each fold's member never saw the held-out fold's sources; the out-of-fold logits are scored as
``ensemble.lab.selection`` scores recipes, alone and in place of the whole-picture member in the shipped trio,
against the shipped trio. The test split is never read.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ensemble.features import backbone_view, load_cache
from ensemble.heads import (
    FOLDS,
    Recipe,
    feature_layout,
    fit_head,
    remembered_out_of_fold,
    sample_weights,
    training_set,
)

POOLED_VIEW = "lite0_224_crop_taps_std"
# Where the learning part may start, and the cached spatial view that is its input (the previous block's output).
SPATIAL_VIEWS = {15: "lite0_224_crop_block14", 11: "lite0_224_crop_block10"}


@dataclass(frozen=True)
class Tuning:
    epochs: int = 2
    lr: float = 3e-5  # the peak of the schedule
    batch: int = 64
    l2: float = 1e-2  # the head's penalty on standardised features, as ``heads.fit_head``'s
    seed: int = 0
    first_block: int = 15  # the first block that learns (15: the last stage; 11: stages 5 and 6)


def learned_taps(first_block: int) -> tuple[str, ...]:
    """The pooled view's taps that come from the learning layers (those of block ``first_block`` and after)."""
    return tuple(
        tap for tap in backbone_view(POOLED_VIEW).taps if tap == "top_activation" or _block_of(tap) >= first_block
    )


def _block_of(tap: str) -> int:
    return int(tap[len("block") : tap.index("_")]) if tap.startswith("block") else -1


def column_order(first_block: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the cached pooled features: the frozen taps' columns (means then deviations, in cache order),
    and the learned taps' columns in the order ``upper_model`` outputs them (each learned tap's mean, then each
    one's deviation)."""
    learned = learned_taps(first_block)
    frozen, learned_means, learned_stds, start = [], [], [], 0
    for tap, statistic, count in feature_layout(backbone_view(POOLED_VIEW)):
        columns = list(range(start, start + count))
        start += count
        if tap not in learned:
            frozen += columns
        elif statistic == "mean":
            learned_means += columns
        else:
            learned_stds += columns
    return np.array(frozen), np.array(learned_means + learned_stds)


def upper_model(frozen_width: int, first_block: int = 15):
    """(the output of the block before ``first_block``, frozen pooled features) -> [frozen features, learned taps'
    means and deviations]: the ImageNet blocks from ``first_block`` on and the top convolution, their shortcuts
    as in the backbone (stochastic depth left out), batch normalisation in inference mode and not trained."""
    import keras

    from ensemble.classifier import build_classifier, spatial_deviation
    from ensemble.lite_layout import VARIANTS, block_plan

    backbone = build_classifier("lite0", 224)
    names = {layer.name for layer in backbone.layers}
    before = f"block{first_block - 1}_add"
    if before not in names:
        raise ValueError(f"block {first_block - 1} has no shortcut output to start from; choose from {SPATIAL_VIEWS}")
    spatial = keras.Input(backbone.get_layer(before).output.shape[1:], name=f"block{first_block - 1}")
    frozen = keras.Input((frozen_width,), name="frozen")
    taps = learned_taps(first_block)
    x, pooled = spatial, {}

    def apply(name, x):
        layer = backbone.get_layer(name)
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
            return layer(x, training=False)
        return layer(x)

    plan = block_plan(VARIANTS["lite0"])
    for index in range(first_block, len(plan)):
        shortcut, prefix = x, f"block{index}_"
        parts = ("expand_conv", "expand_bn", "expand_activation") if plan[index]["expand"] != 1 else ()
        for part in (*parts, "dwconv", "dw_bn", "dw_activation", "project_conv", "project_bn"):
            x = apply(prefix + part, x)
            if prefix + part in taps:
                pooled[prefix + part] = x
        if prefix + "add" in names:
            x = backbone.get_layer(prefix + "add")([x, shortcut])
    for name in ("top_conv", "top_bn", "top_activation"):
        x = apply(name, x)
    pooled["top_activation"] = x
    means = [keras.ops.mean(pooled[name], axis=(1, 2)) for name in taps]
    stds = [spatial_deviation(pooled[name], mean) for name, mean in zip(taps, means)]
    return keras.Model([spatial, frozen], keras.ops.concatenate([frozen, *means, *stds], axis=1))


class FineTuned:
    """The upper layers and a head on standardised features, fitted on some rows and scoring others."""

    def __init__(
        self,
        frozen_width: int,
        mean: np.ndarray,
        std: np.ndarray,
        kernel: np.ndarray,
        bias: float,
        first_block: int = 15,
    ):
        import tensorflow as tf

        self.features = upper_model(frozen_width, first_block)
        self.mean = tf.constant(mean, tf.float32)
        self.std = tf.constant(std, tf.float32)
        self.kernel = tf.Variable(kernel[:, None].astype(np.float32))  # on standardised features
        self.bias = tf.Variable(np.float32(bias))

    def logits(self, spatial, frozen, training: bool = False):
        import tensorflow as tf

        x = (self.features([spatial, frozen], training=training) - self.mean) / self.std
        return tf.squeeze(x @ self.kernel, 1) + self.bias

    def fit(self, spatial: np.ndarray, frozen: np.ndarray, labels: np.ndarray, weights: np.ndarray, tuning: Tuning):
        import keras
        import tensorflow as tf

        variables = [*self.features.trainable_variables, self.kernel, self.bias]
        steps = tuning.epochs * -(-len(labels) // tuning.batch)
        # warmed up over the first tenth of the steps, so that Adam's first, sign-like steps do not push every
        # weight (the probe's head too, already at its optimum) by the full rate; then down to zero
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, steps - steps // 10, warmup_target=tuning.lr, warmup_steps=max(1, steps // 10)
        )
        optimizer = keras.optimizers.Adam(schedule)

        @tf.function(reduce_retracing=True)
        def step(s, f, y, w):
            with tf.GradientTape() as tape:
                margin = self.logits(s, f, training=True)
                losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=margin)
                loss = tf.reduce_sum(w * losses) + 0.5 * tuning.l2 * tf.reduce_sum(self.kernel**2)
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss

        rng = np.random.default_rng(tuning.seed)
        weights = weights / weights.sum()
        for _ in range(tuning.epochs):
            order = rng.permutation(len(labels))
            for start in range(0, len(order), tuning.batch):
                rows = np.sort(order[start : start + tuning.batch])
                # each batch's share of the epoch's weight, so that an epoch's steps sum to the whole objective
                batch_w = weights[rows] * (len(order) / len(rows))
                step(*self._inputs(spatial, frozen, rows), labels[rows].astype(np.float32), batch_w.astype(np.float32))

    def _inputs(self, spatial: np.ndarray, frozen: np.ndarray, rows) -> tuple[np.ndarray, np.ndarray]:
        """The model's float32 inputs for ``rows`` of the cached (flattened, float16) spatial and frozen features."""
        shape = (-1, *self.features.inputs[0].shape[1:])
        return spatial[rows].astype(np.float32).reshape(shape), frozen[rows].astype(np.float32)

    def predict(self, spatial: np.ndarray, frozen: np.ndarray, batch: int = 256) -> np.ndarray:
        out = [
            np.asarray(self.logits(*self._inputs(spatial, frozen, slice(i, i + batch))))
            for i in range(0, len(spatial), batch)
        ]
        return np.concatenate(out) if out else np.zeros(0)


def probe_start(pooled: np.ndarray, labels: np.ndarray, weights: np.ndarray, l2: float, first_block: int = 15):
    """The linear probe on every cached tap (frozen columns first, then the learned taps' means and deviations):
    the standardisation the fine-tuning keeps, and the head on standardised features (``heads.fit_head``).

    A learned column's scale is floored at a tenth of the learned columns' median: a channel that no training
    picture switches on (a constant column) would otherwise be divided by almost nothing once the fine-tuning
    wakes it, and its standardised value would swamp the head.
    """
    frozen_columns, learned_columns = column_order(first_block)
    x = np.asarray(pooled[:, np.concatenate([frozen_columns, learned_columns])], np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-3
    learned = np.arange(len(frozen_columns), x.shape[1])
    std[learned] = np.maximum(std[learned], 0.1 * np.median(std[learned]))
    head = fit_head((x - mean) / std, labels, weights, l2, standardise=False)
    return mean, std, head.kernel, head.bias


def out_of_fold(data, tuning: Tuning, recipe: Recipe, folds: int = FOLDS, keep: Path | None = None):
    """Per training row: the linear probe's and the fine-tuned member's logit, each from the fold that never saw
    that row's fold (NaN outside ``recipe.views``).

    With ``keep`` (an ``.npz`` memo): a memo already there is read instead; otherwise each finished fold's
    held-out logits are saved beside it as ``<memo>_fold<k>.npz``, so that a run stopped after an hour loses one
    fold, not all of them, and once every fold is in, the memo is written and the fold files go."""
    import keras

    if keep is not None and keep.is_file():
        with np.load(keep) as kept:
            return kept["probe"], kept["tuned"]
    pooled, spatial = data.features[POOLED_VIEW], data.features[SPATIAL_VIEWS[tuning.first_block]]
    frozen_columns, _ = column_order(tuning.first_block)
    frozen = pooled[:, frozen_columns]
    in_views = np.isin(data.view, recipe.views)
    probe, tuned = np.full(len(data.label), np.nan), np.full(len(data.label), np.nan)
    for fold in range(folds):
        held = data.fold == fold
        saved = None if keep is None else keep.with_name(f"{keep.stem}_fold{fold}.npz")
        if saved is not None and saved.is_file():
            with np.load(saved) as kept:
                probe[held], tuned[held] = kept["probe"], kept["tuned"]
            continue
        started = time.time()
        keras.utils.set_random_seed(tuning.seed * 100 + fold)
        fit = in_views & (data.fold != fold)
        weights = sample_weights(data, fit, recipe)[fit]
        start = probe_start(pooled[fit], data.label[fit], weights, tuning.l2, tuning.first_block)
        model = FineTuned(len(frozen_columns), *start, first_block=tuning.first_block)
        probe[held] = model.predict(spatial[held], frozen[held])
        model.fit(spatial[fit], frozen[fit], data.label[fit], weights, replace(tuning, seed=tuning.seed * 100 + fold))
        tuned[held] = model.predict(spatial[held], frozen[held])
        if saved is not None:
            np.savez(saved, probe=probe[held], tuned=tuned[held])
        print(f"fold {fold}: {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    if keep is not None:
        np.savez(keep, probe=probe, tuned=tuned)
        for fold in range(folds):
            keep.with_name(f"{keep.stem}_fold{fold}.npz").unlink(missing_ok=True)
    return probe, tuned


def run(cache: str, seeds: list[int], tuning: Tuning) -> dict:
    from ensemble.lab.selection import V2, V2_MEMBERS, TrioComparison, variants

    recipes = variants()
    shipped = {name: recipes[name] for name in V2_MEMBERS}
    whole, *others = V2_MEMBERS
    recipe = replace(shipped[whole], skip_taps=(), l2=tuning.l2)  # its weights and views; every tap read
    spatial_view = SPATIAL_VIEWS[tuning.first_block]
    learning = "last stage" if tuning.first_block == 15 else f"blocks {tuning.first_block}-15"
    views = sorted({r.backbone_view for r in shipped.values()} | {spatial_view})
    rows, arrays = load_cache(cache, views)
    comparison = TrioComparison()
    for seed in seeds:
        data = training_set(rows, arrays, ("telegram", "small"), fold_seed=seed)
        if data.features[spatial_view].shape[0] != data.features[POOLED_VIEW].shape[0]:
            raise ValueError(f"{spatial_view} and {POOLED_VIEW} cache different rows; rebuild {spatial_view}")
        start = "" if tuning.first_block == 15 else f"_from{tuning.first_block}"
        memo = (
            Path(cache) / "oof" / f"upper_stages{start}_seed{seed}_e{tuning.epochs}_lr{tuning.lr:g}_l2{tuning.l2:g}.npz"
        )
        probe, tuned = out_of_fold(data, replace(tuning, seed=seed), recipe, keep=memo)
        judged = data.view == "telegram"
        labels, sources, sizes, groups = (a[judged] for a in (data.label, data.source, data.long_side, data.group))
        logits = {name: remembered_out_of_fold(data, r, Path(cache) / "oof")[judged] for name, r in shipped.items()}
        rest = [logits[name] for name in others]
        candidates = {
            V2: np.mean(list(logits.values()), axis=0),
            whole: logits[whole],
            "whole, linear probe on every tap": probe[judged],
            f"whole, {learning} fine-tuned": tuned[judged],
            "trio, whole as linear probe on every tap": np.mean([probe[judged], *rest], axis=0),
            f"trio, whole with {learning} fine-tuned": np.mean([tuned[judged], *rest], axis=0),
        }
        comparison.add(candidates, labels, sources, sizes, groups)
        print(f"fold seed {seed} done", file=sys.stderr, flush=True)
    table = comparison.report(seeds)
    return {"seeds": seeds, "tuning": tuning.__dict__, "recipes": table, "gains": comparison.gains}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ensemble.lab.upper_stages", description=__doc__.splitlines()[0])
    parser.add_argument("cache", nargs="?", default="data/features")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=Tuning.epochs)
    parser.add_argument("--lr", type=float, default=Tuning.lr)
    parser.add_argument("--l2", type=float, default=Tuning.l2)
    parser.add_argument(
        "--from-block", type=int, default=Tuning.first_block, choices=sorted(SPATIAL_VIEWS), help="first block to train"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    views = (SPATIAL_VIEWS[args.from_block], POOLED_VIEW)
    missing = [v for v in views if not (Path(args.cache) / v / "view.json").is_file()]
    if missing:
        print(
            f"error: {args.cache} has no features of {', '.join(missing)}; cache them first with `python -m "
            f"ensemble.features ../shared/datasets/real-vs-ai ../pool --out {args.cache} --views {' '.join(missing)}`",
            file=sys.stderr,
        )
        return 2
    run(args.cache, args.seeds, Tuning(epochs=args.epochs, lr=args.lr, l2=args.l2, first_block=args.from_block))
    return 0


if __name__ == "__main__":
    sys.exit(main())
