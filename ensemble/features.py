"""Frozen-backbone features of every picture view, cached once, so that member heads train in seconds.

    python -m ensemble.features ../shared/datasets/real-vs-ai ../pool --out data/features

The members are ImageNet EfficientNet-Lite backbones, frozen, each with a trained linear head on its pooled
features (``ensemble.heads``). A linear head on averaged features equals the average of the head's logits
over a picture's views, so the cache keeps one averaged feature vector per picture, view and backbone, and
fitting, folds, seeds and recipe comparisons never run a network again.

Views (all through ``ensemble.preprocess.model_inputs``, the serving preprocess):
  * ``plain``: the picture as stored (test splits only);
  * ``telegram``: what a Telegram photo of it looks like (``ensemble.views.telegram_view``);
  * ``small``: train split, pictures whose long side exceeds ``SMALL_MAX``: scaled down to a random long
    side between ``SMALL_MIN`` and ``SMALL_MAX`` and JPEG-compressed at a random quality, so that FAKE
    pictures (median long side 768 px at their source) are also seen at the sizes most REAL training
    pictures have (256 px), and size stops telling the classes apart.

Decoded pictures never stay in memory: each chunk is decoded, viewed, run and dropped, and every
``SHARD`` pictures go to disk, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ensemble.data import Sample, load_dataset, manifest_hash
from ensemble.predict_batch import logits_over_views
from ensemble.preprocess import ImageRejected, open_image
from ensemble.views import jpeg_roundtrip, telegram_view

SMALL_MIN, SMALL_MAX = 224, 640
CIFAKE_TRAIN_LIMIT = 3000  # CIFAKE is 8,500 tiny train pictures; this many carry what it teaches
SHARD = 1024
CHUNK = 32
GRID_TRAIN_SQUARES = 4


@dataclass(frozen=True)
class BackboneView:
    """One frozen backbone, how a picture becomes its input, and which layers' averages are its features."""

    name: str
    backbone: str
    input_size: int
    policy: str
    taps: tuple[str, ...] = ("top_activation",)
    pooling: str = "mean"  # "mean_std": each tap's spatial standard deviation too, after all the means;
    # "spatial": the one tap's whole activation, flattened (what ``ensemble.lab.upper_stages`` trains on)
    input_filter: str = "none"  # "highpass", "npr", "bandpass": the backbone reads a residual (backbone.filtered)
    gram_taps: tuple[str, ...] = ()  # layers whose channel correlations follow (classifier.channel_correlations)
    # > 0: a train-split view's features are averaged over at most this many of its squares, a random choice
    # fixed per picture and view (the test splits' over all of them, as served): an unbiased estimate of the
    # served average at a fraction of the cost of a grid of 16 squares
    train_squares: int = 0


# The ReLU6 activations that open each stage, where low-level (pixel-scale) statistics still live, and the top.
LITE0_TAPS = (
    "stem_activation",
    "block1_expand_activation",
    "block3_expand_activation",
    "block5_expand_activation",
    "block8_expand_activation",
    "block11_expand_activation",
    "block15_expand_activation",
    "top_activation",
)

# The same stage openings in Lite2 (its stages have more blocks): the whole-picture member's taps on a bigger
# backbone, tried as a third member (docs/experiments.md, "A Lite2 whole-picture member")
LITE2_TAPS = (
    "stem_activation",
    "block1_expand_activation",
    "block4_expand_activation",
    "block7_expand_activation",
    "block11_expand_activation",
    "block15_expand_activation",
    "block20_expand_activation",
)

# The two first layers at full resolution (32 and 96 channels): 496 + 4,560 channel correlations.
GRAM_TAPS = ("stem_activation", "block1_expand_activation")

