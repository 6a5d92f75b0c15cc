"""Commands for the people who run the bot (ADMIN_IDS)."""

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot import texts
from bot.config import Config


async def on_stats(message: Message, config: Config, verdicts, analyst, feedback) -> None:
    if message.from_user is None or message.from_user.id not in config.admin_ids:
        await message.answer(texts.admins_only())
        return
    summary = await feedback.summary() if config.feedback else None
    await message.answer(texts.stats(await verdicts.count(), analyst.pending, analyst.queue_limit, summary))


def build_router() -> Router:
    router = Router(name="admin")
    router.message.register(on_stats, Command("stats"))
    return router
