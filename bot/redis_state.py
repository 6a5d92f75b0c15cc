"""The bot's state in Redis, shared by several replicas (``REDIS_URL``).

* dialog state: aiogram's ``RedisStorage`` (aiogram-dialog stacks and contexts are FSM data there), with
  ``RedisEventIsolation`` so that two replicas never handle the same chat's dialog at once;
* verdict records: one hash per verdict, keyed by chat and id, so any replica can answer "Why?" for a
  verdict another replica gave, and nobody can read a verdict given in another chat;
* chat settings (auto mode) and users' feedback, kept without expiry;
* albums: the parts are gathered in a list per album, whichever replica they reach, and the replica that
  got the first part answers for all;
* rate limits: one sliding window per user and per group chat, counted by a Lua script on the Redis server's
  own clock, so all replicas count together.

Keys start with ``aid:`` ("AI detector"); records expire after ``RETENTION_SECONDS``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from aiogram.fsm.storage.base import DefaultKeyBuilder
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from aiogram.types import Message
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.config import ConfigError
from bot.feedback import FeedbackRecord, FeedbackSummary, checked, summarize
from bot.middlewares.rate_limit import WINDOW_SECONDS, Decision
from bot.verdicts import VerdictRecord, checked_fields

PREFIX = "aid"
RETENTION_SECONDS = 180 * 24 * 3600  # a verdict's buttons work for half a year
RECENT_KEPT = 100  # per chat, for recent()


async def connect(url: str) -> Redis:
    """A checked connection to Redis.

    Raises:
        ConfigError: Redis cannot be reached (the message never holds the password).
    """
    redis = Redis.from_url(url)
    try:
        await redis.ping()
    except (RedisError, OSError) as error:
        await redis.aclose()
        where = redis.connection_pool.connection_kwargs
        place = where.get("path") or f"{where.get('host')}:{where.get('port')}"
        raise ConfigError(f"cannot reach Redis at {place} (REDIS_URL): {type(error).__name__}") from None
    return redis


async def open_redis_stores(url: str) -> dict[str, Any]:
    """Connect and check Redis; the parts of ``bot.stores.Stores`` that live there, by field name.

    Raises:
        ConfigError: Redis cannot be reached (the message never holds the password).
    """
    redis = await connect(url)
    keys = DefaultKeyBuilder(prefix=f"{PREFIX}:fsm", with_destiny=True)  # aiogram-dialog needs destinies
    return {
        "storage": RedisStorage(redis, key_builder=keys),
        "verdicts": RedisVerdictStore(redis),
        "limiter": RedisRateLimiter(redis),
        "albums": RedisAlbums(redis),
        "chat_settings": RedisChatSettings(redis),
        "feedback": RedisFeedbackStore(redis),
        "events_isolation": RedisEventIsolation(redis, key_builder=keys),
        "shared": True,
    }


def _record_key(chat_id: int, verdict_id: int) -> str:
    return f"{PREFIX}:verdict:{int(chat_id)}:{int(verdict_id)}"


def _decode(values: Mapping[bytes, bytes]) -> VerdictRecord:
    field = {key.decode(): value.decode() for key, value in values.items()}
    return VerdictRecord(
        id=int(field["id"]),
        user_id=int(field["user_id"]),
        chat_id=int(field["chat_id"]),
        file_id=field["file_id"],
        file_unique_id=field["file_unique_id"],
        kind=field["kind"],
        file_name=field.get("file_name") or None,
        p_fake=float(field["p_fake"]),
        verdict=field["verdict"],
        member_p_fake=json.loads(field["member_p_fake"]),
        evidence=json.loads(field["evidence"]),
        overlay_file_id=field.get("overlay_file_id") or None,
        created_at=float(field["created_at"]),
    )


# Set the overlay only on a record that still exists (HSET would otherwise create a stray half record).
_SET_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'overlay_file_id', ARGV[1])
  return 1
end
return 0
"""


