"""The Telegram bot (``python -m bot``)."""

from bot.aiogram_import import import_aiogram

import_aiogram()
