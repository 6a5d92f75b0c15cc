"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


@pytest.fixture(scope="session")
def onnx_dir(tmp_path_factory) -> Path:
    """The shipped ensemble converted to ONNX once per test session (about 40 seconds)."""
    from ensemble.onnx_export import convert

    folder = tmp_path_factory.mktemp("onnx")
    convert(WEIGHTS, folder)
    return folder
