"""Fair use: at most N pictures per user per minute; the first one over gets a polite answer, the rest are dropped.

The counting lives in a limiter (``data["limiter"]``): ``MemoryRateLimiter`` for one process,
``bot.redis_state.RedisRateLimiter`` when replicas share Redis.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiogram import BaseMiddleware
from aiogram.types import Message

from bot import texts

WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class Decision:
    """Whether a picture may go ahead; if not, how long to wait and whether to say so (once per window)."""

    allowed: bool
    wait_seconds: int = 0
    warn: bool = False


class RateLimiter(Protocol):
    async def hit(self, user_id: int, limit: int) -> Decision: ...


class MemoryRateLimiter:
    """A sliding one-minute window per user, in this process's memory."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._sent: dict[int, deque[float]] = {}
        self._warned_until: dict[int, float] = {}

    async def hit(self, user_id: int, limit: int) -> Decision:
        now = self.clock()
        sent = self._sent.setdefault(user_id, deque())
        while sent and sent[0] <= now - WINDOW_SECONDS:
            sent.popleft()
        if len(sent) >= limit:
            wait = max(1, math.ceil(sent[0] + WINDOW_SECONDS - now))
            warn = self._warned_until.get(user_id, 0.0) <= now  # one answer per window, not one per picture
            if warn:
                self._warned_until[user_id] = now + wait
            return Decision(False, wait, warn)
        sent.append(now)
        if len(self._sent) > 10_000:  # forget users who went quiet, so memory stays bounded
            for quiet in [uid for uid, times in self._sent.items() if not times or times[-1] <= now - WINDOW_SECONDS]:
                self._sent.pop(quiet, None)
                self._warned_until.pop(quiet, None)
        return Decision(True)


class RateLimitMiddleware(BaseMiddleware):
    """Asks ``data["limiter"]`` before a picture goes on; the limit is ``Config.rate_per_minute``."""

    async def __call__(
        self,
        handler: Callable[[Message, dict[str, Any]], Awaitable[Any]],
        event: Message,
        data: dict[str, Any],
    ) -> Any:
        user = event.from_user
        if user is None:
            return await handler(event, data)
        decision = await data["limiter"].hit(user.id, data["config"].rate_per_minute)
        if decision.allowed:
            return await handler(event, data)
        if decision.warn:
            await event.answer(texts.slow_down(decision.wait_seconds))
        return None
