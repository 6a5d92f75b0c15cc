"""Everything that is not a picture gets a short answer saying what the bot accepts; nothing is ignored."""

from aiogram import F, Router
from aiogram.types import Message

from bot import texts


def kind_of(message: Message) -> str:
    """What a message carries, in the words of ``texts.unsupported``."""
    for kind in ("sticker", "animation", "video", "voice", "audio"):
        if getattr(message, kind) is not None:
            return kind
    if message.video_note is not None:
        return "video"
    return "text" if message.text is not None else "file"


async def on_anything_else(message: Message) -> None:
    await message.answer(texts.unsupported(kind_of(message)))


def build_router() -> Router:
    router = Router(name="other")
    router.message.register(on_anything_else, F.chat.type == "private")  # in groups, only pictures get answers
    return router
