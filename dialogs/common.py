"""What the verdict dialogs share: the Why? answer, the Help window and button labels."""

from __future__ import annotations

import logging
from collections import OrderedDict

from aiogram import Bot
from aiogram.fsm.state import State
from aiogram.types import BufferedInputFile, CallbackQuery
from aiogram.utils.chat_action import ChatActionSender
from aiogram_dialog import DialogManager, ShowMode, Window
from aiogram_dialog.manager.message_manager import MessageManager
from aiogram_dialog.widgets.kbd import SwitchTo
from aiogram_dialog.widgets.text import Format

from bot import texts
from bot.analysis import Busy, ImageRejected
from bot.downloads import Gone, TooBig, fetch

log = logging.getLogger(__name__)

# Button presses our handlers answered themselves (a toast, or at once before slow work), newest last.
_answered: OrderedDict[str, None] = OrderedDict()
_ANSWERED_KEPT = 1024


async def answer(callback: CallbackQuery, text: str | None = None, show_alert: bool = False) -> None:
    """Answer a button press now; aiogram-dialog will then not answer it a second time."""
    _answered[callback.id] = None
    while len(_answered) > _ANSWERED_KEPT:
        _answered.popitem(last=False)
    await callback.answer(text, show_alert=show_alert)


class AnswerOnceMessageManager(MessageManager):
    """aiogram-dialog answers every press after its handler; Telegram refuses a second answer to the same press."""

    async def answer_callback(self, bot: Bot, callback_query: CallbackQuery) -> None:
        if _answered.pop(callback_query.id, 0) is None:
            return
        await super().answer_callback(bot, callback_query)


async def labels_getter(**_kwargs) -> dict:
    return {
        "why": texts.button_why(),
        "help": texts.button_help(),
        "back": texts.button_back(),
        "new": texts.button_new(),
        "help_text": texts.help_text(),
    }


def help_window(state: State, back_to: State) -> Window:
    return Window(
        Format("{help_text}"),
        SwitchTo(Format("{back}"), id="back", state=back_to),
        state=state,
        getter=labels_getter,
    )


async def on_new_check(callback: CallbackQuery, _button, manager: DialogManager) -> None:
    manager.show_mode = ShowMode.NO_UPDATE  # the verdict and its buttons stay as they are
    await answer(callback, texts.send_another())


async def send_why(callback: CallbackQuery, manager: DialogManager, verdict_id: int) -> None:
    """Send the heatmap of one of the user's verdicts below it (uploaded once, then resent by file_id)."""
    manager.show_mode = ShowMode.NO_UPDATE
    data = manager.middleware_data
    bot: Bot = data["bot"]
    verdicts, analyst = data["verdicts"], data["analyst"]
    record = await verdicts.get(callback.from_user.id, verdict_id)
    if record is None:
        await answer(callback, texts.too_old(), show_alert=True)
        return
    await answer(callback)  # at once: the heatmap takes a moment
    caption = texts.overlay_caption(record.verdict, record.p_fake)
    chat_id = callback.message.chat.id if callback.message else record.chat_id
    if record.overlay_file_id:
        await bot.send_photo(chat_id, record.overlay_file_id, caption=caption)
        return
    try:
        async with ChatActionSender.upload_photo(bot=bot, chat_id=chat_id):
            explanation = await analyst.explain(await fetch(bot, record.file_id))
    except Busy:
        await bot.send_message(chat_id, texts.busy())
        return
    except (Gone, TooBig):
        await bot.send_message(chat_id, texts.gone())
        return
    except ImageRejected as error:  # it was judged before, so this is unexpected: say so plainly
        await bot.send_message(chat_id, texts.rejected(texts.reason(error)))
        return
    overlay = BufferedInputFile(explanation.overlay, filename=f"why-{verdict_id}.jpg")
    sent = await bot.send_photo(chat_id, overlay, caption=caption)
    if sent.photo:
        await verdicts.set_overlay(callback.from_user.id, verdict_id, sent.photo[-1].file_id)
