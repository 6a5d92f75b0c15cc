"""The verdict of one picture, with Why?, Help, New check and Wrong? under it."""

from __future__ import annotations

from aiogram.types import CallbackQuery
from aiogram_dialog import Dialog, DialogManager, Window
from aiogram_dialog.widgets.kbd import Button, Row, SwitchTo
from aiogram_dialog.widgets.text import Format

from bot import texts
from dialogs.common import help_window, labels_getter, on_new_check, send_why
from dialogs.feedback import ask_about, feedback_window
from dialogs.states import Check

VERDICT_ID = "verdict_id"


async def verdict_getter(dialog_manager: DialogManager, verdicts, event_chat, config=None, **_kwargs) -> dict:
    record = await verdicts.get(event_chat.id, dialog_manager.start_data[VERDICT_ID])
    if record is None:
        text = texts.too_old()
    else:
        text = texts.verdict_text(record.verdict, record.p_fake, record.evidence, record.kind)
    return {"text": text, **await labels_getter(config)}


async def on_why(callback: CallbackQuery, _button, manager: DialogManager) -> None:
    await send_why(callback, manager, int(manager.start_data[VERDICT_ID]))


async def on_wrong(callback: CallbackQuery, _button, manager: DialogManager) -> None:
    await ask_about(callback, manager, manager.start_data[VERDICT_ID], None, Check.feedback)


def build_check_dialog() -> Dialog:
    return Dialog(
        Window(
            Format("{text}"),
            Row(
                Button(Format("{why}"), id="why", on_click=on_why),
                SwitchTo(Format("{help}"), id="help", state=Check.help),
                Button(Format("{new}"), id="new", on_click=on_new_check),
            ),
            Button(Format("{wrong}"), id="wrong", on_click=on_wrong, when="feedback_on"),
            state=Check.verdict,
            getter=verdict_getter,
        ),
        help_window(Check.help, back_to=Check.verdict),
        feedback_window(Check.feedback, back_to=Check.verdict),
    )