BACKBONE_VIEWS = (
    BackboneView("lite0_224_crop", "lite0", 224, "crop"),
    BackboneView("lite2_260_crop", "lite2", 260, "crop"),
    BackboneView("lite0_224_native", "lite0", 224, "native"),
    BackboneView("lite0_224_crop_taps", "lite0", 224, "crop", LITE0_TAPS),
    BackboneView("lite0_224_native_taps", "lite0", 224, "native", LITE0_TAPS),
    BackboneView("lite0_224_crop_taps_std", "lite0", 224, "crop", LITE0_TAPS, "mean_std"),
    BackboneView("lite0_224_native_taps_std", "lite0", 224, "native", LITE0_TAPS, "mean_std"),
    BackboneView("lite0_224_native_highpass_std", "lite0", 224, "native", LITE0_TAPS, "mean_std", "highpass"),
    BackboneView("lite0_224_native_npr_std", "lite0", 224, "native", LITE0_TAPS, "mean_std", "npr"),
    BackboneView("lite0_224_native_bandpass_std", "lite0", 224, "native", LITE0_TAPS, "mean_std", "bandpass"),
    BackboneView(
        "lite0_224_native_highpass_gram", "lite0", 224, "native", LITE0_TAPS, "mean_std", "highpass", GRAM_TAPS
    ),
    BackboneView("lite0_224_crop_block14", "lite0", 224, "crop", ("block14_add",), "spatial"),
    # the input of stage 5 (blocks 11-14), for fine-tuning more of the whole-picture member
    # (docs/experiments.md, "How the members were chosen")
    BackboneView("lite0_224_crop_block10", "lite0", 224, "crop", ("block10_add",), "spatial"),
    # Detection v3 (docs/experiments.md, "Detection v3"): graphs that end at the last layer a head reads, the
    # members at the picture's own pixel scale over a grid of squares covering the whole picture
    BackboneView("lite0_224_crop_to15_std", "lite0", 224, "crop", LITE0_TAPS[:-1], "mean_std"),
    BackboneView(
        "lite0_224_grid_to11_std", "lite0", 224, "grid", LITE0_TAPS[:-2], "mean_std", train_squares=GRID_TRAIN_SQUARES
    ),
    # the same, a train picture's features averaged over its whole grid as served (no sample of squares): the
    # shipped grid member's view since 2026-12-07 (docs/experiments.md, "The grid member fitted on the whole grid")
    BackboneView("lite0_224_grid_to11_std_all", "lite0", 224, "grid", LITE0_TAPS[:-2], "mean_std"),
    BackboneView("lite2_260_crop_to20_std", "lite2", 260, "crop", LITE2_TAPS, "mean_std"),
    BackboneView(
        "lite0_224_grid_highpass_to11_std",
        "lite0",
        224,
        "grid",
        LITE0_TAPS[:-2],
        "mean_std",
        "highpass",
        train_squares=GRID_TRAIN_SQUARES,
    ),
)


def backbone_view(name: str) -> BackboneView:
    """The entry of ``BACKBONE_VIEWS`` called ``name``."""
    return next(spec for spec in BACKBONE_VIEWS if spec.name == name)


def small_view(image: Image.Image, seed: int) -> Image.Image | None:
    """The picture scaled down to a REAL-like size and re-compressed; None when it is small already."""
    width, height = image.size
    if max(width, height) <= SMALL_MAX:
        return None
    rng = np.random.default_rng(seed)
    long_side = float(np.exp(rng.uniform(np.log(SMALL_MIN), np.log(SMALL_MAX))))
    scale = long_side / max(width, height)
    image = image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.LANCZOS)
    return jpeg_roundtrip(image, int(rng.integers(70, 96)))


VIEW_SEEDS = {"plain": 0, "telegram": 1, "small": 2}  # added to the picture's seed for ``train_squares``


def picture_seed(sample: Sample) -> int:
    return int.from_bytes(hashlib.sha256(str(sample.path).encode()).digest()[:4], "little")


def select_samples(data_dirs: list[str]) -> list[tuple[str, Sample]]:
    """(data set name, sample) for every picture to cache: all of each set but most CIFAKE train pictures."""
    chosen = []
    for data_dir in data_dirs:
        name = Path(data_dir).resolve().name
        samples = load_dataset(data_dir)
        cifake_train = [i for i, s in enumerate(samples) if s.source == "cifake" and s.split == "train"]
        keep = set(range(len(samples)))
        if len(cifake_train) > CIFAKE_TRAIN_LIMIT:
            dropped = set(cifake_train) - set(
                np.random.default_rng(0).choice(cifake_train, CIFAKE_TRAIN_LIMIT, replace=False).tolist()
            )
            keep -= dropped
        chosen += [(name, samples[i]) for i in sorted(keep)]
    return chosen


