"""``python -m ensemble train``'s path on a tiny made-up pool: feature cache -> heads -> weights/ -> Detector."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ensemble.build import build
from ensemble.detector import Detector
from ensemble.heads import Recipe
from tests.images import encode, photo_like

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_pool(tmp_path_factory):
    root = tmp_path_factory.mktemp("pool")
    rows = ["path,label,source,group,generator,split"]
    rng = np.random.default_rng(0)
    plan = [(f"quiz{n}", "games", ("REAL", "FAKE"), "train") for n in range(5)]
    plan += [("held_out_quiz", "games", ("REAL", "FAKE"), "test")]
    for group, category, labels, split in plan:
        for label in labels:
            folder = root / group / label
            folder.mkdir(parents=True)
            for n in range(3):
                picture = photo_like(300, 240, seed=int(rng.integers(1e6)))
                if label == "FAKE":  # a smoother look: something to learn
                    picture = picture.resize((60, 48)).resize((300, 240))
                (folder / f"{n}.jpg").write_bytes(encode(picture, "JPEG", quality=90))
                rows.append(f"{group}/{label}/{n}.jpg,{label},{category},{group},x,{split}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def built(tiny_pool, tmp_path_factory):
    out = tmp_path_factory.mktemp("weights")
    features = tmp_path_factory.mktemp("features")
    members = {"crop": Recipe("lite0_224_crop"), "native": Recipe("lite0_224_grid_to11_std")}
    manifest = build([str(tiny_pool)], str(out), str(features), members=members, command="test")
    return out, features, manifest


def test_the_manifest_records_how_each_member_was_made(built):
    out, _features, manifest = built
    saved = json.loads((out / "manifest.json").read_text())
    assert saved["calibration"] == manifest["calibration"] and saved["members"][0]["recipe"]["l2"] > 0
    (data_set_hash,) = manifest["data"]["data_sets"].values()
    assert len(data_set_hash) == 64
    assert manifest["data"]["pictures"] == 30  # the train split only: the held-out quiz never reaches training
    assert [m["name"] for m in manifest["members"]] == ["crop", "native"]
    # the top layer's means; the grid member's graph ends at block11's expansion: 6 taps' means and deviations
    for member, width in zip(manifest["members"], (1280, 2 * (32 + 96 + 144 + 240 + 480 + 672))):
        assert {"backbone", "input_size", "policy", "seed", "epochs", "recipe", "train_seconds"} <= set(member)
        head = np.load(out / member["head_file"])
        assert head["kernel"].shape == (width,)
        assert member["oof_metrics"]["overall"]["n"] == 30
    # the grid member's train pictures were read through a sample of their squares; the crop member has no grid
    assert manifest["members"][1]["train_squares"] == 4 and "train_squares" not in manifest["members"][0]
    assert manifest["calibration"]["method"] == "platt"
    assert 0.0 <= manifest["unsure"]["half_width"] <= 0.45
    oof = np.load(out / "oof_predictions.npz")
    assert len(oof["logit"]) == 30 and set(oof["source"].tolist()) == {"games"}
    assert np.allclose(oof["logit"], (oof["member/crop"] + oof["member/native"]) / 2)


def test_the_keras_members_load_and_judge_with_their_own_views(built):
    out, _features, manifest = built
    detector = Detector.from_dir(out)
    assert detector.groups == {(224, "crop"): [0], (224, "grid"): [1]}
    logits = detector.member_logits([photo_like(640, 480, 1), photo_like(100, 80, 2)])
    assert logits.shape == (2, 2) and np.isfinite(logits).all()
    # the head is the one in the file: a member's logit is its head on the backbone's pooled features
    from ensemble.features import BACKBONE_VIEWS, feature_runner
    from ensemble.preprocess import model_inputs

    spec = next(s for s in BACKBONE_VIEWS if s.name == "lite0_224_grid_to11_std")
    head = np.load(out / manifest["members"][1]["head_file"])
    pooled = feature_runner(spec)(model_inputs(photo_like(640, 480, 1), 224, "grid")).mean(axis=0)
    assert abs(float(pooled @ head["kernel"] + head["bias"]) - logits[0, 1]) < 1e-3


def test_predict_cli_reports_good_and_bad_files(built, tmp_path):
    out, _features, _manifest = built
    folder = tmp_path / "inbox"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "photo.jpg").write_bytes(encode(photo_like(), "JPEG"))
    (folder / "scan.png").write_bytes(encode(photo_like(50, 70), "PNG"))
    (folder / "broken.jpg").write_bytes(b"<html>not a picture</html>")
    (folder / "readme.txt").write_text("ignored: not an image name")
    result = subprocess.run(
        [sys.executable, "-m", "ensemble", "predict", str(folder), "--weights", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "path,p_fake,verdict"
    assert sorted(line.split(",")[0].rsplit("/", 1)[-1] for line in lines[1:]) == ["photo.jpg", "scan.png"]
    assert "broken.jpg: not an image" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.returncode == 1


def test_the_cache_and_folds_are_reused_and_calibrate_refits_from_the_saved_logits(built, tiny_pool, tmp_path):
    first_out, features, first = built
    out = tmp_path / "again"  # the shared weights stay as the fixture built them, for the other tests
    shards = {path: path.stat().st_mtime_ns for path in features.glob("*/shard_*.npz")}
    saved_crop = np.load(first_out / "oof_predictions.npz")["member/crop"]
    assert {path.parent.name for path in shards} == {"lite0_224_crop", "lite0_224_grid_to11_std"}
    assert not any(member["out_of_fold_remembered"] for member in first["members"])
    again = build([str(tiny_pool)], str(out), str(features), members={"crop": Recipe("lite0_224_crop")})
    assert {path: path.stat().st_mtime_ns for path in features.glob("*/shard_*.npz")} == shards
    # the first build's folds are read back, and the manifest says so (its seconds are then the full fit's)
    assert again["members"][0]["out_of_fold_remembered"]
    assert np.array_equal(np.load(out / "oof_predictions.npz")["member/crop"], saved_crop)
    before = json.loads((out / "manifest.json").read_text())
    result = subprocess.run(
        [sys.executable, "-m", "ensemble", "calibrate", "--weights", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "out-of-fold" in result.stdout
    after = json.loads((out / "manifest.json").read_text())  # the same fit from the same saved logits
    assert after["calibration"]["scale"] == pytest.approx(before["calibration"]["scale"])
    assert after["unsure"] == before["unsure"]
    assert [m["weights_sha256"] for m in after["members"]] == [m["weights_sha256"] for m in before["members"]]


def test_the_heatmap_covers_every_square_the_verdict_read(built):
    from ensemble.preprocess import crop_geometry
    from explain.explainer import Explainer
    from explain.gradcam import box_pixels

    out, _features, _manifest = built
    detector = Detector.from_dir(out)
    picture = photo_like(1280, 960, 5)
    heat, analysed = Explainer(detector).signed_map(picture, 1280, 960)
    expected = np.zeros((960, 1280), bool)
    boxes = crop_geometry(1280, 960, 224, "crop") + crop_geometry(1280, 960, 224, "grid")
    assert len(boxes) == 1 + 16
    for box in boxes:
        x0, y0, x1, y1 = box_pixels(box, 1280, 960)
        expected[y0:y1, x0:x1] = True
    assert np.array_equal(analysed, expected)
    assert np.abs(heat[expected]).max() > 0 and not heat[~expected].any()
