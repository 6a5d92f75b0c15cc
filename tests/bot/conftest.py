"""Fixtures shared by the bot tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def analyst_parts():
    """An untrained two-member ensemble at 64 px and its explainer, built once per test session."""
    from ensemble.classifier import build_classifier
    from ensemble.detector import Detector
    from explain.explainer import Explainer

    models = [build_classifier("lite0", 64, imagenet=False, name=f"tiny{i}") for i in range(2)]
    manifest = {
        "members": [{"name": f"tiny{i}", "input_size": 64, "held_out_fold": i} for i in range(2)],
        "calibration": {"scale": 1.0, "shift": 0.0},
        "unsure": {"half_width": 0.1},
        "preprocess": {"policy": "crop"},
    }
    detector = Detector(manifest, models)
    return detector, Explainer(detector, image_format="jpeg")
