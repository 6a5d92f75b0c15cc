"""Long polling that confirms an update to Telegram only after it is journaled (see ``bot.journal``).

aiogram's own polling asks for the next batch while the last one is still being handled, which confirms it:
a crash then loses those pictures. This loop hands each batch to the ``Feeder``, which writes it to disk,
and only then asks for more. On start it first resumes after the newest update the journal has seen.
"""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot
from aiogram.utils.backoff import Backoff, BackoffConfig

from bot.journal import Feeder

log = logging.getLogger(__name__)

BACKOFF = BackoffConfig(min_delay=1.0, max_delay=30.0, factor=1.6, jitter=0.1)


async def poll(bot: Bot, feeder: Feeder, allowed_updates: list[str], stop: asyncio.Event, timeout: int = 20) -> None:
    """Take updates until ``stop`` is set; Telegram errors and lost connections are retried with back-off."""
    offset = None
    if feeder.journal is not None:
        last = await feeder.journal.last_update_id()
        offset = None if last is None else last + 1
    backoff = Backoff(BACKOFF)
    stopping = asyncio.ensure_future(stop.wait())
    failed = False
    try:
        while not stop.is_set():
            request = asyncio.ensure_future(
                bot.get_updates(
                    offset=offset,
                    timeout=timeout,
                    allowed_updates=allowed_updates,
                    request_timeout=timeout + int(bot.session.timeout),
                )
            )
            await asyncio.wait({request, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not request.done():
                request.cancel()  # nothing it would have returned is confirmed: the next start gets it again
                break
            try:
                updates = request.result()
            except Exception as error:  # noqa: BLE001 - Telegram down, network gone: wait and ask again
                failed = True
                delay = next(backoff)
                log.warning("getUpdates failed (%s: %s); again in %.1f s", type(error).__name__, error, delay)
                await asyncio.wait({stopping}, timeout=delay)
                continue
            if failed:
                log.info("getUpdates works again")
                backoff.reset()
                failed = False
            if updates:
                await feeder.take(updates)
                offset = updates[-1].update_id + 1
    finally:
        stopping.cancel()
