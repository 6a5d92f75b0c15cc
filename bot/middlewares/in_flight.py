"""Track updates being handled, so that shutdown can let them finish before the process exits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject

log = logging.getLogger(__name__)


class InFlightMiddleware(BaseMiddleware):
    """An outer update middleware: counts what is in progress; ``drain`` waits for it."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    @property
    def count(self) -> int:
        return len(self._tasks)

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            return await handler(event, data)
        finally:
            self._tasks.discard(task)

    async def drain(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for updates in progress; returns how many were still unfinished.

        An update can start follow-up work as it ends (aiogram-dialog shows a new verdict from a task of its own),
        so this waits until nothing is in flight, not only for what was in flight when it was called.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        current = asyncio.current_task()
        announced = False
        while True:
            await asyncio.sleep(0.05)  # let work scheduled by finishing handlers begin
            pending = {task for task in self._tasks if task is not current and not task.done()}
            if not pending:
                return 0
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("dropping %d answers still unfinished after %.0f s", len(pending), timeout)
                return len(pending)
            if not announced:
                log.info("finishing %d answers in progress (up to %.0f s)", len(pending), timeout)
                announced = True
            await asyncio.wait(pending, timeout=remaining)