class RedisVerdictStore:
    """``bot.verdicts.VerdictStore``'s interface, in Redis."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._set_if_exists = redis.register_script(_SET_IF_EXISTS)

    async def add(
        self,
        *,
        user_id: int,
        chat_id: int,
        file_id: str,
        file_unique_id: str,
        kind: str,
        file_name: str | None,
        p_fake: float,
        verdict: str,
        member_p_fake: Mapping[str, float],
        evidence: Iterable[str] = (),
    ) -> VerdictRecord:
        p_fake, members, lines = checked_fields(kind, verdict, p_fake, member_p_fake, evidence)
        verdict_id = int(await self.redis.incr(f"{PREFIX}:verdict:next"))
        record = VerdictRecord(
            verdict_id, user_id, chat_id, file_id, file_unique_id, kind, file_name, p_fake, verdict,
            members, lines, None, time.time(),
        )  # fmt: skip
        key, recent = _record_key(chat_id, verdict_id), f"{PREFIX}:recent:{int(chat_id)}"
        mapping: dict[str, Any] = {
            "id": verdict_id,
            "user_id": user_id,
            "chat_id": chat_id,
            "file_id": file_id,
            "file_unique_id": file_unique_id,
            "kind": kind,
            "file_name": file_name or "",
            "p_fake": repr(p_fake),
            "verdict": verdict,
            "member_p_fake": json.dumps(members),
            "evidence": json.dumps(lines, ensure_ascii=False),
            "created_at": repr(record.created_at),
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, RETENTION_SECONDS)
            pipe.zadd(recent, {str(verdict_id): verdict_id})
            pipe.zremrangebyrank(recent, 0, -RECENT_KEPT - 1)
            pipe.expire(recent, RETENTION_SECONDS)
            await pipe.execute()
        return record

    async def get(self, chat_id: int, verdict_id: int) -> VerdictRecord | None:
        values = await self.redis.hgetall(_record_key(chat_id, verdict_id))
        return _decode(values) if values else None

    async def set_overlay(self, chat_id: int, verdict_id: int, file_id: str) -> bool:
        return bool(await self._set_if_exists(keys=[_record_key(chat_id, verdict_id)], args=[file_id]))

    async def recent(self, chat_id: int, limit: int = 10) -> list[VerdictRecord]:
        ids = await self.redis.zrevrange(f"{PREFIX}:recent:{int(chat_id)}", 0, max(0, limit - 1))
        records = [await self.get(chat_id, int(verdict_id)) for verdict_id in ids]
        return [record for record in records if record is not None]

    async def count(self) -> int:
        """Verdicts given so far (by every replica)."""
        return int(await self.redis.get(f"{PREFIX}:verdict:next") or 0)

    def close(self) -> None:
        """The connection belongs to the FSM storage, which closes it."""


# A sliding window on the Redis server's clock: replicas with skewed clocks still count the same minute.
_SLIDING_WINDOW = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window_ms = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window_ms)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window_ms)
  return {1, 0, 0}
end
local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
local wait_ms = math.max(1, oldest + window_ms - now_ms)
local warn = redis.call('SET', KEYS[2], '1', 'PX', wait_ms, 'NX')
return {0, wait_ms, warn and 1 or 0}
"""


