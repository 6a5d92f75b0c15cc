"""The SQLite stores behind "Wrong?" and auto mode: one answer per user per picture, settings across restarts."""

from __future__ import annotations

import pytest

from bot.chat_settings import ChatSettingsStore
from bot.feedback import FeedbackStore, summarize, write_csv

ANSWER = {"chat_id": -100, "file_id": "AgAC-1", "file_unique_id": "AQAD-1", "p_fake": 0.91, "verdict": "FAKE"}


async def test_one_answer_per_user_per_picture_and_it_survives_a_restart(tmp_path):
    path = tmp_path / "feedback.sqlite3"
    store = FeedbackStore(path, clock=iter(range(100, 200)).__next__)
    assert await store.record(user_id=1, answer="REAL", **ANSWER) is False
    assert await store.record(user_id=1, answer="FAKE", **ANSWER) is True
    assert await store.record(user_id=2, answer="REAL", **ANSWER) is False
    assert await store.record(user_id=2, answer="REAL", **{**ANSWER, "file_unique_id": "AQAD-2"}) is False
    store.close()

    reopened = FeedbackStore(path)
    try:
        records = await reopened.all()
        assert [(r.file_unique_id, r.user_id, r.answer, r.answered_at) for r in records] == [
            ("AQAD-1", 1, "FAKE", 101), ("AQAD-1", 2, "REAL", 102), ("AQAD-2", 2, "REAL", 103)
        ]  # fmt: skip
        summary = await reopened.summary()
        assert summary.count == 3 and summary.confident == {"FAKE": (3, 2), "REAL": (0, 0)}
        for bad, match in (
            ({"answer": "MAYBE"}, "answer"),
            ({"verdict": "SURE"}, "verdict"),
            ({"p_fake": 2}, "p_fake"),
        ):
            with pytest.raises(ValueError, match=match):
                await reopened.record(user_id=3, **{**ANSWER, "answer": "REAL", **bad})
        assert len(await reopened.all()) == 3, "nothing written for a refused answer"
        out = tmp_path / "out.csv"
        assert write_csv(records, out) == 3
        header, first = out.read_text().splitlines()[:2]
        assert header == "file_unique_id,user_id,chat_id,file_id,answer,verdict,p_fake,answered_at"
        assert first == "AQAD-1,1,-100,AgAC-1,FAKE,FAKE,0.91,101.0"
    finally:
        reopened.close()


def test_unsure_verdicts_do_not_count_as_confident_disagreement():
    from bot.feedback import FeedbackRecord

    records = [FeedbackRecord("u", 1, 1, "f", "FAKE", "UNSURE", 0.5, 0.0),
               FeedbackRecord("v", 1, 1, "g", "FAKE", "REAL", 0.1, 0.0)]  # fmt: skip
    assert summarize(records).confident == {"FAKE": (0, 0), "REAL": (1, 1)}


async def test_auto_mode_is_off_until_set_and_kept_across_a_restart(tmp_path):
    path = tmp_path / "chats.sqlite3"
    store = ChatSettingsStore(path)
    assert await store.auto(-5) is False
    await store.set_auto(-5, True, changed_by=11)
    store.close()
    reopened = ChatSettingsStore(path)
    try:
        assert await reopened.auto(-5) is True and await reopened.auto(-6) is False
        await reopened.set_auto(-5, False, changed_by=None)
        assert await reopened.auto(-5) is False
    finally:
        reopened.close()
