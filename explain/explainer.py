"""The "Why?" answer: verdict, metadata evidence and a heatmap of what drove the FAKE score.

The bot builds one ``Explainer`` at start-up (tf-keras-vis clones every member
once) and calls ``explain(data)`` per request; it never touches TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from ensemble.detector import Detector, Judgement
from ensemble.predict_batch import MAX_VIEWS_PER_RUN
from ensemble.preprocess import crop_geometry, model_inputs, open_image
from explain import overlay
from explain.gradcam import (
    DEFAULT_SCORECAM_MAX_N,
    METHODS,
    EnsembleGradcam,
    EnsembleTapShares,
    MemberCam,
    place_views,
)
from explain.metadata import Evidence, read_evidence

NOTHING_DROVE_FAKE = "No area pushed the score towards FAKE."


@dataclass(frozen=True)
class Explanation:
    """Why the detector said what it said about one picture.

    Attributes:
        overlay: PNG (or JPEG, see ``image_format``) bytes: the picture (EXIF orientation applied, long side at
            most 1280 px) with the heatmap over the analysed part and a legend.
        judgement: the detector's verdict, as ``Detector.judge`` gives it.
        evidence: what the file's metadata says about its origin.
        heatmap: float32 (height, width) at the overlay picture's size: the
            members' maps averaged (as the ensemble averages logits), ReLU
            applied, not normalised; zero outside the analysed area. For
            Grad-CAM the unit is the logit: before ReLU, its mean over the
            analysed area is about the mean member logit minus the mean head
            bias.
        analysed: bool (height, width): the pixels some model view covered.
        method: ``gradcam``, ``gradcam++``, ``scorecam`` or ``tap-shares``.
        image_format: ``png`` or ``jpeg``, the encoding of ``overlay``.
    """

    overlay: bytes
    judgement: Judgement
    evidence: Evidence
    heatmap: np.ndarray
    analysed: np.ndarray
    method: str
    image_format: str = "png"


class Explainer:
    """Heatmaps for a loaded ``Detector``; build once, then call ``explain`` per picture."""

    def __init__(
        self,
        detector: Detector,
        method: str = "gradcam",
        scorecam_max_n: int = DEFAULT_SCORECAM_MAX_N,
        max_side: int = overlay.MAX_SIDE,
        image_format: str = "png",
    ) -> None:
        """Prepare the class-activation maps once: compile Grad-CAM, or clone each member for tf-keras-vis.

        Args:
            detector: the loaded ensemble.
            method: ``gradcam`` (default), ``gradcam++``, ``scorecam`` (Faster Score-CAM) or ``tap-shares``
                (every tapped layer's share of the logit, ``explain.gradcam.EnsembleTapShares``).
            scorecam_max_n: channels Score-CAM keeps per member.
            max_side: the overlay's longest side in pixels.
            image_format: the overlay's encoding, ``png`` or ``jpeg`` (smaller and faster to encode).

        Raises:
            ValueError: unknown method, a model ``build_classifier`` did not make, or a
                member whose input size differs from its manifest entry.
        """
        if method not in METHODS:
            raise ValueError(f"unknown explanation method {method!r}; choose from {', '.join(METHODS)}")
        if image_format not in overlay.IMAGE_FORMATS:
            raise ValueError(f"unknown overlay format {image_format!r}; choose from {', '.join(overlay.IMAGE_FORMATS)}")
        if max_side < 64:
            raise ValueError(f"max_side must be at least 64 pixels, got {max_side}")
        self.detector = detector
        self.method = method
        self.max_side = max_side
        self.image_format = image_format
        # Members of one view group (input size and policy) see the same views: preprocess once per group, as
        # the Detector does.
        self._groups: dict[tuple[int, str], list[int]] = dict(detector.groups)
        if detector.models is None:  # served by ONNX Runtime: its graphs give Grad-CAM maps with the logits
            if method != "gradcam":
                raise ValueError(f"{method} needs the Keras members; load the Detector without onnx_dir")
            self._cams = dict(detector.cams)
            return
        for index, (spec, model) in enumerate(zip(detector.members, detector.models)):
            if int(model.inputs[0].shape[1]) != int(spec["input_size"]):
                raise ValueError(
                    f"member {spec.get('name', index)!r}: the model takes {model.inputs[0].shape[1]} px, "
                    f"the manifest says {spec['input_size']}; rebuild it with ensemble.classifier.load_member"
                )
        # Grad-CAM and tap shares: one compiled function per view group, which also gives the verdict's logits.
        # The other methods: tf-keras-vis, one visualiser per member (each clones its member once).
        if method in ("gradcam", "tap-shares"):
            compiled = EnsembleGradcam if method == "gradcam" else EnsembleTapShares
            self._cams = {
                group: compiled([detector.models[i] for i in indices]) for group, indices in self._groups.items()
            }
        else:
            self._cams = {
                group: [MemberCam(detector.models[i], method, scorecam_max_n) for i in indices]
                for group, indices in self._groups.items()
            }

    def _group_maps(self, group: tuple[int, str], views: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(members, views, cells, cells) maps of one view group's members, and their (views, members) logits."""
        cams = self._cams[group]
        if not isinstance(cams, list):  # EnsembleGradcam, or its ONNX twin: maps and logits in one pass
            return cams(views)
        return np.stack([cam(views) for cam in cams]), None

    def _maps(self, picture: Image.Image, width: int, height: int):
        """``(heat, analysed, logits)``: see ``signed_map``; ``logits`` are the member logits when the
        method computed them on the way (Grad-CAM), else None."""
        total = np.zeros((height, width), np.float32)
        members = np.zeros((height, width), np.float32)
        logits = np.zeros(len(self.detector.members))
        complete = True
        for (size, policy), indices in self._groups.items():
            views = model_inputs(picture, size, policy)
            boxes = crop_geometry(*picture.size, size, policy)
            # at most MAX_VIEWS_PER_RUN squares a call, as the verdict runs them: the same peak memory
            parts = [
                self._group_maps((size, policy), views[i : i + MAX_VIEWS_PER_RUN])
                for i in range(0, len(views), MAX_VIEWS_PER_RUN)
            ]
            maps = np.concatenate([part[0] for part in parts], axis=1)
            group_logits = None if parts[0][1] is None else np.concatenate([part[1] for part in parts])
            for member_maps in maps:
                heat, coverage = place_views(member_maps, boxes, width, height)
                total += heat
                members += coverage > 0
            if group_logits is None:
                complete = False
            else:
                logits[indices] = group_logits.mean(axis=0)  # views averaged, as Detector.member_logits does
        # Average over the members that cover a pixel: members of different input sizes can disagree
        # by a pixel at the crop's edge.
        heat = np.divide(total, members, out=np.zeros_like(total), where=members > 0)
        return heat, members > 0, logits if complete else None

    def signed_map(self, picture: Image.Image, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """The members' combined map on a width x height copy of the picture, before ReLU.

        Args:
            picture: a decoded RGB picture (``ensemble.preprocess.open_image``).
            width: map width; the aspect should be the picture's.
            height: map height.

        Returns:
            ``(heat, analysed)``: float32 (height, width), zero where no view
            looked, and the bool mask of where some view did.
        """
        heat, analysed, _ = self._maps(picture, width, height)
        return heat, analysed

    def heatmap(self, picture: Image.Image, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        """Like ``signed_map`` with ReLU applied: only what pushed the score towards FAKE."""
        heat, analysed = self.signed_map(picture, width, height)
        return np.maximum(heat, 0.0), analysed

    def explain(self, data: bytes) -> Explanation:
        """Judge a picture and explain the verdict.

        Args:
            data: the encoded file as received (JPEG, PNG, WebP, ...).

        Returns:
            The ``Explanation``: overlay image, judgement, metadata evidence, heatmap.

        Raises:
            ImageRejected: the bytes are not a picture that can be judged (a
                one-line, user-facing reason).
            ValueError: ``data`` is not bytes.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ValueError(f"explain() takes the file's bytes, got {type(data).__name__}; use Path.read_bytes()")
        picture = open_image(data)  # the one decode; the metadata is read from the same bytes
        evidence = read_evidence(data)
        shown = overlay.display_picture(picture, self.max_side)
        heat, analysed, logits = self._maps(picture, *shown.size)
        # Grad-CAM's pass gives the member logits: the verdict needs no second run of the models.
        judgement = self.detector.judge(picture) if logits is None else self.detector.judgement(logits)
        heat = np.maximum(heat, 0.0)
        peak = float(heat.max(initial=0.0))
        scaled = heat / peak if peak > 0 else heat
        note = None if peak > 0 else NOTHING_DROVE_FAKE
        encoded = overlay.render(shown, scaled, analysed, note=note, image_format=self.image_format)
        return Explanation(encoded, judgement, evidence, heat, analysed, self.method, self.image_format)


@dataclass(frozen=True)
class Deletion:
    """How the ensemble's FAKE logit moved when parts of the picture were masked.

    Attributes:
        logit: mean member logit of the unmasked picture.
        logit_hot: with the hottest area masked.
        logit_random: with random areas of the same size and blob shape masked, one per trial.
        p_fake, p_fake_hot, p_fake_random: the same, calibrated (``p_fake_random`` over the trials' mean logit).
    """

    logit: float
    logit_hot: float
    logit_random: tuple[float, ...]
    p_fake: float
    p_fake_hot: float
    p_fake_random: float

    @property
    def score(self) -> float:
        """How much further the FAKE logit fell for the hottest area than for a random one (> 0: faithful)."""
        return float(np.mean(self.logit_random)) - self.logit_hot


def _random_blobs(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random field with about ``cells`` blobs along the short side, like an upsampled CAM."""
    import cv2

    height, width = shape
    step = min(height, width) / cells
    coarse = rng.random((max(2, round(height / step)), max(2, round(width / step)))).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)


def _top_mask(values: np.ndarray, allowed: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` allowed pixels of highest value."""
    candidates = np.flatnonzero(allowed)
    chosen = candidates[np.argpartition(values.ravel()[candidates], -count)[-count:]]
    mask = np.zeros(values.size, bool)
    mask[chosen] = True
    return mask.reshape(values.shape)


DELETION_FILLS = ("mean", "blur")
BLUR_RADIUS = 6  # pixels of the overlay-sized picture: fine detail goes, colour and shading stay


def deletion_score(
    explainer: Explainer,
    picture: Image.Image,
    fraction: float = 0.1,
    trials: int = 8,
    seed: int = 0,
    fill: str = "mean",
) -> Deletion:
    """Deletion check: does masking the hottest area lower the FAKE score more than masking a random one?

    A heatmap that looks the same whatever the picture scores about 0. Masked
    pixels take the mean colour of the analysed area (``fill="mean"``), or the
    picture's own pixels blurred (``fill="blur"``: the detail goes, but no flat
    patch appears, which members that read texture statistics take for evidence
    of its own). The random areas have the
    same size and the same blobby shape as an upsampled CAM, and lie inside the
    analysed area too, so that the comparison is fair to both.

    Args:
        explainer: the explainer (and through it the detector) to check.
        picture: a decoded RGB picture; it is used at overlay size.
        fraction: share of the analysed pixels to mask.
        trials: random masks to average.
        seed: seed of the random masks.
        fill: ``mean`` or ``blur``, what masked pixels become.

    Returns:
        The logits and probabilities; ``.score`` is the summary (logit units).

    Raises:
        ValueError: ``fraction`` outside (0, 1), ``trials`` below 1 or an unknown ``fill``.
    """
    if fill not in DELETION_FILLS:
        raise ValueError(f"fill must be one of {DELETION_FILLS}, got {fill!r}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be between 0 and 1 (exclusive), got {fraction}")
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    shown = overlay.display_picture(picture, explainer.max_side)
    heat, analysed = explainer.signed_map(shown, *shown.size)
    count = max(1, round(fraction * int(analysed.sum())))
    pixels = np.asarray(shown)
    if fill == "blur":
        replacement = np.asarray(shown.filter(ImageFilter.GaussianBlur(BLUR_RADIUS)))
    else:
        replacement = np.broadcast_to(pixels[analysed].mean(axis=0).astype(pixels.dtype), pixels.shape)
    rng = np.random.default_rng(seed)
    # Rank by the signed map: after ReLU, ties at zero would make the "hottest" pixels arbitrary.
    masks = [_top_mask(heat, analysed, count)]
    masks += [_top_mask(_random_blobs(heat.shape, 7, rng), analysed, count) for _ in range(trials)]
    masked = []
    for mask in masks:
        copy = pixels.copy()
        copy[mask] = replacement[mask]
        masked.append(Image.fromarray(copy))
    detector = explainer.detector
    logits = detector.member_logits([shown, *masked]).mean(axis=1)
    return Deletion(
        logit=float(logits[0]),
        logit_hot=float(logits[1]),
        logit_random=tuple(float(value) for value in logits[2:]),
        p_fake=float(detector.calibrate(logits[0])),
        p_fake_hot=float(detector.calibrate(logits[1])),
        p_fake_random=float(detector.calibrate(logits[2:].mean())),
    )
