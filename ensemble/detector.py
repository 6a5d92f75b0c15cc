"""The shipped ensemble: load once from weights/, then judge pictures.

Members that see the same input (input size and resize policy: a view group) run together over the shared
preprocessed input; their logits are averaged and the mean is Platt-scaled into a calibrated P(FAKE).

The bot and the CLI serve with ONNX Runtime, without TensorFlow in the process: the graphs converted by
``python -m ensemble export-onnx``, shipped in ``weights/onnx`` (or made once in ``onnx_dir``), each used only
where it was checked against TensorFlow on the test split, with the Grad-CAM map as a second output. Where no
checked graph exists, the Keras members run in one compiled TensorFlow function per view group.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ensemble import calibration
from ensemble.predict_batch import logits_over_views
from ensemble.preprocess import open_image

log = logging.getLogger(__name__)


def view_groups(manifest: dict) -> dict[tuple[int, str], list[int]]:
    """(input size, resize policy) -> the indices of the members that see that input, in manifest order."""
    groups: dict[tuple[int, str], list[int]] = {}
    default = manifest["preprocess"]["policy"]
    for index, spec in enumerate(manifest["members"]):
        groups.setdefault((int(spec["input_size"]), spec.get("policy", default)), []).append(index)
    return groups


def probe_pixels() -> list[np.ndarray]:
    """Four fixed, varied pictures for comparing two ways of running the members."""
    rng = np.random.default_rng(20261127)
    y, x = np.mgrid[0:300, 0:400]
    smooth = np.stack([x / 400, y / 300, (x * y) / 120000], axis=-1) * 255
    return [np.clip(smooth + rng.normal(0, sigma, smooth.shape), 0, 255).astype(np.uint8) for sigma in (0, 8, 30, 90)]


@dataclass(frozen=True)
class Judgement:
    """A calibrated verdict for one picture."""

    p_fake: float
    verdict: str  # FAKE, REAL or UNSURE
    member_p_fake: dict[str, float]


class Detector:
    """An averaged ensemble of EfficientNet-Lite members: frozen ImageNet backbones, each with a trained linear head."""

    def __init__(self, manifest: dict, models: list | None, runners: list | None = None, cams: dict | None = None):
        """An ensemble from its manifest and either its Keras members or other runners.

        Args:
            manifest: the parsed ``manifest.json``.
            models: the Keras members in manifest order; None when ``runners`` serve (no TensorFlow then).
            runners: (input size, policy, member indices, run) per view group from ONNX Runtime, instead of the
                Keras members'.
            cams: (input size, policy) -> callable giving Grad-CAM maps and logits
                (``explain.gradcam.EnsembleGradcam``'s contract) without TensorFlow; used by
                ``explain.Explainer`` when there are no ``models``.
        """
        self.manifest = manifest
        self.members = manifest["members"]
        self.models = models
        self.cams = cams or {}
        self.scale = float(manifest["calibration"]["scale"])
        self.shift = float(manifest["calibration"]["shift"])
        self.band = calibration.band_of(manifest["unsure"])  # (REAL at or below, FAKE from)
        self.policy = manifest["preprocess"]["policy"]
        self.groups = view_groups(manifest)
        self._tf_runners = None
        self.backend = "tf" if runners is None else "onnx"
        self._runners = runners if runners is not None else self.tf_runners

    @property
    def tf_runners(self) -> list:
        """The Keras members' compiled functions, one per view group (built on first use)."""
        if self._tf_runners is None:
            if self.models is None:
                raise RuntimeError("this Detector was loaded without its Keras members (ONNX Runtime serves it)")
            self._tf_runners = self._compile()
        return self._tf_runners

    @classmethod
    def from_dir(
        cls, weights_dir: str | Path = "weights", onnx_dir: str | Path | None = None, shipped_onnx: bool = False
    ) -> Detector:
        """Load every member listed in ``weights_dir/manifest.json``.

        Args:
            weights_dir: the folder with manifest.json.
            onnx_dir: serve with ONNX Runtime: the conversion shipped in ``weights_dir/onnx``, else the one
                kept in ``onnx_dir`` (made there on first use). ONNX Runtime serves only where it was checked
                against TensorFlow (see ``ensemble.onnx_runtime``).
            shipped_onnx: serve with the shipped conversion where it is usable, never converting.
                With neither, TensorFlow serves.

        Raises:
            FileNotFoundError: no manifest or a missing weights file.
        """
        weights_dir = Path(weights_dir)
        manifest_path = weights_dir / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{manifest_path} not found; run `python -m ensemble train` or check --weights")
        manifest = json.loads(manifest_path.read_text())
        if onnx_dir is not None or shipped_onnx:
            from ensemble.onnx_runtime import prepare

            served = prepare(weights_dir, manifest, None if onnx_dir is None else Path(onnx_dir))
            if served is not None:  # no TensorFlow in this process: the verdict and Grad-CAM run on ONNX
                runners, cams = served
                return cls(manifest, None, runners, cams)
        from ensemble.classifier import load_member  # imports Keras and TensorFlow

        return cls(manifest, [load_member(weights_dir, spec) for spec in manifest["members"]])

    def _compile(self):
        import tensorflow as tf

        runners = []
        for (size, policy), indices in self.groups.items():
            models = [self.models[i] for i in indices]

            @tf.function(reduce_retracing=True)
            def run(batch, models=models):
                return tf.concat([model(batch, training=False) for model in models], axis=1)

            runners.append((size, policy, indices, run))
        return runners

    def member_logits(self, pictures: list[Image.Image], policy: str | None = None) -> np.ndarray:
        """Logits, shape (pictures, members); the views of a picture (multicrop, native) are averaged.

        Each member sees its own view group's policy unless ``policy`` overrides it for all.
        """
        result = np.zeros((len(pictures), len(self.members)))
        for size, group_policy, indices, run in self._runners:
            result[:, indices] = logits_over_views(run, pictures, size, policy or group_policy)
        return result

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated P(FAKE) from (ensemble or member) logits."""
        return calibration.sigmoid(self.scale * np.asarray(logits) + self.shift)

    def verdict(self, p_fake: float) -> str:
        return calibration.verdict(p_fake, self.band)

    def judge(self, picture: Image.Image) -> Judgement:
        """Judge one decoded RGB picture (see ``ensemble.preprocess.open_image``)."""
        return self.judgement(self.member_logits([picture])[0])

    def judgement(self, logits: np.ndarray) -> Judgement:
        """The verdict from one picture's member logits (shape (members,))."""
        logits = np.asarray(logits, dtype=np.float64)
        p_fake = float(self.calibrate(logits.mean()))
        members = {spec["name"]: float(self.calibrate(value)) for spec, value in zip(self.members, logits)}
        return Judgement(p_fake, self.verdict(p_fake), members)

    def judge_file(self, source) -> Judgement:
        """Open untrusted bytes or a path and judge it.

        Raises:
            ImageRejected: the input is not a picture that can be judged.
        """
        return self.judge(open_image(source))