def feature_runner(spec: BackboneView, threads: int = 2):
    """A function from a (views, size, size, 3) batch to pooled backbone features, on ONNX Runtime."""
    import keras
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    from ensemble.classifier import build_classifier, pooled_taps

    model = build_classifier(spec.backbone, spec.input_size, name=spec.name, input_filter=spec.input_filter)
    if spec.pooling == "spatial":
        (tap,) = spec.taps
        pooled = keras.Model(model.input, keras.layers.Flatten()(model.get_layer(tap).output))
    else:
        pooled = keras.Model(model.input, pooled_taps(model, spec.taps, spec.pooling, spec.gram_taps))
    signature = (tf.TensorSpec((None, spec.input_size, spec.input_size, 3), tf.float32, name="pictures"),)

    @tf.function(input_signature=signature)
    def features(pictures):
        return pooled(pictures, training=False)

    proto, _ = tf2onnx.convert.from_function(features, input_signature=signature, opset=17)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: np.asarray(batch, np.float32)})[0]


TEST_VIEWS = ("plain", "telegram")


def _views_of(sample: Sample, test_views: tuple[str, ...] = TEST_VIEWS):
    """{view name: picture} for one sample, or None when it cannot be read (or is a test picture and
    ``test_views`` is empty)."""
    if sample.split != "train" and not test_views:
        return None
    try:
        image = open_image(sample.path)
    except ImageRejected as error:
        print(f"skipping {sample.path}: {error}", file=sys.stderr)
        return None
    views = {"telegram": telegram_view(image)}
    if sample.split == "train":
        small = small_view(image, picture_seed(sample))
        if small is not None:
            views["small"] = small
    else:
        views = {"plain": image, **views}
        views = {name: views[name] for name in test_views}
    return {name: (picture, picture.size) for name, picture in views.items()}


class CacheMismatch(ValueError):
    """The cache folder holds features of other pictures."""


def _index_rows(chosen) -> list[dict]:
    keys = ("label", "source", "group", "split")
    return [
        {"dataset": name, "path": str(sample.path)} | {k: getattr(sample, k) for k in keys} for name, sample in chosen
    ]


