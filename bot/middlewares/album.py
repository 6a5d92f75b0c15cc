"""Albums arrive as one message per picture; hand the handler the whole album once, so it answers once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message

# Telegram sends an album's messages within a fraction of a second of each other.
QUIET_SECONDS = 0.8


class AlbumMiddleware(BaseMiddleware):
    """The first message of a media group waits until no more parts arrive, then carries them all as data["album"]."""

    def __init__(self, quiet_seconds: float = QUIET_SECONDS) -> None:
        self.quiet_seconds = quiet_seconds
        self._albums: dict[tuple[int, str], list[Message]] = {}

    async def __call__(
        self,
        handler: Callable[[Message, dict[str, Any]], Awaitable[Any]],
        event: Message,
        data: dict[str, Any],
    ) -> Any:
        if not event.media_group_id:
            return await handler(event, data)
        key = (event.chat.id, event.media_group_id)
        if key in self._albums:
            self._albums[key].append(event)
            return None
        parts = self._albums[key] = [event]
        try:
            while True:
                seen = len(parts)
                await asyncio.sleep(self.quiet_seconds)
                if len(parts) == seen:
                    break
        finally:
            self._albums.pop(key, None)
        data["album"] = sorted(parts, key=lambda message: message.message_id)
        return await handler(event, data)
