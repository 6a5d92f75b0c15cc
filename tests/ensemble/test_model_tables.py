import json

from benchmarks.model_tables import main

ROW = {"n": 4, "logloss": 0.5, "auc": 0.75, "accuracy": 0.75, "unsure": 0.25, "confident_accuracy": 1.0,
       "real_called_fake": 0.0}  # fmt: skip


def test_the_tables_name_the_band_the_manifest_holds(tmp_path, capsys):
    manifest = {
        "unsure": {"half_width": 0.22, "fake_half_width": 0.24},
        "oof_metrics": {"games": ROW, "overall": ROW},
        "oof_groups": {"quiz": ROW, "overall": ROW},
        "members": [{"name": "lite0_whole", "oof_metrics": {"overall": ROW}}],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert main(["--weights", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("UNSURE band: REAL when p <= 0.28, FAKE when p >= 0.74.")
    assert "| lite0_whole | 4 | 0.500 | 0.750 |" in printed and "| **overall** | 4 |" in printed
