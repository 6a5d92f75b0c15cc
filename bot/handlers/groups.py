"""Asking in a group, and auto mode.

* ``/check`` (or ``/check@<bot>``) in reply to a picture, or a reply that mentions the bot: the verdict goes into the
  chat as a reply to that picture. A picture (or album) whose caption says ``/check`` or mentions the bot counts too.
  ``/check`` with nothing to check gets one line saying how to ask.
* ``/auto on``, ``/auto off``, ``/auto``: auto mode, for the chat's administrators only; anyone else gets a short
  refusal, at most once a minute per chat. Turning it on while the bot cannot see plain messages (BotFather's
  privacy mode on, and not an admin here) says what to change. When a group becomes a supergroup (a new chat
  id), auto mode moves with it; its earlier verdicts' buttons stay with the old id.

Both also work in a private chat where they make sense (``/check`` in reply to a picture).
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, Filter
from aiogram.types import Message
from aiogram_dialog import DialogManager

from bot import texts
from bot.analysis import Analyst
from bot.handlers.pictures import answer_pictures, asker_of, picture_of
from bot.members import GROUP_TYPES, ChatMembers, OncePerChat, is_group
from bot.middlewares.rate_limit import RateLimitMiddleware
from bot.replies import reply_quietly
from bot.verdicts import VerdictStore


class MentionsBot(Filter):
    """The text or caption mentions this bot (``@username``, or a mention by id for bots without a username)."""

    async def __call__(self, message: Message, bot: Bot) -> bool:
        entities = message.entities or message.caption_entities or []
        text = message.text or message.caption or ""
        if not entities:
            return False
        me = await bot.me()
        handle = f"@{me.username}".lower() if me.username else None
        for entity in entities:
            if entity.type == "mention" and handle and entity.extract_from(text).lower() == handle:
                return True
            if entity.type == "text_mention" and entity.user is not None and entity.user.id == me.id:
                return True
        return False


async def on_check(
    message: Message,
    bot: Bot,
    analyst: Analyst,
    verdicts: VerdictStore,
    dialog_manager: DialogManager,
    album: list[Message] | None = None,
) -> None:
    """Check the picture this message carries, or the one it replies to."""
    replied = message.reply_to_message
    if replied is not None and replied.forum_topic_created is not None:
        replied = None  # in a forum topic, a message that replies to nothing "replies" to the topic's first one
    if picture_of(message) is not None:
        targets = album or [message]
    elif replied is not None:
        targets = [replied]
        if picture_of(replied) is None:
            await reply_quietly(message, texts.check_not_a_picture())
            return
    else:
        await reply_quietly(message, texts.check_how())
        return
    group = is_group(message.chat)
    await answer_pictures(targets, asker_of(message), bot, analyst, verdicts, dialog_manager, reply=group)


async def on_auto(
    message: Message, command: CommandObject, bot: Bot, chat_settings, members: ChatMembers, refusals: OncePerChat
) -> None:
    if not is_group(message.chat):
        await message.answer(texts.auto_groups_only())
        return
    if not await members.is_admin(bot, message):
        if refusals.allow(message.chat.id):
            await reply_quietly(message, texts.auto_admins_only())
        return
    argument = (command.args or "").strip().lower()
    if not argument:
        await reply_quietly(message, texts.auto_state(await chat_settings.auto(message.chat.id)))
        return
    if argument not in ("on", "off"):
        await reply_quietly(message, texts.auto_usage())
        return
    on = argument == "on"
    await chat_settings.set_auto(message.chat.id, on, asker_of(message))
    if not on:
        await reply_quietly(message, texts.auto_state(False))
        return
    me = await bot.get_me()  # asked afresh: the owner may have changed privacy mode since the start
    if me.can_read_all_group_messages or await members.bot_is_admin(bot, message.chat.id):
        await reply_quietly(message, texts.auto_state(True))
    else:
        await reply_quietly(message, texts.auto_blind())


async def on_migrated(message: Message, chat_settings) -> None:
    """A group became a supergroup and got a new id: its auto mode moves with it."""
    if await chat_settings.auto(message.chat.id):
        await chat_settings.set_auto(message.migrate_to_chat_id, True, None)


def build_router() -> Router:
    router = Router(name="groups")
    router.message.register(on_migrated, F.migrate_to_chat_id)
    asking = Router(name="asking")
    asking.message.middleware(RateLimitMiddleware())
    asking.message.register(on_auto, Command("auto"))
    asking.message.register(on_check, Command("check"))
    asking.message.register(
        on_check, F.chat.type.in_(GROUP_TYPES), MentionsBot(), F.reply_to_message | F.photo | F.document
    )
    router.include_router(asking)
    return router
