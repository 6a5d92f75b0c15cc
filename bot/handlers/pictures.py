"""Photos, image files and albums: judge each picture and show its verdict dialog.

In a private chat every picture gets a verdict. In a group the bot stays quiet unless asked (``bot.handlers.groups``)
or unless the chat's admins turned auto mode on, and then it speaks only about pictures it judges FAKE.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import PurePath

from aiogram import Bot, F, Router
from aiogram.filters import Filter
from aiogram.types import Message
from aiogram.utils.chat_action import ChatActionSender
from aiogram_dialog import DialogManager

from bot import texts
from bot.analysis import Analyst, Busy, ImageRejected
from bot.downloads import MAX_DOWNLOAD_BYTES, Gone, TooBig, fetch
from bot.handlers.other import kind_of
from bot.members import GROUP_TYPES
from bot.middlewares.rate_limit import RateLimitMiddleware
from bot.replies import reply_quietly
from bot.verdicts import VerdictStore
from dialogs.album import FAILED, VERDICT_IDS
from dialogs.check import VERDICT_ID
from dialogs.common import show_verdict
from dialogs.states import Album, Check

log = logging.getLogger(__name__)

IMAGE_TYPES = {"image/jpeg", "image/png", "image/webp", "image/bmp", "image/x-ms-bmp", "image/tiff", "image/gif"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jfif", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


class Refused(Exception):
    """A picture that gets a one-line answer instead of a verdict; the message is that answer, translated."""


@dataclass(frozen=True)
class Picture:
    file_id: str
    file_unique_id: str
    kind: str  # photo or document
    file_name: str | None
    size: int | None


def picture_of(message: Message) -> Picture | None:
    """The picture a message carries, or None when it carries something else."""
    if message.photo:
        largest = message.photo[-1]
        return Picture(largest.file_id, largest.file_unique_id, "photo", None, largest.file_size)
    document = message.document
    if document is None or message.animation is not None:  # Telegram sends GIFs as animation and document
        return None
    suffix = PurePath(document.file_name or "").suffix.lower()
    if (document.mime_type or "").lower() in IMAGE_TYPES or suffix in IMAGE_SUFFIXES:
        return Picture(document.file_id, document.file_unique_id, "document", document.file_name, document.file_size)
    return None


async def assess(picture: Picture, bot: Bot, analyst: Analyst):
    """Download and judge one picture; returns ``bot.analysis``'s result.

    Raises:
        Refused: with the answer to give instead of a verdict.
    """
    if picture.size and picture.size > MAX_DOWNLOAD_BYTES:
        raise Refused(texts.too_large(picture.size / 2**20))
    try:
        return await analyst.check(await fetch(bot, picture.file_id))
    except TooBig as error:
        size = error.size or picture.size
        raise Refused(texts.too_large(size / 2**20 if size else None)) from None
    except Gone:
        raise Refused(texts.gone()) from None
    except ImageRejected as error:
        raise Refused(texts.rejected(texts.reason(error))) from None
    except Busy:
        raise Refused(texts.busy()) from None


def asker_of(message: Message) -> int:
    """Who sent or asked about a message: the chat it speaks for (an anonymous admin, a channel), else its user."""
    if message.sender_chat is not None:  # Telegram's stand-in user for these is shared by every group
        return message.sender_chat.id
    return message.from_user.id if message.from_user is not None else message.chat.id


async def record(message: Message, asker: int, picture: Picture, checked, verdicts: VerdictStore):
    """Keep the verdict of ``picture`` (carried by ``message``) so that its buttons work later."""
    judgement = checked.judgement
    return await verdicts.add(
        user_id=asker,
        chat_id=message.chat.id,
        file_id=picture.file_id,
        file_unique_id=picture.file_unique_id,
        kind=picture.kind,
        file_name=picture.file_name,
        p_fake=judgement.p_fake,
        verdict=judgement.verdict,
        member_p_fake=judgement.member_p_fake,
        evidence=texts.evidence_entries(checked.evidence),
    )


async def answer_pictures(
    messages: list[Message],
    asker: int,
    bot: Bot,
    analyst: Analyst,
    verdicts: VerdictStore,
    dialog_manager: DialogManager,
    reply: bool,
) -> None:
    """Judge the pictures someone asked about and show one verdict (or one album summary), or say why not.

    ``reply``: the answer quotes the picture (the album's first part), as it must in a group.
    """
    anchor = messages[0]
    pictures = [picture_of(item) for item in messages]

    async def send(text: str) -> None:
        await (reply_quietly(anchor, text) if reply else anchor.answer(text))

    if len(messages) == 1 and pictures[0] is None:
        await send(texts.unsupported(kind_of(anchor)))
        return
    records, failed = [], []
    topic = anchor.message_thread_id if anchor.is_topic_message else None
    async with ChatActionSender.typing(bot=bot, chat_id=anchor.chat.id, message_thread_id=topic):
        for number, (item, picture) in enumerate(zip(messages, pictures), start=1):
            try:
                if picture is None:
                    raise Refused(texts.unsupported(kind_of(item)))
                records.append(await record(item, asker, picture, await assess(picture, bot, analyst), verdicts))
            except Refused as refusal:
                failed.append((number, str(refusal)))
    if not records:
        await send("\n".join(reason for _number, reason in failed))
        return
    if len(messages) == 1:
        start = (Check.verdict, {VERDICT_ID: records[0].id})
    else:
        start = (Album.summary, {VERDICT_IDS: [record.id for record in records], FAILED: failed})
    await show_verdict(dialog_manager, *start, reply_to=anchor.message_id if reply else None)


async def on_picture(
    message: Message,
    bot: Bot,
    analyst: Analyst,
    verdicts: VerdictStore,
    dialog_manager: DialogManager,
    album: list[Message] | None = None,
) -> None:
    """A picture (or album) sent to the bot in a private chat."""
    await answer_pictures(album or [message], asker_of(message), bot, analyst, verdicts, dialog_manager, reply=False)


class AutoModeOn(Filter):
    """A group whose admins turned auto mode on (``/auto on``)."""

    async def __call__(self, message: Message, chat_settings) -> bool:
        return await chat_settings.auto(message.chat.id)


async def on_group_picture(
    message: Message,
    bot: Bot,
    analyst: Analyst,
    verdicts: VerdictStore,
    dialog_manager: DialogManager,
    album: list[Message] | None = None,
) -> None:
    """Auto mode: a picture nobody asked about gets an answer only when it is judged FAKE outside the UNSURE band.

    Nothing is said about REAL or UNSURE pictures, nor about pictures that could not be checked (they are logged).
    """
    for item in album or [message]:
        picture = picture_of(item)
        if picture is None:
            continue
        try:
            checked = await assess(picture, bot, analyst)
            if checked.judgement.verdict != "FAKE":
                continue
            kept = await record(item, asker_of(item), picture, checked, verdicts)
            await show_verdict(dialog_manager, Check.verdict, {VERDICT_ID: kept.id}, reply_to=item.message_id)
        except Refused as refusal:
            log.info("auto mode: picture in chat %s not checked: %s", item.chat.id, refusal)
        except Exception:  # nobody asked: a failure is logged, never announced in the group
            log.exception("auto mode: picture in chat %s failed", item.chat.id)


def build_router() -> Router:
    router = Router(name="pictures")
    router.message.middleware(RateLimitMiddleware())
    router.message.register(on_picture, F.chat.type == "private", F.photo | F.document)
    router.message.register(
        on_group_picture, F.chat.type.in_(GROUP_TYPES), F.photo | F.document, AutoModeOn(), flags={"quiet": True}
    )
    return router
