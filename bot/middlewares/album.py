"""Albums arrive as one message per picture; hand the handler the whole album once, so it answers once.

Who gathers the parts is a collector: ``MemoryAlbums`` in one process, ``bot.redis_state.RedisAlbums`` when
replicas share Redis (an album's parts may then reach different replicas).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiogram import BaseMiddleware
from aiogram.types import Message

# Telegram sends an album's messages within a fraction of a second of each other.
QUIET_SECONDS = 0.8


class AlbumCollector(Protocol):
    async def collect(self, event: Message, quiet_seconds: float) -> list[Message] | None:
        """All parts of ``event``'s album once no more arrive, to exactly one caller; None to the others."""


class MemoryAlbums:
    """The first part to arrive waits until the album is quiet; later parts join it."""

    def __init__(self) -> None:
        self._albums: dict[tuple[int, str], list[Message]] = {}

    async def collect(self, event: Message, quiet_seconds: float) -> list[Message] | None:
        key = (event.chat.id, event.media_group_id)
        if key in self._albums:
            self._albums[key].append(event)
            return None
        parts = self._albums[key] = [event]
        try:
            while True:
                seen = len(parts)
                await asyncio.sleep(quiet_seconds)
                if len(parts) == seen:
                    return parts
        finally:
            self._albums.pop(key, None)


class AlbumMiddleware(BaseMiddleware):
    """An outer message middleware: the leading part carries the album, sorted, as ``data["album"]``."""

    def __init__(self, collector: AlbumCollector, quiet_seconds: float = QUIET_SECONDS) -> None:
        self.collector = collector
        self.quiet_seconds = quiet_seconds

    async def __call__(
        self,
        handler: Callable[[Message, dict[str, Any]], Awaitable[Any]],
        event: Message,
        data: dict[str, Any],
    ) -> Any:
        if not event.media_group_id:
            return await handler(event, data)
        parts = await self.collector.collect(event, self.quiet_seconds)
        if parts is None:
            return None
        data["album"] = sorted(parts, key=lambda message: message.message_id)
        # The part with a caption speaks for the album (a /check or a mention may be on any part).
        speaker = next((part for part in data["album"] if part.caption), event)
        return await handler(speaker, data)
