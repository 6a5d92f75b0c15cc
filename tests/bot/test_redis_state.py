"""The Redis stores against a real redis-server: verdict records and rate limits shared by replicas."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from aiogram.types import Chat, Message, PhotoSize, User
from redis.asyncio import Redis

from bot.config import ConfigError
from bot.redis_state import (
    RedisAlbums,
    RedisChatSettings,
    RedisFeedbackStore,
    RedisRateLimiter,
    RedisVerdictStore,
    open_redis_stores,
)


@pytest.fixture
async def redis(redis_url):
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


def fields(user_id: int = 7, p_fake: float = 0.8):
    return {
        "user_id": user_id,
        "chat_id": user_id,
        "file_id": "AgAD-file",
        "file_unique_id": "uniq",
        "kind": "photo",
        "file_name": None,
        "p_fake": p_fake,
        "verdict": "FAKE",
        "member_p_fake": {"lite0_fold0": 0.7, "lite1_fold1": 0.9},
        "evidence": ["generator:Какой-то генератор"],
    }


async def test_a_verdict_given_by_one_replica_is_read_by_another(redis):
    replica_a, replica_b = RedisVerdictStore(redis), RedisVerdictStore(redis)
    given = await replica_a.add(**fields())
    read = await replica_b.get(7, given.id)
    assert read == given
    assert await replica_b.get(8, given.id) is None, "another user cannot read it"
    assert await replica_b.set_overlay(8, given.id, "overlay") is False
    assert await replica_b.set_overlay(7, given.id, "overlay") is True
    assert (await replica_a.get(7, given.id)).overlay_file_id == "overlay"
    assert await replica_a.set_overlay(7, 999_999, "x") is False
    assert await redis.exists("aid:verdict:7:999999") == 0, "no stray half record"


async def test_ids_are_unique_and_recent_is_newest_first(redis):
    store = RedisVerdictStore(redis)
    ids = [(await store.add(**fields(p_fake=i / 10))).id for i in range(5)]
    assert len(set(ids)) == 5
    assert [record.id for record in await store.recent(7, 3)] == ids[::-1][:3]
    assert await store.count() == 5


async def test_bad_fields_are_refused(redis):
    with pytest.raises(ValueError, match="probability"):
        await RedisVerdictStore(redis).add(**{**fields(), "p_fake": 1.5})


async def test_the_rate_limit_counts_every_replica_together(redis):
    replica_a, replica_b = RedisRateLimiter(redis), RedisRateLimiter(redis)
    decisions = [await (replica_a if i % 2 else replica_b).hit("user:42", 3) for i in range(6)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False, False]
    assert [d.warn for d in decisions[3:]] == [True, False, False], "one polite answer per window"
    assert 1 <= decisions[3].wait_seconds <= 60
    assert (await replica_a.hit("user:43", 3)).allowed, "other users are not affected"
    assert (await replica_a.hit("chat:-10042", 3)).allowed, "a chat's window is its own"


async def test_auto_mode_and_feedback_are_shared_by_replicas(redis):
    settings_a, settings_b = RedisChatSettings(redis), RedisChatSettings(redis)
    assert await settings_b.auto(-1001) is False, "off until an admin turns it on"
    await settings_a.set_auto(-1001, True, changed_by=7)
    assert await settings_b.auto(-1001) is True and await settings_b.auto(-1002) is False
    await settings_b.set_auto(-1001, False, changed_by=None)
    assert await settings_a.auto(-1001) is False

    feedback_a, feedback_b = RedisFeedbackStore(redis), RedisFeedbackStore(redis)
    answer = {"chat_id": -1001, "file_id": "f1", "file_unique_id": "u1", "p_fake": 0.97, "verdict": "FAKE"}
    assert await feedback_a.record(user_id=7, answer="REAL", **answer) is False
    assert await feedback_b.record(user_id=7, answer="FAKE", **answer) is True, "the second answer replaces the first"
    assert await feedback_b.record(user_id=8, answer="REAL", **answer) is False
    records = await feedback_a.all()
    assert [(r.user_id, r.answer, r.p_fake, r.chat_id) for r in records] == [(7, "FAKE", 0.97, -1001),
                                                                            (8, "REAL", 0.97, -1001)]  # fmt: skip
    summary = await feedback_b.summary()
    assert summary.count == 2 and summary.confident == {"FAKE": (2, 1), "REAL": (0, 0)}
    with pytest.raises(ValueError, match="answer"):
        await feedback_a.record(user_id=9, answer="MAYBE", **answer)


async def test_an_unreachable_redis_is_a_clear_configuration_error():
    with pytest.raises(ConfigError, match="cannot reach Redis at 127.0.0.1:1") as raised:
        await open_redis_stores("redis://:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in str(raised.value)


def album_part(message_id: int) -> Message:
    photo = PhotoSize(file_id=f"photo-{message_id}", file_unique_id=f"u{message_id}", width=1280, height=960)
    return Message(
        message_id=message_id,
        date=datetime(2026, 11, 27, 12, 0, 0),
        chat=Chat(id=5, type="private"),
        from_user=User(id=5, is_bot=False, first_name="Ann", language_code="ru"),
        media_group_id="group-1",
        photo=[photo],
    )


async def test_an_album_split_between_replicas_is_answered_once_with_every_part(redis):
    replica_a, replica_b = RedisAlbums(redis), RedisAlbums(redis)

    async def arrive(collector, message_id, delay):
        await asyncio.sleep(delay)
        return await collector.collect(album_part(message_id), quiet_seconds=0.3)

    results = await asyncio.gather(
        arrive(replica_a, 11, 0.0), arrive(replica_b, 12, 0.05), arrive(replica_a, 13, 0.1), arrive(replica_b, 14, 0.15)
    )
    leaders = [parts for parts in results if parts is not None]
    assert len(leaders) == 1, "one replica answers for the album"
    assert sorted(part.message_id for part in leaders[0]) == [11, 12, 13, 14]
    assert leaders[0][1].photo[0].file_id == "photo-12" and leaders[0][1].from_user.language_code == "ru"
    assert await redis.keys("aid:album:*") == [], "nothing left behind"
    late = await replica_b.collect(album_part(15), quiet_seconds=0.1)
    assert [part.message_id for part in late] == [15], "a part arriving after the album was answered is not lost"
