"""Fair use: at most N pictures per user per minute; the first one over gets a polite answer, the rest are dropped."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message

from bot import texts

WINDOW_SECONDS = 60.0


class RateLimitMiddleware(BaseMiddleware):
    """A sliding one-minute window per user; the limit comes from ``Config.rate_per_minute`` (data["config"])."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._sent: dict[int, deque[float]] = {}
        self._warned_until: dict[int, float] = {}

    async def __call__(
        self,
        handler: Callable[[Message, dict[str, Any]], Awaitable[Any]],
        event: Message,
        data: dict[str, Any],
    ) -> Any:
        user = event.from_user
        if user is None:
            return await handler(event, data)
        limit = data["config"].rate_per_minute
        now = self.clock()
        sent = self._sent.setdefault(user.id, deque())
        while sent and sent[0] <= now - WINDOW_SECONDS:
            sent.popleft()
        if len(sent) >= limit:
            wait = max(1, math.ceil(sent[0] + WINDOW_SECONDS - now))
            if self._warned_until.get(user.id, 0.0) <= now:  # one answer per window, not one per picture
                self._warned_until[user.id] = now + wait
                await event.answer(texts.slow_down(wait))
            return None
        sent.append(now)
        if len(self._sent) > 10_000:  # forget users who went quiet, so memory stays bounded
            for quiet in [uid for uid, times in self._sent.items() if not times or times[-1] <= now - WINDOW_SECONDS]:
                self._sent.pop(quiet, None)
                self._warned_until.pop(quiet, None)
        return await handler(event, data)
