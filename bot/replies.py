"""Answering a message in place, as a group needs (the answer quotes what it is about)."""

from __future__ import annotations

from aiogram.types import Message, ReplyParameters


async def reply_quietly(message: Message, text: str) -> Message:
    """Reply to ``message``; if it was deleted meanwhile, the answer still goes out, without the quote."""
    return await message.answer(
        text, reply_parameters=ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)
    )
