"""Getting a picture's bytes from Telegram by file_id, in memory only (nothing is written to disk)."""

from __future__ import annotations

import asyncio
import io
import logging

import aiohttp
from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest

log = logging.getLogger(__name__)

# The Bot API lets bots download files of at most 20 MB.
MAX_DOWNLOAD_BYTES = 20 * 2**20
# A download that fails for a passing reason (5xx, 429, a dropped connection, a timeout) is tried this many
# times in all, 0.5 s, 1 s, ... apart. Bot API calls themselves are retried by bot.api_retry.
DOWNLOAD_ATTEMPTS = 3


class Gone(Exception):
    """Telegram no longer serves this file (or never did for this bot)."""


class TooBig(Exception):
    """The file is over the Bot API's download limit; ``size`` in bytes when Telegram said it."""

    def __init__(self, size: int | None = None) -> None:
        super().__init__(f"file of {size} bytes is over the download limit")
        self.size = size


def _passing(error: Exception) -> bool:
    if isinstance(error, aiohttp.ClientResponseError):
        return error.status >= 500 or error.status == 429
    return isinstance(error, (aiohttp.ClientError, TimeoutError))


async def fetch(bot: Bot, file_id: str) -> bytes:
    """The file's bytes.

    Raises:
        Gone: the file_id is unknown to Telegram.
        TooBig: the file is over the download limit.
    """
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            return await _fetch_once(bot, file_id)
        except Exception as error:
            if attempt == DOWNLOAD_ATTEMPTS or not _passing(error):
                raise
            delay = 0.5 * 2 ** (attempt - 1)
            log.warning("download failed (%s); retry %d in %.1f s", type(error).__name__, attempt, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises


async def _fetch_once(bot: Bot, file_id: str) -> bytes:
    try:
        file = await bot.get_file(file_id)
    except TelegramBadRequest as error:
        if "too big" in error.message.lower():
            raise TooBig() from None
        raise Gone(error.message) from None
    if file.file_size and file.file_size > MAX_DOWNLOAD_BYTES:
        raise TooBig(file.file_size)
    buffer = io.BytesIO()
    await bot.download_file(file.file_path, destination=buffer, timeout=60)
    return buffer.getvalue()
