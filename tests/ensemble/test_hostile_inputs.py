"""Hostile and awkward inputs through the real ``python -m ensemble predict`` with the shipped weights.

Every valid case of ``tests.corpus`` gets exactly one CSV row, every hostile one a one-line reason on stderr,
and the whole run stays under a time limit and a memory bound.
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys

import pytest

from tests.corpus import CASES, HOSTILE, VALID, names_an_exception
from tests.ensemble.test_cli import ROOT

TIMEOUT_S = 300  # loading TensorFlow and three members, then two dozen small pictures, on a busy 2-core machine
# Peak resident memory of the whole run: TensorFlow, three members and the biggest valid picture. Measured at
# 786 MiB (750 MiB for one small JPEG alone); the margin absorbs library and allocator differences. Reading the
# 1 GiB over-size file, or decoding either bomb, would go far past it.
PEAK_RSS_LIMIT_MIB = 1000

# Runs the command and writes its peak RSS (KiB) to a file. Linux starts a child's ru_maxrss at its parent's
# resident size (and Python's vfork at the parent's peak), so the measuring parent must be a small process of
# its own, not this test process, which may hold TensorFlow from earlier tests.
MEASURE = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def run_measured(command: list[str], timeout: float, peak_file) -> tuple[int, str, str, float]:
    """Run ``command``; return (exit status, stdout, stderr, its peak resident memory in MiB)."""
    wrapped = [sys.executable, "-c", MEASURE, str(peak_file), *command]
    process = subprocess.Popen(
        wrapped, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the wrapper and the command under it
        process.communicate()
        pytest.fail(f"{command[1:4]} did not finish in {timeout} s")
    return process.returncode, stdout, stderr, int(peak_file.read_text()) / 1024


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    paths = [case.write(folder) for case in CASES]
    command = [sys.executable, "-m", "ensemble", "predict", *map(str, paths)]
    status, stdout, stderr, peak_mib = run_measured(command, TIMEOUT_S, tmp_path_factory.mktemp("rss") / "peak-kib")
    print(f"\npredict over {len(CASES)} corpus files: exit {status}, peak RSS {peak_mib:.0f} MiB")
    return folder, status, stdout, stderr, peak_mib


def test_the_corpus_covers_both_outcomes():
    assert len(VALID) >= 14 and len(HOSTILE) >= 8
    assert len({case.file_name for case in CASES}) == len(CASES), "one folder holds them all"


def test_every_valid_picture_gets_exactly_one_verdict(predicted):
    folder, _status, stdout, _stderr, _peak = predicted
    rows = list(csv.DictReader(io.StringIO(stdout)))
    by_path = {}
    for row in rows:
        assert row["path"] not in by_path, f"two rows for {row['path']}"
        by_path[row["path"]] = row
    assert set(by_path) == {str(folder / case.file_name) for case in VALID}, stdout
    for row in rows:
        assert row["verdict"] in ("FAKE", "REAL", "UNSURE"), row
        assert 0.0 <= float(row["p_fake"]) <= 1.0, row


def test_every_hostile_file_is_named_with_its_one_line_reason(predicted):
    folder, status, _stdout, stderr, _peak = predicted
    lines = stderr.splitlines()
    for case in HOSTILE:
        prefix = f"{folder / case.file_name}: "
        named = [line for line in lines if line.startswith(prefix)]
        assert len(named) == 1, (case.name, stderr)
        assert case.expect in named[0], (case.name, named[0])
        assert not names_an_exception(named[0]), f"an exception name: {named[0]}"
    for case in VALID:
        assert str(folder / case.file_name) not in stderr, (case.name, stderr)
    assert status == 1


def test_no_traceback_and_bounded_memory(predicted):
    _folder, _status, stdout, stderr, peak_mib = predicted
    assert "Traceback" not in stdout + stderr, stderr
    assert peak_mib < PEAK_RSS_LIMIT_MIB, f"peak RSS {peak_mib:.0f} MiB"
