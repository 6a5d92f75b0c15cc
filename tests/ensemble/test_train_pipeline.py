"""The whole train -> weights/manifest -> Detector -> predict path, on a tiny made-up data set."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ensemble.detector import Detector
from ensemble.train import MemberPlan, train
from tests.images import encode, photo_like

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rows = ["path,label,source,generator,split"]
    rng = np.random.default_rng(0)
    for game in ("alpha", "beta", "gamma"):
        for label in ("REAL", "FAKE"):
            folder = root / "modern" / game / label
            folder.mkdir(parents=True)
            for n in range(4):
                picture = photo_like(96, 80, seed=int(rng.integers(1e6)))
                if label == "FAKE":  # a blurrier, smoother look: something to learn
                    picture = picture.resize((24, 20)).resize((96, 80))
                (folder / f"{n}.jpg").write_bytes(encode(picture, "JPEG", quality=90))
                rows.append(f"modern/{game}/{label}/{n}.jpg,{label},modern,x,{'test' if n == 3 else 'train'}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("weights")
    plans = [
        MemberPlan(
            "tiny_a",
            "lite0",
            64,
            held_out_fold=0,
            seed=1,
            epochs=1,
            steps_per_epoch=2,
            batch_size=4,
            head_warmup_images=8,
        ),
        MemberPlan(
            "tiny_b",
            "lite0",
            64,
            held_out_fold=1,
            seed=2,
            epochs=1,
            steps_per_epoch=2,
            batch_size=4,
            head_warmup_images=8,
        ),
    ]
    train(str(tiny_dataset), str(out), plans, command="test")
    return out


def test_manifest_records_how_each_member_was_made(trained, tiny_dataset):
    manifest = json.loads((trained / "manifest.json").read_text())
    assert len(manifest["data"]["manifest_sha256"]) == 64
    assert manifest["data"]["images"] == 18  # the train split only: test rows never reach training
    for member in manifest["members"]:
        assert {"backbone", "input_size", "seed", "epochs", "weights_sha256", "oof_metrics_uncalibrated"} <= set(member)
        assert (trained / member["weights_file"]).is_file()
    assert manifest["calibration"]["method"] == "platt"
    assert 0.0 <= manifest["unsure"]["half_width"] <= 0.45
    oof = np.load(trained / "oof_predictions.npz")
    assert set(oof["view"].tolist()) == {"plain", "telegram"}


def test_detector_judges_with_every_member(trained):
    detector = Detector.from_dir(trained)
    judgement = detector.judge(photo_like(200, 150))
    assert 0.0 <= judgement.p_fake <= 1.0
    assert judgement.verdict in {"FAKE", "REAL", "UNSURE"}
    assert set(judgement.member_p_fake) == {"tiny_a", "tiny_b"}


def test_predict_cli_reports_good_and_bad_files(trained, tmp_path):
    folder = tmp_path / "inbox"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "photo.jpg").write_bytes(encode(photo_like(), "JPEG"))
    (folder / "scan.png").write_bytes(encode(photo_like(50, 70), "PNG"))
    (folder / "broken.jpg").write_bytes(b"<html>not a picture</html>")
    (folder / "readme.txt").write_text("ignored: not an image name")
    result = subprocess.run(
        [sys.executable, "-m", "ensemble", "predict", str(folder), "--weights", str(trained)],
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


def test_recalibrate_refits_from_saved_out_of_fold_predictions(trained):
    from ensemble.train import recalibrate

    before = json.loads((trained / "manifest.json").read_text())
    after = recalibrate(str(trained))
    assert after["calibration"]["scale"] == pytest.approx(before["calibration"]["scale"])
    assert after["unsure"]["half_width"] == before["unsure"]["half_width"]
    assert [m["weights_sha256"] for m in after["members"]] == [m["weights_sha256"] for m in before["members"]]
