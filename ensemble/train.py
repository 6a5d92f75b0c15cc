"""Fine-tune the ensemble members, calibrate on out-of-fold predictions, write weights/.

Each member fine-tunes a different EfficientNet-Lite on all train-split folds
but one; its predictions on the held-out fold are the out-of-fold (OOF) data
that the calibration and the UNSURE band are fitted on.  Folds keep each
`modern` game and each `art` generator whole, so OOF predictions there come
from a member that never saw that game or generator.  The test split is never
read here.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from ensemble import calibration, metrics
from ensemble.augment import random_training_view, telegram_view
from ensemble.classifier import build_classifier, load_member
from ensemble.data import Sample, assign_folds, load_dataset, manifest_hash
from ensemble.predict_batch import member_logits
from ensemble.preprocess import DEFAULT_POLICY, ImageRejected, open_image

FOLDS = 3
FOLD_SEED = 0
# Share of each epoch's samples per source: CIFAKE is 72% of the images but
# says least about real use, `modern` is small but closest to it.
SOURCE_SHARES = {"cifake": 0.15, "diffusiondb-coco": 0.25, "art": 0.22, "modern": 0.38}
OOF_CIFAKE_LIMIT = 500


@dataclass
class MemberPlan:
    name: str
    backbone: str
    input_size: int
    held_out_fold: int
    seed: int
    epochs: int = 10
    steps_per_epoch: int = 80
    batch_size: int = 32
    learning_rate: float = 3e-4
    # Linear-probe pictures used to start the head before fine-tuning (LP-FT):
    # a random head's first gradients would otherwise wreck the pretrained features.
    head_warmup_images: int = 1024


DEFAULT_PLAN = (
    # 10 epochs: with 4 to 6, training accuracy was still rising steeply at the end
    # (0.64, 0.66, 0.76, 0.82 over Lite0's 4).  About 18 min for Lite0, 24 for Lite1 on 2 cores.
    MemberPlan("lite0_fold0", "lite0", 224, held_out_fold=0, seed=11),
    MemberPlan("lite1_fold1", "lite1", 224, held_out_fold=1, seed=12),
    MemberPlan("lite0_fold2", "lite0", 224, held_out_fold=2, seed=13),
)


class TrainingBatches(keras.utils.PyDataset):
    """Source-balanced, augmented batches; deterministic for a seed whatever the threads do."""

    def __init__(self, images, labels, sources, plan: MemberPlan, shares: dict = SOURCE_SHARES, **kwargs):
        super().__init__(**kwargs)
        self.images, self.labels = images, np.asarray(labels, dtype=np.float32)
        self.plan = plan
        self.epoch = 0
        self.by_source = {}
        for index, source in enumerate(sources):
            self.by_source.setdefault(source, []).append(index)
        shares = np.array([shares.get(name, 1.0 / len(self.by_source)) for name in self.by_source])
        self.shares = shares / shares.sum()
        self.order = self._epoch_order()

    def _epoch_order(self) -> np.ndarray:
        rng = np.random.default_rng([self.plan.seed, self.epoch])
        total = self.plan.steps_per_epoch * self.plan.batch_size
        counts = rng.multinomial(total, self.shares)
        chosen = []
        for indices, count in zip(self.by_source.values(), counts):
            repeats = math.ceil(count / len(indices))
            pool = np.concatenate([rng.permutation(indices) for _ in range(repeats)])
            chosen.append(pool[:count])
        return rng.permutation(np.concatenate(chosen))

    def __len__(self) -> int:
        return self.plan.steps_per_epoch

    def __getitem__(self, step: int):
        batch = self.order[step * self.plan.batch_size : (step + 1) * self.plan.batch_size]
        rng = np.random.default_rng([self.plan.seed, self.epoch, step])
        inputs = np.stack([random_training_view(self.images[i], self.plan.input_size, rng) for i in batch])
        return inputs, self.labels[batch][:, None]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._epoch_order()


def _decode_all(samples: list[Sample]) -> list:
    def decode(sample: Sample):
        try:
            image = open_image(sample.path)
            image.load()
            return image
        except ImageRejected as error:
            print(f"skipping {sample.path}: {error}", file=sys.stderr)
            return None

    with ThreadPoolExecutor(2) as pool:
        return list(tqdm(pool.map(decode, samples), total=len(samples), desc="decode", unit="img", mininterval=5))


def _freeze_batch_norm(model: keras.Model) -> None:
    # Small CPU batches make batch statistics noisy; the ImageNet ones serve better.
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def _initialise_head(model: keras.Model, batches: TrainingBatches) -> None:
    """Fit the final dense layer on frozen features of augmented pictures (a linear probe)."""
    import tensorflow as tf

    features_model = keras.Model(model.input, model.get_layer("avg_pool").output)
    run = tf.function(lambda x: features_model(x, training=False))
    steps = max(1, batches.plan.head_warmup_images // batches.plan.batch_size)
    features, targets = [], []
    for step in tqdm(range(steps), desc="head warm-up features", unit="batch", mininterval=5):
        inputs, labels = batches[step % len(batches)]
        features.append(np.asarray(run(inputs)))
        targets.append(labels)
    features, targets = np.concatenate(features), np.concatenate(targets)
    probe = keras.Sequential([keras.Input((features.shape[1],)), keras.layers.Dense(1, kernel_regularizer="l2")])
    probe.compile(optimizer=keras.optimizers.Adam(1e-2), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    probe.fit(features, targets, epochs=60, batch_size=128, verbose=0)
    model.get_layer("predictions").set_weights(probe.layers[-1].get_weights())


def start_member(plan: MemberPlan, images, labels, sources, shares: dict = SOURCE_SHARES):
    """The member before fine-tuning (ImageNet backbone, batch-norm frozen, linear-probe head) and its batches."""
    keras.utils.set_random_seed(plan.seed)
    model = build_classifier(plan.backbone, plan.input_size, name=plan.name)
    _freeze_batch_norm(model)
    batches = TrainingBatches(
        images, labels, sources, plan, shares, workers=2, use_multiprocessing=False, max_queue_size=6
    )
    if plan.head_warmup_images:
        _initialise_head(model, batches)
    return model, batches


def train_member(plan: MemberPlan, images, labels, sources, shares: dict = SOURCE_SHARES) -> keras.Model:
    """Fine-tune one member on the given decoded pictures (all layers but batch-norm), after a linear probe."""
    model, batches = start_member(plan, images, labels, sources, shares)
    total_steps = plan.epochs * plan.steps_per_epoch
    warmup_steps = max(1, min(20, total_steps // 5))
    schedule = keras.optimizers.schedules.CosineDecay(
        1e-6, decay_steps=total_steps - warmup_steps, warmup_target=plan.learning_rate, warmup_steps=warmup_steps
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=1e-5),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")],
    )
    model.fit(batches, epochs=plan.epochs, verbose=1)
    return model


def _oof_rows(samples: list[Sample], folds: np.ndarray, fold: int, seed: int) -> list[int]:
    rows = [i for i, f in enumerate(folds) if f == fold]
    cifake = [i for i in rows if samples[i].source == "cifake"]
    if len(cifake) > OOF_CIFAKE_LIMIT:
        keep = set(np.random.default_rng(seed).choice(cifake, OOF_CIFAKE_LIMIT, replace=False).tolist())
        rows = [i for i in rows if samples[i].source != "cifake" or i in keep]
    return rows


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _save_inference_weights(model: keras.Model, plan: MemberPlan, path: Path) -> keras.Model:
    """Save only the network's weights (no optimizer slots), through a fresh uncompiled copy."""
    fresh = build_classifier(plan.backbone, plan.input_size, imagenet=False, name=plan.name)
    fresh.set_weights(model.get_weights())
    fresh.save_weights(path)
    return fresh


