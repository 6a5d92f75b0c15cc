"""/start and /help."""

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot import texts


async def on_start(message: Message) -> None:
    await message.answer(texts.greeting())


async def on_help(message: Message) -> None:
    await message.answer(texts.help_text(), disable_web_page_preview=True)


def build_router() -> Router:
    router = Router(name="start")
    router.message.register(on_start, CommandStart())
    router.message.register(on_help, Command("help"))
    return router
