"""The ONNX Runtime path: same verdicts as TensorFlow, and used only where that was checked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ensemble.detector import Detector
from ensemble.onnx_export import MAX_P_FAKE_DIFFERENCE, SIDECAR
from ensemble.onnx_runtime import Unavailable, load_runners
from tests.images import photo_like

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


@pytest.fixture(scope="module")
def manifest():
    return json.loads((WEIGHTS / "manifest.json").read_text())


def test_the_shipped_manifest_records_a_passed_check_on_the_whole_test_split(manifest):
    check = manifest["onnx_check"]
    assert check["passed"] and check["split"] == "test" and check["pictures"] >= 2000
    assert check["max_abs_p_fake"] <= MAX_P_FAKE_DIFFERENCE and check["verdict_changes"] == 0


def test_a_fresh_conversion_passes_its_probe_and_gives_the_shipped_graphs_logits(onnx_dir, manifest, tmp_path):
    from ensemble.onnx_export import convert

    (tmp_path / "ensemble_999_crop.onnx").write_bytes(b"a graph of a view group the ensemble no longer has")
    sidecar = convert(WEIGHTS, tmp_path)
    assert sidecar["probe"]["passed"]
    assert not (tmp_path / "ensemble_999_crop.onnx").exists()
    shipped = json.loads((onnx_dir / SIDECAR).read_text())
    assert [(f["file"], f["members"]) for f in sidecar["files"]] == [
        (f["file"], f["members"]) for f in shipped["files"]
    ]
    fresh = Detector(manifest, None, *load_runners(tmp_path, manifest, checked=False))
    served = Detector(manifest, None, *load_runners(onnx_dir, manifest))
    pictures = [photo_like(640, 480, 5), photo_like(200, 150, 6)]
    assert np.abs(fresh.member_logits(pictures) - served.member_logits(pictures)).max() < 1e-4


def test_serving_starts_from_the_shipped_graphs_without_converting(manifest, tmp_path):
    detector = Detector.from_dir(WEIGHTS, onnx_dir=tmp_path / "unused")
    assert detector.backend == "onnx"
    assert not (tmp_path / "unused").exists()  # nothing was converted


def test_onnx_grad_cam_maps_are_tensorflows(onnx_dir):
    from explain.explainer import Explainer

    tf_explainer = Explainer(Detector.from_dir(WEIGHTS))
    onnx_explainer = Explainer(Detector.from_dir(WEIGHTS, onnx_dir=onnx_dir))
    for picture in (photo_like(640, 480, 3), photo_like(500, 900, 4)):
        ours, analysed = tf_explainer.signed_map(picture, 320, picture.height * 320 // picture.width)
        theirs, analysed_too = onnx_explainer.signed_map(picture, 320, picture.height * 320 // picture.width)
        assert (analysed == analysed_too).all()
        assert np.abs(ours - theirs).max() <= 1e-3 * np.abs(ours).max()
    with pytest.raises(ValueError, match="needs the Keras members"):
        Explainer(Detector.from_dir(WEIGHTS, onnx_dir=onnx_dir), method="gradcam++")


def test_serving_on_onnx_runtime_never_imports_tensorflow(onnx_dir):
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from ensemble.detector import Detector\n"
        "from explain.explainer import Explainer\n"
        "from tests.images import encode, photo_like\n"
        f"detector = Detector.from_dir({str(WEIGHTS)!r}, onnx_dir={str(onnx_dir)!r})\n"
        "data = encode(photo_like(800, 600, 1), 'JPEG')\n"
        "explanation = Explainer(detector, image_format='jpeg').explain(data)\n"
        "print(detector.backend, detector.judge_file(data).verdict, len(explanation.overlay) > 1000,\n"
        "      'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=WEIGHTS.parent, capture_output=True, text=True, timeout=300, check=True
    )
    backend, _verdict, has_overlay, tensorflow, keras = result.stdout.split()
    assert (backend, has_overlay, tensorflow, keras) == ("onnx", "True", "False", "False"), result.stdout


def test_onnx_runtime_gives_tensorflows_verdicts(onnx_dir):
    tf_detector = Detector.from_dir(WEIGHTS)
    onnx_detector = Detector.from_dir(WEIGHTS, onnx_dir=onnx_dir)
    assert (tf_detector.backend, onnx_detector.backend) == ("tf", "onnx")
    pictures = [photo_like(640, 480, seed) for seed in range(3)] + [photo_like(300, 900, 7)]
    ours = tf_detector.member_logits(pictures)
    theirs = onnx_detector.member_logits(pictures)
    gaps = np.abs(ours - theirs).max(axis=0)
    high_pass = [spec.get("input_filter") == "highpass" for spec in tf_detector.manifest["members"]]
    # float32 rounding: 1e-3 for members that read the picture; the high-pass member's head weighs the first
    # layer's mean heavily (onnx_export.MAX_P_FAKE_DIFFERENCE says why), so it moves up to 0.04 on a tiny
    # upscaled picture and about 1e-3 on these
    assert all(gap < (1e-2 if filtered else 1e-3) for gap, filtered in zip(gaps, high_pass))
    for picture in pictures:
        a, b = tf_detector.judge(picture), onnx_detector.judge(picture)
        assert abs(a.p_fake - b.p_fake) <= MAX_P_FAKE_DIFFERENCE and a.verdict == b.verdict


def test_a_changed_file_or_other_weights_are_not_served(onnx_dir, manifest, tmp_path):
    copy = tmp_path / "onnx"
    shutil.copytree(onnx_dir, copy)
    sidecar = json.loads((copy / SIDECAR).read_text())
    assert load_runners(copy, manifest)  # the copy as it is works

    other = json.loads(json.dumps(manifest))
    other["members"][0]["weights_sha256"] = "0" * 64
    with pytest.raises(Unavailable, match="other weights"):
        load_runners(copy, other)

    assert sidecar["probe"]["passed"] and sidecar["probe"]["max_abs_p_fake"] <= MAX_P_FAKE_DIFFERENCE
    assert sidecar["probe"]["max_relative_map_difference"] <= 1e-3
    failed_probe = {**sidecar, "probe": {**sidecar["probe"], "passed": False}}
    (copy / SIDECAR).write_text(json.dumps(failed_probe))
    with pytest.raises(Unavailable, match="differed from TensorFlow"):
        load_runners(copy, manifest)
    (copy / SIDECAR).write_text(json.dumps(sidecar))

    unchecked = {key: value for key, value in manifest.items() if key != "onnx_check"}
    with pytest.raises(Unavailable, match="has not passed"):
        load_runners(copy, unchecked)

    damaged = copy / sidecar["files"][0]["file"]
    damaged.write_bytes(damaged.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(Unavailable, match="missing or changed"):
        load_runners(copy, manifest)


def test_without_a_conversion_tensorflow_serves(tmp_path):
    assert Detector.from_dir(WEIGHTS).backend == "tf"
    with pytest.raises(Unavailable, match="no conversion"):
        load_runners(tmp_path, json.loads((WEIGHTS / "manifest.json").read_text()))
    bare = tmp_path / "weights"
    shutil.copytree(WEIGHTS, bare, ignore=shutil.ignore_patterns("onnx"))
    assert Detector.from_dir(bare, shipped_onnx=True).backend == "tf"  # the CLI without weights/onnx


def test_predict_cli_runs_on_onnx_runtime_with_a_progress_bar_for_long_runs(tmp_path):
    import subprocess
    import sys

    from ensemble.predict import PROGRESS_FROM
    from tests.images import encode

    for n in range(PROGRESS_FROM):
        (tmp_path / f"{n}.jpg").write_bytes(encode(photo_like(320, 240, n), "JPEG"))
    script = (
        "import sys\n"
        "from ensemble.cli import main\n"
        f"code = main(['predict', {str(tmp_path)!r}])\n"
        "print('tensorflow' in sys.modules, code, file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=WEIGHTS.parent, capture_output=True, text=True, timeout=300, check=True
    )
    assert len(result.stdout.splitlines()) == PROGRESS_FROM + 1
    assert "judging" in result.stderr and f"{PROGRESS_FROM}/{PROGRESS_FROM}" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "False 0"  # ONNX Runtime judged; TensorFlow never loaded