def build_cache(
    data_dirs: list[str], out_dir: Path, specs=BACKBONE_VIEWS, test_views: tuple[str, ...] = TEST_VIEWS
) -> dict:
    """Cache the features of ``specs`` for every picture of ``data_dirs`` in ``out_dir``, resuming a cut run.

    Each backbone view has its own folder of shards (``out_dir/<view name>/shard_<first row>.npz``); a
    shard that some views lack is decoded once for all of them. ``test_views``: the views cached of test
    pictures (``python -m ensemble train`` caches the telegram view only, and never reads it).

    Returns:
        The cache's index: each data set's manifest hash and one row per picture.

    Raises:
        CacheMismatch: ``out_dir`` has a cache of other pictures.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = select_samples(data_dirs)
    index = {
        "data_manifest_sha256": {
            Path(data_dir).resolve().name: manifest_hash(load_dataset(data_dir), data_dir) for data_dir in data_dirs
        },
        "rows": _index_rows(chosen),
        **({} if tuple(test_views) == TEST_VIEWS else {"test_views": list(test_views)}),
    }
    if (out_dir / "index.json").is_file():
        if json.loads((out_dir / "index.json").read_text()) != index:
            raise CacheMismatch(f"{out_dir} caches other pictures; delete it or pass another --features folder")
    else:
        (out_dir / "index.json").write_text(json.dumps(index))
    for spec in specs:
        (out_dir / spec.name).mkdir(exist_ok=True)
        (out_dir / spec.name / "view.json").write_text(json.dumps(spec.__dict__))
    shards = range(0, len(chosen), SHARD)
    missing = {start: [s for s in specs if not _shard_path(out_dir, s, start).is_file()] for start in shards}
    needed = {spec for specs_left in missing.values() for spec in specs_left}
    runners = {spec: feature_runner(spec) for spec in specs if spec in needed}
    started, done = time.time(), 0
    with ThreadPoolExecutor(2) as pool:
        for shard_start in shards:
            if not missing[shard_start]:
                continue
            arrays = _shard_features(
                pool, chosen, shard_start, {s: runners[s] for s in missing[shard_start]}, test_views
            )
            shared = {k: v for k, v in arrays.items() if k.endswith(("/row", "/long_side"))}
            for spec in missing[shard_start]:
                suffix = f"/{spec.name}"
                own = {k.replace(suffix, "/features"): v for k, v in arrays.items() if k.endswith(suffix)}
                np.savez(_shard_path(out_dir, spec, shard_start), **shared, **own)
            done += min(SHARD, len(chosen) - shard_start)
            rate = (time.time() - started) / done
            print(
                f"{min(shard_start + SHARD, len(chosen))}/{len(chosen)} pictures, {rate * 1000:.0f} ms each",
                file=sys.stderr,
                flush=True,
            )
    return index


def _shard_path(out_dir: Path, spec: BackboneView, start: int) -> Path:
    return out_dir / spec.name / f"shard_{start:06d}.npz"


def _shard_features(pool, chosen, shard_start: int, runners: dict, test_views=TEST_VIEWS) -> dict[str, np.ndarray]:
    arrays: dict[str, list] = {}
    part = chosen[shard_start : shard_start + SHARD]
    for start in range(0, len(part), CHUNK):
        chunk = part[start : start + CHUNK]
        views = list(pool.map(lambda item: _views_of(item[1], test_views), chunk))
        for view_name in ("plain", "telegram", "small"):
            rows = [i for i, v in enumerate(views) if v is not None and view_name in v]
            if not rows:
                continue
            pictures = [views[i][view_name][0] for i in rows]
            seeds = [picture_seed(chunk[i][1]) + VIEW_SEEDS[view_name] for i in rows]
            trained = [chunk[i][1].split == "train" for i in rows]
            # features averaged over each picture's squares, as the served logits are
            feats = {
                s.name: logits_over_views(
                    run, pictures, s.input_size, s.policy,
                    samples=[(s.train_squares if t else 0, seed) for t, seed in zip(trained, seeds)],
                )
                for s, run in runners.items()
            }  # fmt: skip
            arrays.setdefault(f"{view_name}/row", []).append(np.array(rows) + shard_start + start)
            arrays.setdefault(f"{view_name}/long_side", []).append(
                np.array([max(views[i][view_name][1]) for i in rows])
            )
            for spec_name, values in feats.items():
                arrays.setdefault(f"{view_name}/{spec_name}", []).append(values.astype(np.float16))
    return {key: np.concatenate(value) for key, value in arrays.items()}


def load_cache(out_dir: str | Path, names: list[str] | None = None) -> tuple[list[dict], dict[str, np.ndarray]]:
    """The index rows and the arrays of the named backbone views (default: all cached), concatenated over
    shards: ``<view>/row``, ``<view>/long_side`` and ``<view>/<backbone view name>``."""
    out_dir = Path(out_dir)
    index = json.loads((out_dir / "index.json").read_text())
    names = names or sorted(path.parent.name for path in out_dir.glob("*/view.json"))
    arrays: dict[str, list] = {}
    for position, name in enumerate(names):
        for path in sorted((out_dir / name).glob("shard_*.npz")):
            with np.load(path) as shard:
                for key in shard.files:
                    if key.endswith("/features"):
                        arrays.setdefault(key.replace("/features", f"/{name}"), []).append(shard[key])
                    elif position == 0:
                        arrays.setdefault(key, []).append(shard[key])
    return index["rows"], {key: np.concatenate(value) for key, value in arrays.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ensemble.features", description=__doc__.splitlines()[0])
    parser.add_argument("data_dirs", nargs="+")
    parser.add_argument("--out", default="data/features")
    parser.add_argument("--views", nargs="*", help="backbone view names (default: all)")
    parser.add_argument(
        "--test-views", nargs="*", choices=TEST_VIEWS, default=TEST_VIEWS, help="the views cached of test pictures"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    specs = [spec for spec in BACKBONE_VIEWS if not args.views or spec.name in args.views]
    build_cache(args.data_dirs, Path(args.out), specs, tuple(args.test_views))
    return 0


if __name__ == "__main__":
    sys.exit(main())
