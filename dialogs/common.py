"""What the verdict dialogs share: showing a verdict, the Why? answer, the Help window and button labels.

Verdict dialogs live in the chat (aiogram-dialog keys a new stack by chat), and verdict records are looked up by the
chat of the pressed button, so in a group every member can press Why? and Help under a verdict, and nobody from
another chat can open it (``bot.middlewares.members_only`` turns away presses from outside the group).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from contextvars import ContextVar

from aiogram import Bot
from aiogram.fsm.state import State
from aiogram.types import BufferedInputFile, CallbackQuery, Message, ReplyParameters
from aiogram.utils.chat_action import ChatActionSender
from aiogram_dialog import DialogManager, ShowMode, StartMode, Window
from aiogram_dialog.api.entities import NewMessage, Stack
from aiogram_dialog.manager.message_manager import MessageManager
from aiogram_dialog.widgets.kbd import SwitchTo
from aiogram_dialog.widgets.text import Format

from bot import texts
from bot.analysis import Busy, ImageRejected
from bot.downloads import Gone, TooBig, fetch
from bot.members import is_group

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


# The message a verdict about to be shown quotes. aiogram-dialog shows a new stack's first window from a task of
# its own, started with a copy of the current context, so a value set around ``start`` reaches that task only.
_REPLY_TO: ContextVar[int | None] = ContextVar("reply_to", default=None)


async def show_verdict(manager: DialogManager, state: State, data: dict, reply_to: int | None = None) -> None:
    """Show a verdict dialog as a new message; ``reply_to``: the message it quotes (the picture, in a group).

    A stack per verdict: the buttons of every earlier verdict keep working.
    """
    token = _REPLY_TO.set(reply_to)
    try:
        # What StartMode.NEW_STACK does, but keeping the forum topic: aiogram-dialog's background manager drops
        # the thread id, and a verdict saved without it is not found when a button is pressed in the topic.
        topic = manager.middleware_data.get("event_thread_id")
        await manager.bg(stack_id=Stack().id, thread_id=topic).start(
            state, data, mode=StartMode.NORMAL, show_mode=ShowMode.SEND
        )
    finally:
        _REPLY_TO.reset(token)


class AnswerOnceMessageManager(MessageManager):
    """aiogram-dialog's message manager with two changes.

    * aiogram-dialog answers every press after its handler; Telegram refuses a second answer to the same press, so
      presses our handlers answered themselves are skipped;
    * a verdict started by :func:`show_verdict` with ``reply_to`` is sent as a reply to that message.
    """

    async def answer_callback(self, bot: Bot, callback_query: CallbackQuery) -> None:
        if _answered.pop(callback_query.id, 0) is None:
            return
        await super().answer_callback(bot, callback_query)

    async def send_text(self, bot: Bot, new_message: NewMessage) -> Message:
        reply_to = _REPLY_TO.get()
        if reply_to is None:
            return await super().send_text(bot, new_message)
        return await bot.send_message(
            new_message.chat.id,
            text=new_message.text,
            message_thread_id=new_message.thread_id,
            business_connection_id=new_message.business_connection_id,
            reply_markup=new_message.reply_markup,
            parse_mode=new_message.parse_mode,
            protect_content=new_message.protect_content,
            link_preview_options=new_message.link_preview_options,
            # The picture may have been deleted meanwhile: the verdict then goes out without the quote.
            reply_parameters=ReplyParameters(message_id=reply_to, allow_sending_without_reply=True),
        )


def feedback_enabled(config) -> bool:
    """Whether the Wrong? button is on (``FEEDBACK``); dialogs run without a config in some tests: on."""
    return config is None or config.feedback


def feedback_on(manager: DialogManager) -> bool:
    return feedback_enabled(manager.middleware_data.get("config"))


async def labels_getter(config=None, **_kwargs) -> dict:
    feedback = feedback_enabled(config)
    return {
        "why": texts.button_why(),
        "help": texts.button_help(),
        "back": texts.button_back(),
        "new": texts.button_new(),
        "wrong": texts.button_wrong(),
        "feedback_on": feedback,
        "help_text": texts.help_text(feedback),
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
    in_group = is_group(manager.middleware_data["event_chat"])
    await answer(callback, texts.check_how() if in_group else texts.send_another())


async def send_why(callback: CallbackQuery, manager: DialogManager, verdict_id: int) -> None:
    """Send the heatmap of one of the chat's verdicts below it (uploaded once, then resent by file_id)."""
    manager.show_mode = ShowMode.NO_UPDATE
    data = manager.middleware_data
    bot: Bot = data["bot"]
    verdicts, analyst = data["verdicts"], data["analyst"]
    chat_id, topic = data["event_chat"].id, data.get("event_thread_id")
    record = await verdicts.get(chat_id, verdict_id)
    if record is None:
        await answer(callback, texts.too_old(), show_alert=True)
        return
    await answer(callback)  # at once: the heatmap takes a moment
    caption = texts.overlay_caption(record.verdict, record.p_fake)
    if record.overlay_file_id:
        await bot.send_photo(chat_id, record.overlay_file_id, caption=caption, message_thread_id=topic)
        return
    try:
        async with ChatActionSender.upload_photo(bot=bot, chat_id=chat_id, message_thread_id=topic):
            explanation = await analyst.explain(await fetch(bot, record.file_id))
    except Busy:
        await bot.send_message(chat_id, texts.busy(), message_thread_id=topic)
        return
    except (Gone, TooBig):
        await bot.send_message(chat_id, texts.gone(), message_thread_id=topic)
        return
    except ImageRejected as error:  # it was judged before, so this is unexpected: say so plainly
        await bot.send_message(chat_id, texts.rejected(texts.reason(error)), message_thread_id=topic)
        return
    overlay = BufferedInputFile(explanation.overlay, filename=f"why-{verdict_id}.jpg")
    sent = await bot.send_photo(chat_id, overlay, caption=caption, message_thread_id=topic)
    if sent.photo:
        await verdicts.set_overlay(chat_id, verdict_id, sent.photo[-1].file_id)
