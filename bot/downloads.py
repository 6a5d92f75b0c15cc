"""Getting a picture's bytes from Telegram by file_id, in memory only (nothing is written to disk)."""

from __future__ import annotations

import io

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest

# The Bot API lets bots download files of at most 20 MB.
MAX_DOWNLOAD_BYTES = 20 * 2**20


class Gone(Exception):
    """Telegram no longer serves this file (or never did for this bot)."""


class TooBig(Exception):
    """The file is over the Bot API's download limit; ``size`` in bytes when Telegram said it."""

    def __init__(self, size: int | None = None) -> None:
        super().__init__(f"file of {size} bytes is over the download limit")
        self.size = size


async def fetch(bot: Bot, file_id: str) -> bytes:
    """The file's bytes.

    Raises:
        Gone: the file_id is unknown to Telegram.
        TooBig: the file is over the download limit.
    """
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
