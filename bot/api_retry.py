"""Retrying Bot API calls that failed for a passing reason: 429 Too Many Requests, 5xx, timeouts, lost connections.

A request middleware of aiogram's session, so every call the bot makes goes through it. The waits happen in
the task of the update being answered: other users' answers go on meanwhile.

- 429 carries ``retry_after``: wait exactly that (Telegram asks for it), unless it is longer than
  ``max_retry_after``, when waiting would only keep the user longer in the dark: give up.
- 5xx and network errors: wait 0.5 s, 1 s, 2 s, ... (with jitter), at most ``attempts`` tries in all.
- Anything else (400 Bad Request, 403 blocked by the user, ...) will not change by retrying: raised at once.

A call that timed out may have reached Telegram; retrying it can then send a message twice. A duplicate
answer is better than none, so sends are retried too (at-least-once).

``getUpdates`` is left to the polling loop, which has its own back-off.
"""

from __future__ import annotations

import asyncio
import logging
import random

from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.exceptions import (
    TelegramEntityTooLarge,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import GetUpdates

log = logging.getLogger(__name__)


class RetryMiddleware(BaseRequestMiddleware):
    def __init__(self, attempts: int = 5, base_delay: float = 0.5, max_retry_after: float = 60.0) -> None:
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_retry_after = max_retry_after

    async def __call__(self, make_request, bot, method):
        if isinstance(method, GetUpdates):
            return await make_request(bot, method)
        name = type(method).__name__
        for attempt in range(1, self.attempts + 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                if attempt == self.attempts or error.retry_after > self.max_retry_after:
                    raise
                delay = float(error.retry_after)
                log.warning("%s: Telegram asks to wait %d s (429); retry %d", name, error.retry_after, attempt)
            except (TelegramServerError, TelegramNetworkError) as error:
                if attempt == self.attempts or isinstance(error, TelegramEntityTooLarge):
                    raise
                delay = self.base_delay * 2 ** (attempt - 1) * random.uniform(0.8, 1.2)
                log.warning("%s failed (%s); retry %d in %.1f s", name, error.message, attempt, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises
