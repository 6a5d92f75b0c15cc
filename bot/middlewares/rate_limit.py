"""Fair use: at most N pictures per user per minute, and at most M per group chat, so that a flood in one group
cannot starve the other chats. The excess is dropped, not queued: the first picture over a limit gets one polite
answer saying how long to wait (none for pictures nobody asked about, in a group's auto mode), the rest of that
minute's excess gets nothing. An anonymous admin or a channel posting in a group is counted by its chat: the user
Telegram fills in for them is one stand-in account shared by every group.

The counting lives in a limiter (``data["limiter"]``): ``MemoryRateLimiter`` for one process,
``bot.redis_state.RedisRateLimiter`` when replicas share Redis. Keys are ``user:<id>`` and ``chat:<id>``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiogram import BaseMiddleware
from aiogram.dispatcher.flags import get_flag
from aiogram.types import Message

from bot import texts
from bot.members import is_group
from bot.replies import reply_quietly

WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class Decision:
    """Whether a picture may go ahead; if not, how long to wait and whether to say so (once per window)."""

    allowed: bool
    wait_seconds: int = 0
    warn: bool = False


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int) -> Decision: ...


class MemoryRateLimiter:
    """A sliding one-minute window per key (a user or a chat), in this process's memory."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._sent: dict[str, deque[float]] = {}
        self._warned_until: dict[str, float] = {}

    async def hit(self, key: str, limit: int) -> Decision:
        now = self.clock()
        sent = self._sent.setdefault(key, deque())
        while sent and sent[0] <= now - WINDOW_SECONDS:
            sent.popleft()
        if len(sent) >= limit:
            wait = max(1, math.ceil(sent[0] + WINDOW_SECONDS - now))
            warn = self._warned_until.get(key, 0.0) <= now  # one answer per window, not one per picture
            if warn:
                self._warned_until[key] = now + wait
            return Decision(False, wait, warn)
        sent.append(now)
        if len(self._sent) > 10_000:  # forget users who went quiet, so memory stays bounded
            for quiet in [old for old, times in self._sent.items() if not times or times[-1] <= now - WINDOW_SECONDS]:
                self._sent.pop(quiet, None)
                self._warned_until.pop(quiet, None)
        return Decision(True)


class RateLimitMiddleware(BaseMiddleware):
    """Asks ``data["limiter"]`` before a picture goes on: per user (``Config.rate_per_minute``), then per group
    chat (``Config.rate_per_chat_minute``). Handlers flagged ``quiet`` (pictures nobody asked about) are dropped
    silently when over a limit."""

    async def __call__(
        self,
        handler: Callable[[Message, dict[str, Any]], Awaitable[Any]],
        event: Message,
        data: dict[str, Any],
    ) -> Any:
        limiter, config = data["limiter"], data["config"]
        group = is_group(event.chat)
        checks = []
        if event.sender_chat is not None:  # an anonymous admin or a channel: Telegram's stand-in user is shared
            checks.append((f"sender:{event.sender_chat.id}", config.rate_per_minute, texts.slow_down))
        elif event.from_user is not None:
            checks.append((f"user:{event.from_user.id}", config.rate_per_minute, texts.slow_down))
        if group:
            checks.append((f"chat:{event.chat.id}", config.rate_per_chat_minute, texts.chat_slow_down))
        for key, limit, say in checks:
            decision = await limiter.hit(key, limit)
            if decision.allowed:
                continue
            if decision.warn and not get_flag(data, "quiet"):
                if group:
                    await reply_quietly(event, say(decision.wait_seconds))
                else:
                    await event.answer(say(decision.wait_seconds))
            return None
        return await handler(event, data)
