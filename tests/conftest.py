"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.aiogram_import import import_aiogram

import_aiogram()  # as `python -m bot` does, so the in-process bot tests run on aiogram's deferred validators

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


@pytest.fixture(scope="session")
def onnx_dir() -> Path:
    """The ensemble's ONNX conversion shipped in weights/onnx (``python -m ensemble export-onnx`` rebuilds it)."""
    from ensemble.onnx_files import SHIPPED, SIDECAR

    folder = WEIGHTS / SHIPPED
    assert (folder / SIDECAR).is_file(), "weights/onnx is missing: run `python -m ensemble export-onnx --check ...`"
    return folder
