"""Photos, image files and albums: judge each picture and show its verdict dialog."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import PurePath

from aiogram import Bot, F, Router
from aiogram.types import Message
from aiogram.utils.chat_action import ChatActionSender
from aiogram_dialog import DialogManager, ShowMode, StartMode

from bot import texts
from bot.analysis import Analyst, Busy, ImageRejected
from bot.downloads import MAX_DOWNLOAD_BYTES, Gone, TooBig, fetch
from bot.handlers.other import kind_of
from bot.middlewares.rate_limit import RateLimitMiddleware
from bot.verdicts import VerdictStore
from dialogs.album import FAILED, VERDICT_IDS
from dialogs.check import VERDICT_ID
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


async def judge(message: Message, picture: Picture, bot: Bot, analyst: Analyst, verdicts: VerdictStore):
    """Download, judge and record one picture.

    Raises:
        Refused: with the answer to give instead of a verdict.
    """
    if picture.size and picture.size > MAX_DOWNLOAD_BYTES:
        raise Refused(texts.too_large(picture.size / 2**20))
    try:
        checked = await analyst.check(await fetch(bot, picture.file_id))
    except TooBig as error:
        size = error.size or picture.size
        raise Refused(texts.too_large(size / 2**20 if size else None)) from None
    except Gone:
        raise Refused(texts.gone()) from None
    except ImageRejected as error:
        raise Refused(texts.rejected(texts.reason(error))) from None
    except Busy:
        raise Refused(texts.busy()) from None
    judgement = checked.judgement
    return await verdicts.add(
        user_id=message.from_user.id,
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


async def on_picture(
    message: Message,
    bot: Bot,
    analyst: Analyst,
    verdicts: VerdictStore,
    dialog_manager: DialogManager,
    album: list[Message] | None = None,
) -> None:
    messages = album or [message]
    pictures = [picture_of(item) for item in messages]
    if len(messages) == 1 and pictures[0] is None:
        await message.answer(texts.unsupported(kind_of(message)))
        return
    records, failed = [], []
    async with ChatActionSender.typing(bot=bot, chat_id=message.chat.id):
        for number, (item, picture) in enumerate(zip(messages, pictures), start=1):
            try:
                if picture is None:
                    raise Refused(texts.unsupported(kind_of(item)))
                records.append(await judge(item, picture, bot, analyst, verdicts))
            except Refused as refusal:
                failed.append((number, str(refusal)))
    if len(messages) == 1:
        if failed:
            await message.answer(failed[0][1])
            return
        start = (Check.verdict, {VERDICT_ID: records[0].id})
    else:
        start = (Album.summary, {VERDICT_IDS: [record.id for record in records], FAILED: failed})
    if not records:
        await message.answer("\n".join(reason for _number, reason in failed))
        return
    # A stack per verdict: the buttons of every earlier verdict keep working.
    await dialog_manager.start(start[0], data=start[1], mode=StartMode.NEW_STACK, show_mode=ShowMode.SEND)


def build_router() -> Router:
    router = Router(name="pictures")
    router.message.middleware(RateLimitMiddleware())
    router.message.register(on_picture, F.photo | F.document)
    return router
