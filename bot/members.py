"""Who may do what in a group: administrators and members, asked with getChatMember and cached briefly.

Telegram has no push for "this user became an admin", so answers are cached for ``ttl`` seconds (one minute by
default): a demoted admin keeps /auto for at most that long, and a burst of button presses costs one request.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import Chat, Message

ADMIN_STATUSES = frozenset({"creator", "administrator"})
MEMBER_STATUSES = frozenset({"creator", "administrator", "member"})
GROUP_TYPES = frozenset({"group", "supergroup"})
CACHE_LIMIT = 10_000


def is_group(chat: Chat | None) -> bool:
    return chat is not None and chat.type in GROUP_TYPES


class ChatMembers:
    """getChatMember answers, cached per (chat, user) for ``ttl`` seconds."""

    def __init__(self, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self._known: dict[tuple[int, int], tuple[float, str, bool]] = {}

    async def _lookup(self, bot: Bot, chat_id: int, user_id: int) -> tuple[str, bool]:
        now = self.clock()
        cached = self._known.get((chat_id, user_id))
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        try:
            member = await bot.get_chat_member(chat_id, user_id)
            status, restricted_member = member.status, bool(getattr(member, "is_member", False))
        except TelegramBadRequest:  # "user not found", "chat not found": not a member, as far as we can tell
            status, restricted_member = "left", False
        if len(self._known) >= CACHE_LIMIT:
            self._known = {key: value for key, value in self._known.items() if value[0] > now}
        self._known[(chat_id, user_id)] = (now + self.ttl, status, restricted_member)
        return status, restricted_member

    async def is_admin(self, bot: Bot, message: Message) -> bool:
        """Whether the sender of ``message`` administers its chat (an anonymous admin speaks as the chat)."""
        if message.sender_chat is not None and message.sender_chat.id == message.chat.id:
            return True
        if message.from_user is None:
            return False
        status, _restricted_member = await self._lookup(bot, message.chat.id, message.from_user.id)
        return status in ADMIN_STATUSES

    async def is_member(self, bot: Bot, chat_id: int, user_id: int) -> bool:
        """Whether the user belongs to the chat (a restricted user who is still in it counts)."""
        status, restricted_member = await self._lookup(bot, chat_id, user_id)
        return status in MEMBER_STATUSES or (status == "restricted" and restricted_member)

    async def bot_is_admin(self, bot: Bot, chat_id: int) -> bool:
        status, _restricted_member = await self._lookup(bot, chat_id, bot.id)
        return status in ADMIN_STATUSES


class OncePerChat:
    """Lets one refusal per chat through per ``seconds``, so a busy group is not answered again and again."""

    def __init__(self, seconds: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.clock = seconds, clock
        self._until: dict[int, float] = {}

    def allow(self, chat_id: int) -> bool:
        now = self.clock()
        if self._until.get(chat_id, 0.0) > now:
            return False
        if len(self._until) >= CACHE_LIMIT:
            self._until = {chat: until for chat, until in self._until.items() if until > now}
        self._until[chat_id] = now + self.seconds
        return True
