"""The command line's answers to user mistakes: one line, no traceback."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    command = [sys.executable, "-m", "ensemble", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_predict_without_weights_says_how_to_fix(tmp_path):
    result = run("predict", str(tmp_path), "--weights", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert "manifest.json not found" in result.stderr and "Traceback" not in result.stderr


def test_evaluate_an_unlabelled_folder(tmp_path):
    result = run("evaluate", str(tmp_path), "--weights", str(tmp_path))
    assert result.returncode == 2
    assert "no manifest.csv and no REAL/ and FAKE/" in result.stderr and "Traceback" not in result.stderr


def test_unknown_command_is_a_usage_error():
    result = run("bake")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_a_command_that_moved_says_where_it_went():
    result = run("harvest", "feedback.csv", "out")
    assert result.returncode == 2 and "python -m bot harvest" in result.stderr and "Traceback" not in result.stderr
