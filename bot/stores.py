"""Where the bot keeps what must outlive an update: dialog state, verdict records, chat settings, users'
feedback, rate-limit counts and the parts of albums being gathered.

Two back ends, chosen by configuration:
  * one process (the default): SQLite files under ``DATA_DIR`` and counts in memory;
  * several replicas (``REDIS_URL`` set): all of it in Redis, see ``bot.redis_state``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage

from bot.config import Config
from bot.middlewares.album import AlbumCollector, MemoryAlbums
from bot.middlewares.rate_limit import MemoryRateLimiter, RateLimiter


@dataclass
class Stores:
    """The storage the Dispatcher and the handlers share."""

    storage: BaseStorage  # aiogram FSM storage; aiogram-dialog keeps its stacks there
    verdicts: Any  # bot.verdicts.VerdictStore or bot.redis_state.RedisVerdictStore
    limiter: RateLimiter
    chat_settings: Any  # bot.chat_settings.ChatSettingsStore or bot.redis_state.RedisChatSettings
    feedback: Any  # bot.feedback.FeedbackStore or bot.redis_state.RedisFeedbackStore
    albums: AlbumCollector = field(default_factory=MemoryAlbums)
    events_isolation: BaseEventIsolation | None = None  # None: aiogram-dialog's lock within this process
    shared: bool = False  # True when other replicas use the same stores

    async def close(self) -> None:
        for store in (self.verdicts, self.chat_settings, self.feedback):
            store.close()
        await self.storage.close()
        if self.events_isolation is not None:
            await self.events_isolation.close()


async def open_stores(config: Config) -> Stores:
    if config.redis_url:
        from bot.redis_state import open_redis_stores

        return Stores(**await open_redis_stores(config.redis_url))
    from bot.chat_settings import ChatSettingsStore
    from bot.feedback import FeedbackStore
    from bot.storage import SQLiteStorage
    from bot.verdicts import VerdictStore

    config.data_dir.mkdir(parents=True, exist_ok=True)
    return Stores(
        storage=SQLiteStorage(config.data_dir / "dialogs.sqlite3"),
        verdicts=VerdictStore(config.data_dir / "verdicts.sqlite3"),
        limiter=MemoryRateLimiter(),
        chat_settings=ChatSettingsStore(config.data_dir / "chats.sqlite3"),
        feedback=FeedbackStore(config.data_dir / "feedback.sqlite3"),
    )
