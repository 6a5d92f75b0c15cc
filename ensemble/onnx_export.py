"""The ensemble as ONNX, for a faster verdict with ONNX Runtime; converted and checked by a command.

    python -m ensemble export-onnx [--weights weights] [--out DIR] [--check DATA_DIR --split test]

For each input size, the members of that size become one ONNX graph with two outputs: every member's
logit (what the Detector's compiled function gives) and every member's Grad-CAM map (what
``explain.gradcam.EnsembleGradcam`` gives). The members' head after the Grad-CAM layer is average
pooling, dropout and one dense layer, all linear, so Grad-CAM's channel weights are exactly the dense
weights over the map's area and the map is a forward-pass output: no gradient, and no TensorFlow, at
serving time. The files go to ``--out`` with a
``onnx.json`` that names the weights they came from (their SHA-256), the converter and the opset. They
are not committed (``weights/`` has a size budget and the graphs repeat the weights); the bot converts
once into ``DATA_DIR/onnx`` on its first start and reuses them afterwards (``ensemble.onnx_runtime``).

``--check`` compares ONNX Runtime with TensorFlow on every picture of a split: the largest difference in
calibrated p_fake must be at most ``MAX_P_FAKE_DIFFERENCE`` and no verdict may change. The result is
recorded in ``weights/manifest.json`` under ``onnx_check``; serving uses ONNX only for the converter and
opset that passed it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ensemble.onnx_files import SHIPPED, SIDECAR, sha256, source_of

# p_fake reaches users as a whole percent; the graphs may differ from TensorFlow by a fifth of that step, and
# no verdict may change. (1e-4 until the high-pass member: its head weighs the mean of the first layer heavily,
# and on tiny pictures scaled up to 224 px, where almost no detail is left, float32 rounding in the
# convolutions moves its logit by up to 0.04; p_fake by up to 1e-3.)
MAX_P_FAKE_DIFFERENCE = 2e-3
MAX_MAP_DIFFERENCE = 1e-3  # of the map's largest value
OPSET = 17
# what the graphs compute; a change needs a new --check
GRAPH = "logits+gradcam v5 (view groups, maps at each member's cam_layer, graphs end at the last tap read)"


def converter() -> str:
    import tf2onnx

    return f"tf2onnx {tf2onnx.__version__}, opset {OPSET}, {GRAPH}"


def convert(weights_dir: Path, out_dir: Path) -> dict:
    """Write ``ensemble_<size>_<policy>.onnx`` per view group and ``onnx.json``; returns the sidecar."""
    import tensorflow as tf
    import tf2onnx

    from ensemble.detector import Detector
    from explain.gradcam import _activation_and_logit

    detector = Detector.from_dir(weights_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SIDECAR).unlink(missing_ok=True)  # the files below are not valid until the sidecar says so
    files = []
    for size, policy, indices, _run in detector.tf_runners:
        parts = [_activation_and_logit(detector.models[i]) for i in indices]
        signature = (tf.TensorSpec((None, size, size, 3), tf.float32, name="pictures"),)

        proto, _ = tf2onnx.convert.from_function(
            _logits_and_maps(parts, signature), input_signature=signature, opset=OPSET
        )
        path = out_dir / f"ensemble_{size}_{policy}.onnx"
        path.write_bytes(proto.SerializeToString())
        files.append(
            {"file": path.name, "input_size": size, "policy": policy, "members": indices, "sha256": sha256(path)}
        )
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB): members {indices}", file=sys.stderr)
    for stale in set(out_dir.glob("ensemble_*.onnx")) - {out_dir / entry["file"] for entry in files}:
        stale.unlink()  # a graph of a view group the ensemble no longer has
    sidecar = {"source": source_of(detector.manifest), "converter": converter(), "files": files}
    sidecar["probe"] = probe(detector, out_dir, sidecar)
    (out_dir / SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n")
    return sidecar


def probe(tf_detector, out_dir: Path, sidecar: dict) -> dict:
    """This conversion, on this machine's onnxruntime, against TensorFlow on a few fixed pictures:
    calibrated p_fake, verdicts, and the Grad-CAM maps (relative to each map's largest value)."""
    import onnxruntime
    from PIL import Image

    from ensemble.detector import Detector, probe_pixels
    from ensemble.onnx_runtime import sessions
    from ensemble.preprocess import model_inputs
    from explain.gradcam import EnsembleGradcam

    runners, cams = sessions(out_dir, sidecar)
    onnx_detector = Detector(tf_detector.manifest, None, runners, cams)
    pictures = [Image.fromarray(pixels) for pixels in probe_pixels()]
    gap, flips = differences(tf_detector, onnx_detector, pictures)
    map_gap = 0.0
    for size, policy, indices, _run in tf_detector.tf_runners:
        views = np.concatenate([model_inputs(picture, size, policy) for picture in pictures])
        ours, _ = EnsembleGradcam([tf_detector.models[i] for i in indices])(views)
        theirs, _ = cams[(size, policy)](views)
        scale = np.abs(ours).max(axis=(2, 3), keepdims=True) + 1e-6
        map_gap = max(map_gap, float((np.abs(ours - theirs) / scale).max()))
    return {
        "onnxruntime": onnxruntime.__version__,
        "max_abs_p_fake": float(gap.max()),
        "verdict_changes": flips,
        "max_relative_map_difference": map_gap,
        "passed": bool(gap.max() <= MAX_P_FAKE_DIFFERENCE and flips == 0 and map_gap <= MAX_MAP_DIFFERENCE),
    }


def _logits_and_maps(parts, signature):
    """The graph to convert: the members' logits, and their Grad-CAM maps as a forward pass."""
    import tensorflow as tf

    @tf.function(input_signature=signature)
    def logits_and_maps(pictures):
        logits, maps = [], []
        for both, kernel in parts:
            acts, logit = both(pictures, training=False)
            logits.append(logit)
            kernel = tf.constant(kernel, dtype=acts.dtype)  # a constant in the graph, not an input
            maps.append(tf.tensordot(acts, kernel, axes=[[3], [0]]))  # EnsembleGradcam's map, exactly
        return tf.concat(logits, axis=1), tf.stack(maps)

    return logits_and_maps


def differences(tf_detector, onnx_detector, pictures) -> tuple[np.ndarray, int]:
    """|p_fake difference| per picture and how many verdicts differ."""
    ours = tf_detector.calibrate(tf_detector.member_logits(pictures).mean(axis=1))
    theirs = onnx_detector.calibrate(onnx_detector.member_logits(pictures).mean(axis=1))
    changed = sum(tf_detector.verdict(a) != tf_detector.verdict(b) for a, b in zip(ours, theirs))
    return np.abs(ours - theirs), int(changed)


def agreement(weights_dir: Path, onnx_dir: Path, data_dir: str, split: str, limit: int | None = None) -> dict:
    """p_fake from TensorFlow and from ONNX Runtime on every picture of a split."""
    from tqdm import tqdm

    from ensemble.data import load_dataset
    from ensemble.detector import Detector
    from ensemble.onnx_runtime import load_runners
    from ensemble.preprocess import ImageRejected, open_image

    tf_detector = Detector.from_dir(weights_dir)
    runners, cams = load_runners(onnx_dir, tf_detector.manifest, checked=False)
    onnx_detector = Detector(tf_detector.manifest, None, runners, cams)
    samples = load_dataset(data_dir, split)[:limit]
    gaps, changed, skipped = [], 0, 0
    for start in tqdm(range(0, len(samples), 16), desc="agreement", unit="batch"):
        pictures = []
        for sample in samples[start : start + 16]:
            try:
                pictures.append(open_image(sample.path))
            except ImageRejected:
                skipped += 1
        if pictures:
            gap, flips = differences(tf_detector, onnx_detector, pictures)
            gaps.append(gap)
            changed += flips
    gap = np.concatenate(gaps)
    return {
        "converter": converter(),
        "split": split,
        "pictures": int(gap.size),
        "skipped": skipped,
        "max_abs_p_fake": float(gap.max()),
        "mean_abs_p_fake": float(gap.mean()),
        "verdict_changes": int(changed),
        "passed": bool(gap.max() <= MAX_P_FAKE_DIFFERENCE and changed == 0),
    }


def run_export(weights: str, out: str | None, data_dir: str | None, split: str, limit: int | None) -> int:
    weights_dir = Path(weights)
    onnx_dir = Path(out) if out else weights_dir / SHIPPED
    convert(weights_dir, onnx_dir)
    if data_dir is None:
        return 0
    checked = agreement(weights_dir, onnx_dir, data_dir, split, limit)
    print(json.dumps(checked, indent=2))
    manifest_path = weights_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["onnx_check"] = checked
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    if not checked["passed"]:
        print(f"ONNX Runtime disagrees with TensorFlow (limit {MAX_P_FAKE_DIFFERENCE}); not used", file=sys.stderr)
        return 1
    return 0
