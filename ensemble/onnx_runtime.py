"""Serving the ensemble with ONNX Runtime from a converted copy (see ``ensemble.onnx_export``).

``prepare(weights_dir, manifest, onnx_dir)`` returns runners like ``Detector.tf_runners`` when it can,
or None (the log says why; TensorFlow then serves). It can when:
  * the manifest's ``onnx_check`` passed on the test split for the converter installed here;
  * ``onnx_dir`` holds a conversion of exactly these weights by that converter, or one can be made now:
    the conversion runs once, in a separate process (``python -m ensemble export-onnx --out onnx_dir``) so
    its memory is not the bot's, and takes about 40 seconds;
  * onnxruntime is installed.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np

from ensemble.onnx_files import SHIPPED, SIDECAR, sha256, source_of

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]


class Unavailable(Exception):
    """The ONNX path cannot be used; the message says why."""


class Stale(Unavailable):
    """``onnx_dir`` holds no usable conversion of these weights; converting again can fix it."""


def load_runners(onnx_dir: Path, manifest: dict, checked: bool = True) -> tuple[list, dict]:
    """Runners and Grad-CAMs for the files in ``onnx_dir``, made from this manifest's weights (see ``sessions``).

    Raises:
        Unavailable: no such conversion, a file changed, the converter was not checked, or no onnxruntime.
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise Unavailable("onnxruntime is not installed") from None
    sidecar_path = Path(onnx_dir) / SIDECAR
    if not sidecar_path.is_file():
        raise Stale(f"no conversion in {onnx_dir}")
    sidecar = json.loads(sidecar_path.read_text())
    if sidecar.get("source") != source_of(manifest):
        raise Stale(f"the conversion in {onnx_dir} is of other weights")
    if checked:
        check = manifest.get("onnx_check") or {}
        if not check.get("passed") or check.get("converter") != sidecar.get("converter"):
            raise Unavailable(f"{sidecar.get('converter')} has not passed `python -m ensemble export-onnx --check`")
        if not (sidecar.get("probe") or {}).get("passed"):
            raise Unavailable(f"the conversion in {onnx_dir} differed from TensorFlow on the probe pictures")
    return sessions(onnx_dir, sidecar)


class OnnxGradcam:
    """``explain.gradcam.EnsembleGradcam``'s contract from an ONNX session: ``(maps, logits)`` for views."""

    def __init__(self, session, name: str, input_size: int) -> None:
        self.session, self.name, self.input_size = session, name, input_size

    def __call__(self, views: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, maps = self.session.run(None, {self.name: np.asarray(views, dtype=np.float32)})
        return np.asarray(maps, np.float32), np.asarray(logits, np.float32)


def sessions(onnx_dir: Path, sidecar: dict) -> tuple[list, dict]:
    """``(runners, cams)`` for the files listed in ``sidecar``, after checking each file's SHA-256.

    ``runners``: (input size, policy, member indices, run) per file, like ``Detector.tf_runners``; ``cams``:
    (input size, policy) -> ``OnnxGradcam``.

    Raises:
        Unavailable: a file is missing or changed.
    """
    import onnxruntime

    runners, cams = [], {}
    for entry in sidecar["files"]:
        path = Path(onnx_dir) / entry["file"]
        if not path.is_file() or sha256(path) != entry["sha256"]:
            raise Stale(f"{path} is missing or changed")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        # The arena and memory patterns stay on: without them every large intermediate (the members' spatial
        # deviations over eight layers) is a fresh allocation, and the native-crop graph took 33 ms instead of 12.
        # No spinning: each graph has its own thread pool, and on two cores the pool that just finished spun on
        # while the next graph ran; a three-member verdict took 75 ms with spinning and 50 without.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name

        def run(batch, session=session, name=name):
            return session.run(None, {name: np.asarray(batch, dtype=np.float32)})[0]  # the maps cost little

        size, policy = int(entry["input_size"]), entry["policy"]
        runners.append((size, policy, list(entry["members"]), run))
        cams[(size, policy)] = OnnxGradcam(session, name, size)
    return runners, cams


def prepare(weights_dir: Path, manifest: dict, onnx_dir: Path | None) -> tuple[list, dict] | None:
    """``(runners, cams)`` from the conversion shipped in ``weights_dir/onnx``, else from ``onnx_dir``,
    converting the weights there first if needed (never when ``onnx_dir`` is None); None if ONNX cannot
    serve."""
    try:
        try:
            return load_runners(Path(weights_dir) / SHIPPED, manifest)
        except Unavailable as reason:
            if onnx_dir is None:
                raise
            log.info("no usable shipped ONNX conversion (%s)", reason)
        try:
            return load_runners(onnx_dir, manifest)
        except Stale as reason:
            log.info("converting the ensemble to ONNX once (%s); about 40 seconds", reason)
        converted = subprocess.run(
            [sys.executable, "-m", "ensemble", "export-onnx", "--weights", str(weights_dir), "--out", str(onnx_dir)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if converted.returncode != 0:
            tail = (converted.stderr.strip().splitlines() or ["no output"])[-1]
            raise Unavailable(f"the conversion failed: {tail}")
        return load_runners(onnx_dir, manifest)
    except Unavailable as reason:
        log.warning("serving with TensorFlow: %s", reason)
        return None
