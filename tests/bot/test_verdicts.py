"""VerdictStore: round-trips, per-user isolation, overlay ids and pruning that survive a restart."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey

from bot.storage import SQLiteStorage
from bot.verdicts import VerdictRecord, VerdictStore

ALICE = 111
BOB = 222


class Clock:
    """A settable stand-in for time.time, so tests can age records without sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "verdicts.sqlite3"


@pytest.fixture
async def store(db_path: Path, clock: Clock) -> AsyncIterator[VerdictStore]:
    verdicts = VerdictStore(db_path, clock=clock)
    yield verdicts
    verdicts.close()


def verdict_fields(user_id: int = ALICE, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "user_id": user_id,
        "chat_id": user_id,
        "file_id": f"AgAC-file-{user_id}",
        "file_unique_id": f"AQAD-{user_id}",
        "kind": "document",
        "file_name": "cat.png",
        "p_fake": 0.93,
        "verdict": "FAKE",
        "member_p_fake": {"lite0": 0.91, "lite1": 0.95},
        "evidence": ["smooth textures", "odd hands — ✋"],
    }
    fields.update(overrides)
    return fields


async def test_add_then_get_round_trips(store: VerdictStore, clock: Clock) -> None:
    record = await store.add(**verdict_fields())
    assert isinstance(record, VerdictRecord)
    assert record.id >= 1
    assert record.created_at == clock.now
    assert record.overlay_file_id is None
    expected = {**verdict_fields(), "id": record.id, "overlay_file_id": None, "created_at": clock.now}
    assert dataclasses.asdict(record) == expected
    assert await store.get(ALICE, record.id) == record


async def test_photo_without_name_or_evidence(store: VerdictStore) -> None:
    record = await store.add(
        **verdict_fields(kind="photo", file_name=None, verdict="UNSURE", p_fake=0.5, member_p_fake={}, evidence=[])
    )
    loaded = await store.get(ALICE, record.id)
    assert loaded is not None
    assert (loaded.kind, loaded.file_name, loaded.verdict, loaded.member_p_fake, loaded.evidence) == (
        "photo",
        None,
        "UNSURE",
        {},
        [],
    )


async def test_another_users_verdict_is_invisible(store: VerdictStore) -> None:
    alices = await store.add(**verdict_fields(ALICE))
    assert await store.get(BOB, alices.id) is None
    assert await store.get(ALICE, alices.id + 1000) is None
    assert await store.set_overlay(BOB, alices.id, "bob-overlay") is False
    loaded = await store.get(ALICE, alices.id)
    assert loaded is not None
    assert loaded.overlay_file_id is None


async def test_set_overlay_persists_across_reopen(db_path: Path, clock: Clock) -> None:
    first = VerdictStore(db_path, clock=clock)
    try:
        record = await first.add(**verdict_fields())
        assert await first.set_overlay(ALICE, record.id, "AgAC-overlay")
    finally:
        first.close()

    second = VerdictStore(db_path, clock=clock)
    try:
        loaded = await second.get(ALICE, record.id)
        assert loaded == dataclasses.replace(record, overlay_file_id="AgAC-overlay")
        assert await second.count() == 1
    finally:
        second.close()


async def test_recent_is_newest_first_limited_and_per_user(store: VerdictStore) -> None:
    alices = [await store.add(**verdict_fields(ALICE, file_id=f"a{i}")) for i in range(5)]
    await store.add(**verdict_fields(BOB))
    assert [r.file_id for r in await store.recent(ALICE)] == ["a4", "a3", "a2", "a1", "a0"]
    assert await store.recent(ALICE, limit=2) == [alices[4], alices[3]]
    assert [r.user_id for r in await store.recent(BOB)] == [BOB]
    assert await store.recent(333) == []
    assert await store.count() == 6


async def test_prune_removes_only_old_records(store: VerdictStore, clock: Clock) -> None:
    old = await store.add(**verdict_fields(ALICE, file_id="old"))
    clock.now += 29 * 86400
    middle = await store.add(**verdict_fields(BOB, file_id="middle"))
    clock.now += 2 * 86400
    new = await store.add(**verdict_fields(ALICE, file_id="new"))

    assert await store.prune(30 * 86400) == 1
    assert await store.get(ALICE, old.id) is None
    assert await store.get(BOB, middle.id) == middle
    assert await store.get(ALICE, new.id) == new
    assert await store.count() == 2
    assert await store.prune(30 * 86400) == 0


async def test_ids_are_not_reused_after_prune(store: VerdictStore, clock: Clock) -> None:
    # An old "Why?" button must never come to point at a different picture.
    first = await store.add(**verdict_fields())
    clock.now += 1000
    assert await store.prune(10) == 1
    second = await store.add(**verdict_fields())
    assert second.id > first.id


@pytest.mark.parametrize(
    "overrides",
    [
        {"kind": "video"},
        {"verdict": "MAYBE"},
        {"p_fake": 1.5},
        {"p_fake": float("nan")},
        {"member_p_fake": {"lite0": -0.1}},
    ],
)
async def test_add_rejects_bad_values(store: VerdictStore, overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        await store.add(**verdict_fields(**overrides))
    assert await store.count() == 0


async def test_close_is_idempotent_and_final(db_path: Path) -> None:
    verdicts = VerdictStore(db_path)
    verdicts.close()
    verdicts.close()
    with pytest.raises(RuntimeError, match="closed"):
        await verdicts.count()


async def test_can_share_a_file_with_the_fsm_storage(db_path: Path) -> None:
    fsm = SQLiteStorage(db_path)
    verdicts = VerdictStore(db_path)
    try:
        key = StorageKey(bot_id=1, chat_id=ALICE, user_id=ALICE)
        await fsm.set_data(key, {"a": 1})
        record = await verdicts.add(**verdict_fields())
        assert await fsm.get_data(key) == {"a": 1}
        assert await verdicts.get(ALICE, record.id) == record
    finally:
        verdicts.close()
        await fsm.close()
