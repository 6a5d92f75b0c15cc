"""``python -m explain``: the heatmap file, the printed verdict and evidence, and one-line answers to mistakes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.images import encode, photo_like

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "explain", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    """A one-member weights folder as ``ensemble train`` writes it (an untrained 64 px Lite0: fast to load)."""
    from ensemble.classifier import build_classifier

    folder = tmp_path_factory.mktemp("weights")
    build_classifier("lite0", 64, imagenet=False, name="tiny").save_weights(folder / "tiny.weights.h5")
    member = {
        "name": "tiny",
        "backbone": "lite0",
        "input_size": 64,
        "held_out_fold": 0,
        "weights_file": "tiny.weights.h5",
    }
    manifest = {
        "members": [member],
        "calibration": {"scale": 1.0, "shift": 0.0},
        "unsure": {"half_width": 0.1},
        "preprocess": {"policy": "crop"},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_writes_the_overlay_and_prints_verdict_and_evidence(tiny_weights, tmp_path):
    info = PngInfo()
    info.add_text("parameters", "a castle at dusk\nSteps: 20, Sampler: Euler a, Model: dreamshaper_8")
    image = tmp_path / "castle.png"
    image.write_bytes(encode(photo_like(300, 200), "PNG", pnginfo=info))
    out = tmp_path / "why.png"
    result = run(str(image), "--out", str(out), "--weights", str(tiny_weights))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split(": ")[1] in {"FAKE", "REAL", "UNSURE"}
    assert 0.0 <= float(lines[1].removeprefix("p_fake: ")) <= 1.0
    assert "metadata says AI: png:sd-webui-parameters" in lines
    assert "metadata generator: Stable Diffusion WebUI" in lines
    assert "metadata model: dreamshaper_8" in lines
    overlay = Image.open(io.BytesIO(out.read_bytes()))
    assert overlay.format == "PNG" and overlay.width == 512  # 300x200 enlarged to a 512 px long side


def test_a_non_picture_is_one_line_and_exit_1(tiny_weights, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("<html>not a picture</html>")
    result = run(str(bad), "--out", str(tmp_path / "out.png"), "--weights", str(tiny_weights))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"{bad}: not an image"
    assert "Traceback" not in result.stderr and not (tmp_path / "out.png").exists()


def test_a_missing_file_is_one_line_and_exit_1(tiny_weights, tmp_path):
    result = run(str(tmp_path / "nowhere.jpg"), "--weights", str(tiny_weights))
    assert result.returncode == 1
    assert "nowhere.jpg: cannot read file" in result.stderr and "Traceback" not in result.stderr


def test_missing_weights_say_how_to_fix_and_exit_2(tmp_path):
    image = tmp_path / "photo.jpg"
    image.write_bytes(encode(photo_like(), "JPEG"))
    result = run(str(image), "--weights", str(tmp_path / "no-weights"))
    assert result.returncode == 2
    assert "manifest.json not found" in result.stderr and "Traceback" not in result.stderr