def train(
    data_dir: str,
    out_dir: str,
    plans=DEFAULT_PLAN,
    command: str = "",
    resume: bool = False,
    shares: dict = SOURCE_SHARES,
) -> dict:
    """Train every member, calibrate, and write weights and ``manifest.json`` to ``out_dir``.

    With ``resume``, a member whose weights and ``<name>.member.json`` record
    (same plan, same data) are already in ``out_dir`` is not trained again;
    its out-of-fold predictions are recomputed.  ``shares``: each source's
    share of an epoch's pictures.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    samples = load_dataset(data_dir, split="train")
    folds = assign_folds(samples, FOLDS, FOLD_SEED)
    data_hash = manifest_hash(samples, data_dir)
    print(f"{len(samples)} train-split images, data manifest sha256 {data_hash[:12]}", file=sys.stderr)
    images = _decode_all(samples)

    oof = {"logit": [], "label": [], "source": [], "view": [], "member": []}
    members = []
    for plan in plans:
        train_rows = [i for i, f in enumerate(folds) if f != plan.held_out_fold and images[i] is not None]
        weights_file = f"{plan.name}.weights.h5"
        record_path = out / f"{plan.name}.member.json"
        record = {"plan": asdict(plan), "data_manifest_sha256": data_hash}
        previous = json.loads(record_path.read_text()) if record_path.is_file() else None
        if resume and previous and {k: previous.get(k) for k in record} == record and (out / weights_file).is_file():
            print(f"\n== {plan.name}: reusing {weights_file} (same plan and data)", file=sys.stderr)
            model = load_member(
                out,
                {
                    "name": plan.name,
                    "backbone": plan.backbone,
                    "input_size": plan.input_size,
                    "weights_file": weights_file,
                },
            )
            train_seconds = previous["train_seconds"]
        else:
            started = time.time()
            print(f"\n== {plan.name}: {plan.backbone}, {plan.input_size}px, {len(train_rows)} images", file=sys.stderr)
            model = train_member(
                plan,
                [images[i] for i in train_rows],
                [samples[i].label for i in train_rows],
                [samples[i].source for i in train_rows],
                shares,
            )
            model = _save_inference_weights(model, plan, out / weights_file)
            train_seconds = time.time() - started
            record_path.write_text(json.dumps(record | {"train_seconds": round(train_seconds)}, indent=2) + "\n")

        rows = [i for i in _oof_rows(samples, folds, plan.held_out_fold, plan.seed) if images[i] is not None]
        member_oof = {}
        for view in ("plain", "telegram"):
            pictures = [images[i] if view == "plain" else telegram_view(images[i]) for i in rows]
            logits = member_logits(model, pictures, plan.input_size, DEFAULT_POLICY, desc=f"OOF {view}")
            labels = np.array([samples[i].label for i in rows])
            sources = [samples[i].source for i in rows]
            member_oof[view] = metrics.table(calibration.sigmoid(logits), labels, sources, band=0.0)
            oof["logit"] += logits.tolist()
            oof["label"] += labels.tolist()
            oof["source"] += sources
            oof["view"] += [view] * len(rows)
            oof["member"] += [plan.name] * len(rows)
        members.append(
            dict(
                asdict(plan) | {"epochs": plan.epochs},
                weights_file=weights_file,
                weights_sha256=_sha256(out / weights_file),
                trained_on_folds=[f for f in range(FOLDS) if f != plan.held_out_fold],
                train_images=len(train_rows),
                train_seconds=round(train_seconds),
                oof_images=len(rows),
                oof_metrics_uncalibrated=member_oof,
            )
        )
        del model
        keras.backend.clear_session()

    fitted = calibration.fit_from_out_of_fold(oof)
    oof_table = metrics.table(
        fitted["probabilities"], oof["label"], oof["source"], calibration.band_of(fitted["unsure"])
    )
    np.savez_compressed(out / "oof_predictions.npz", **{key: np.asarray(value) for key, value in oof.items()})

    manifest = {
        "format": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "data": {
            "folder": Path(data_dir).name,
            "split": "train",
            "images": len(samples),
            "manifest_sha256": data_hash,
            "folds": FOLDS,
            "fold_seed": FOLD_SEED,
            "source_shares": shares,
        },
        "preprocess": {"policy": DEFAULT_POLICY, "pixel_mean": 127.0, "pixel_std": 128.0},
        "combine": "mean of member logits, then Platt scaling",
        "calibration": fitted["calibration"],
        "unsure": fitted["unsure"],
        "oof_metrics": oof_table,
        "members": members,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps({key: manifest[key] for key in ("calibration", "unsure")}, indent=2), file=sys.stderr)
    metrics.print_table(oof_table, title="out-of-fold (calibrated)")
    return manifest


def recalibrate(weights_dir: str) -> dict:
    """Refit calibration and the UNSURE band from ``oof_predictions.npz`` without retraining."""
    folder = Path(weights_dir)
    oof = dict(np.load(folder / "oof_predictions.npz"))
    manifest = json.loads((folder / "manifest.json").read_text())
    fitted = calibration.fit_from_out_of_fold(oof)
    manifest["calibration"] = (
        manifest["calibration"]
        | fitted["calibration"]
        | {"fitted_on": manifest["calibration"].get("fitted_on", fitted["calibration"]["fitted_on"])}
    )
    manifest["unsure"] = fitted["unsure"]
    band = calibration.band_of(fitted["unsure"])
    manifest["oof_metrics"] = metrics.table(fitted["probabilities"], oof["label"], oof["source"], band)
    if "group" in oof:
        manifest["oof_groups"] = metrics.table(fitted["probabilities"], oof["label"], oof["group"], band)
    scale, shift = fitted["calibration"]["scale"], fitted["calibration"]["shift"]
    for member in manifest["members"]:
        member.pop("test_metrics", None)  # measured under the old calibration; run evaluate again
        if f"member/{member['name']}" in oof:
            member_p = calibration.sigmoid(scale * oof[f"member/{member['name']}"] + shift)
            member["oof_metrics"] = metrics.table(member_p, oof["label"], oof["source"], band)
    manifest.pop("test_metrics", None)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    metrics.print_table(manifest["oof_metrics"], title="out-of-fold (calibrated)")
    return manifest
