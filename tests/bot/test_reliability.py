"""Soak, overload and SIGKILL through the real bot process (scenarios in benchmarks/reliability.py, which
prints the same figures for docs/operations.md)."""

from __future__ import annotations

import pytest

from benchmarks import reliability

# Resident memory may grow while caches and thread arenas warm up; a leak of even 100 KB a photo would add
# about 40 MiB between the first and the last 100 of the 500.
MAX_GROWTH_MIB = 40


def test_soak_500_photos_from_100_users_all_answered_without_growing(tmp_path, onnx_dir):
    result = reliability.soak(tmp_path, onnx_dir, users=100, photos=500)
    assert result.verdicts == 500 and result.other_answers == 0, result
    assert result.rss_last_100_mib - result.rss_first_100_mib < MAX_GROWTH_MIB, result
    assert result.log_errors == 0 and not result.token_in_log, result


def test_a_burst_beyond_capacity_gets_busy_answers_and_the_bot_recovers(tmp_path, onnx_dir):
    result = reliability.overload(tmp_path, onnx_dir, burst=300, queue_limit=64)
    assert result.unanswered == 0, result
    assert result.verdicts + result.busy == 300, "every photo got exactly one answer: a verdict or busy"
    assert result.busy > 0 and result.verdicts >= 64, result
    assert result.after_burst_verdicts == result.after_burst, result


@pytest.mark.parametrize("mode", ["polling", "webhook"])
def test_sigkill_while_photos_are_in_progress_loses_none(tmp_path, onnx_dir, mode):
    result = reliability.crash(tmp_path, onnx_dir, photos=12, mode=mode)
    assert result.confirmed_to_telegram_before_kill, "Telegram had forgotten them: only the journal had them"
    assert 0 < result.answered_before_kill < 12, "the kill came while some were still in progress"
    assert result.lost == 0, result
    assert result.answered_before_kill + result.answered_after_restart == 12
    assert not result.token_in_log