class RedisRateLimiter:
    """``MemoryRateLimiter``'s rule, counted in Redis for every replica together."""

    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(_SLIDING_WINDOW)

    async def hit(self, key: str, limit: int) -> Decision:
        keys = [f"{PREFIX}:rate:{key}", f"{PREFIX}:rate-warned:{key}"]
        allowed, wait_ms, warn = await self._script(
            keys=keys, args=[int(WINDOW_SECONDS * 1000), int(limit), uuid.uuid4().hex]
        )
        if allowed:
            return Decision(True)
        return Decision(False, max(1, -(-int(wait_ms) // 1000)), bool(warn))


class RedisChatSettings:
    """``bot.chat_settings.ChatSettingsStore``'s interface, in Redis (no expiry: a setting lasts until changed)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def auto(self, chat_id: int) -> bool:
        return await self.redis.hget(f"{PREFIX}:chat:{int(chat_id)}", "auto") == b"1"

    async def set_auto(self, chat_id: int, on: bool, changed_by: int | None) -> None:
        mapping = {"auto": int(on), "changed_by": "" if changed_by is None else changed_by, "changed_at": time.time()}
        await self.redis.hset(f"{PREFIX}:chat:{int(chat_id)}", mapping=mapping)

    def close(self) -> None:
        """The connection belongs to the FSM storage, which closes it."""


_FEEDBACK_INDEX = f"{PREFIX}:feedback:keys"


class RedisFeedbackStore:
    """``bot.feedback.FeedbackStore``'s interface, in Redis: one hash per (picture, user), listed in one set."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def record(
        self,
        *,
        user_id: int,
        chat_id: int,
        file_id: str,
        file_unique_id: str,
        p_fake: float,
        verdict: str,
        answer: str,
    ) -> bool:
        p_fake = checked(answer, verdict, p_fake)
        key = f"{PREFIX}:feedback:{file_unique_id}:{int(user_id)}"
        record = FeedbackRecord(file_unique_id, int(user_id), int(chat_id), file_id, answer, verdict, p_fake,
                                time.time())  # fmt: skip
        mapping = {name: repr(value) if isinstance(value, float) else value for name, value in vars(record).items()}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.exists(key)
            pipe.hset(key, mapping=mapping)
            pipe.sadd(_FEEDBACK_INDEX, key)
            existed, _fields, _added = await pipe.execute()
        return bool(existed)

    async def all(self) -> list[FeedbackRecord]:
        keys = sorted(await self.redis.smembers(_FEEDBACK_INDEX))
        async with self.redis.pipeline(transaction=False) as pipe:  # one round trip, not one per answer
            for key in keys:
                pipe.hgetall(key)
            hashes = await pipe.execute()
        records = []
        for raw in hashes:
            values = {name.decode(): value.decode() for name, value in raw.items()}
            if values:
                records.append(
                    FeedbackRecord(
                        values["file_unique_id"],
                        int(values["user_id"]),
                        int(values["chat_id"]),
                        values["file_id"],
                        values["answer"],
                        values["verdict"],
                        float(values["p_fake"]),
                        float(values["answered_at"]),
                    )  # fmt: skip
                )
        return sorted(records, key=lambda record: (record.answered_at, record.file_unique_id, record.user_id))

    async def summary(self) -> FeedbackSummary:
        return summarize(await self.all())

    def close(self) -> None:
        """The connection belongs to the FSM storage, which closes it."""


ALBUM_TTL_SECONDS = 120


class RedisAlbums:
    """``MemoryAlbums``'s rule across replicas: parts go to a Redis list, the first part's replica leads."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def collect(self, event: Message, quiet_seconds: float) -> list[Message] | None:
        name = f"{PREFIX}:album:{event.chat.id}:{event.media_group_id}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(f"{name}:parts", event.model_dump_json(exclude_none=True))
            pipe.expire(f"{name}:parts", ALBUM_TTL_SECONDS)
            pipe.set(f"{name}:leader", "1", nx=True, ex=ALBUM_TTL_SECONDS)
            _count, _ttl, leads = await pipe.execute()
        if not leads:
            return None
        while True:
            seen = await self.redis.llen(f"{name}:parts")
            await asyncio.sleep(quiet_seconds)
            if await self.redis.llen(f"{name}:parts") == seen:
                break
        raw_parts = await self.redis.lrange(f"{name}:parts", 0, -1)
        await self.redis.delete(f"{name}:parts", f"{name}:leader")  # a late part starts an album of its own
        parts = [Message.model_validate_json(raw) for raw in raw_parts]
        return [event if part.message_id == event.message_id else part.as_(event.bot) for part in parts]
