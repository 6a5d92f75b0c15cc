"""Buttons under a verdict work for the people of that chat and for nobody else.

In a group: its members. Telegram delivers a press from anyone who can see the message, and in a public group that
includes people who never joined it; their presses get a short alert instead of the verdict's dialog. In a private
chat: that chat's user only (a press from anyone else can only be forged).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery

from bot import texts
from bot.members import is_group


class MembersOnlyMiddleware(BaseMiddleware):
    """An outer callback-query middleware, registered before aiogram-dialog's."""

    async def __call__(
        self,
        handler: Callable[[CallbackQuery, dict[str, Any]], Awaitable[Any]],
        event: CallbackQuery,
        data: dict[str, Any],
    ) -> Any:
        chat = event.message.chat if event.message is not None else None
        if chat is None:
            allowed = True
        elif is_group(chat):
            allowed = await data["members"].is_member(data["bot"], chat.id, event.from_user.id)
        else:
            allowed = chat.type != "private" or chat.id == event.from_user.id
        if not allowed:
            await event.answer(texts.members_only(), show_alert=True)
            return None
        return await handler(event, data)
