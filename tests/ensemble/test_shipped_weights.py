"""The ensemble in weights/: complete, within budget, and still as good as its manifest says."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from ensemble.detector import Detector
from ensemble.evaluate import _stratified_subset, view_results
from tests.images import photo_like

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "weights"
DATA = Path(os.environ.get("REAL_VS_AI_DIR", ROOT.parent / "shared" / "datasets" / "real-vs-ai"))


@pytest.fixture(scope="module")
def manifest():
    return json.loads((WEIGHTS / "manifest.json").read_text())


@pytest.fixture(scope="module")
def detector():
    return Detector.from_dir(WEIGHTS)


def test_every_member_file_is_there_and_unchanged(manifest):
    assert len(manifest["members"]) >= 2
    for member in manifest["members"]:
        data = (WEIGHTS / (member.get("head_file") or member["weights_file"])).read_bytes()
        assert hashlib.sha256(data).hexdigest() == member["weights_sha256"], member["name"]


def test_the_onnx_graphs_are_shipped_for_these_weights(manifest):
    from ensemble.onnx_files import SHIPPED, SIDECAR, source_of

    sidecar = json.loads((WEIGHTS / SHIPPED / SIDECAR).read_text())
    assert sidecar["source"] == source_of(manifest)
    assert sorted(i for entry in sidecar["files"] for i in entry["members"]) == list(range(len(manifest["members"])))
    for entry in sidecar["files"]:
        data = (WEIGHTS / SHIPPED / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]


def test_weights_fit_the_size_budget():
    total = sum(path.stat().st_size for path in WEIGHTS.rglob("*") if path.is_file())
    assert total <= 100 * 1024 * 1024


def test_shipped_ensemble_judges_a_picture(detector):
    judgement = detector.judge(photo_like(640, 480))
    assert 0.0 <= judgement.p_fake <= 1.0
    assert len(judgement.member_p_fake) == len(detector.members)


@pytest.mark.skipif(not (DATA / "manifest.csv").is_file(), reason=f"data set not found at {DATA}")
def test_regression_guard_on_test_split(detector, manifest):
    """A few hundred test-split images: the metrics must stay near the ones recorded in the manifest."""
    from ensemble.data import load_dataset

    samples = _stratified_subset(load_dataset(DATA, split="test"), 300)
    result = view_results(detector, samples, "plain", None)
    overall = result["ensemble"]["overall"]
    recorded = manifest["test_metrics"]["real-vs-ai"]["plain"]["overall"]
    assert overall["n"] >= 290
    assert overall["logloss"] <= recorded["logloss"] + 0.08
    assert overall["auc"] >= recorded["auc"] - 0.05
    assert np.isfinite(overall["logloss"])
