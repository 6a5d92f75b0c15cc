"""Where the bot keeps what must outlive an update: dialog state, verdict records, rate-limit counts
and the parts of albums being gathered.

Two back ends, chosen by configuration:
  * one process (the default): SQLite files under ``DATA_DIR`` and counts in memory;
  * several replicas (``REDIS_URL`` set): all three in Redis, see ``bot.redis_state``.
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
    albums: AlbumCollector = field(default_factory=MemoryAlbums)
    events_isolation: BaseEventIsolation | None = None  # None: aiogram-dialog's lock within this process
    shared: bool = False  # True when other replicas use the same stores

    async def close(self) -> None:
        close = self.verdicts.close()
        if close is not None:
            await close
        await self.storage.close()
        if self.events_isolation is not None:
            await self.events_isolation.close()


async def open_stores(config: Config) -> Stores:
    if config.redis_url:
        from bot.redis_state import open_redis_stores

        return await open_redis_stores(config.redis_url)
    from bot.storage import SQLiteStorage
    from bot.verdicts import VerdictStore

    config.data_dir.mkdir(parents=True, exist_ok=True)
    return Stores(
        storage=SQLiteStorage(config.data_dir / "dialogs.sqlite3"),
        verdicts=VerdictStore(config.data_dir / "verdicts.sqlite3"),
        limiter=MemoryRateLimiter(),
    )
