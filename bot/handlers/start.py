"""/start and /help: in a private chat what the bot does; in a group how to ask it there."""

from aiogram import Bot, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot import texts
from bot.config import Config
from bot.members import is_group
from bot.middlewares.rate_limit import RateLimitMiddleware
from bot.replies import reply_quietly


async def _handle(bot: Bot) -> str:
    me = await bot.me()
    return me.username or me.first_name


async def on_start(message: Message, bot: Bot) -> None:
    if is_group(message.chat):
        await reply_quietly(message, texts.group_howto(await _handle(bot)))
        return
    await message.answer(texts.greeting())


async def on_help(message: Message, bot: Bot, config: Config) -> None:
    text = texts.help_text(config.feedback)
    if is_group(message.chat):
        text = texts.group_howto(await _handle(bot)) + "\n\n" + text
        await reply_quietly(message, text)
        return
    await message.answer(text, disable_web_page_preview=True)


def build_router() -> Router:
    router = Router(name="start")
    router.message.middleware(RateLimitMiddleware())  # a flood of /help in a group is cut like one of pictures
    router.message.register(on_start, CommandStart())
    router.message.register(on_help, Command("help"))
    return router
