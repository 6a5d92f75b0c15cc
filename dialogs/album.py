"""An album's verdicts in one message, with a Why? button per picture, Help, New check and Wrong?."""

from __future__ import annotations

import operator

from aiogram.types import CallbackQuery
from aiogram_dialog import Dialog, DialogManager, Window
from aiogram_dialog.widgets.kbd import Button, Group, Row, Select, SwitchTo
from aiogram_dialog.widgets.text import Format

from bot import texts
from dialogs.common import answer, feedback_on, help_window, labels_getter, on_new_check, send_why
from dialogs.feedback import ask_about, feedback_window
from dialogs.states import Album

VERDICT_IDS = "verdict_ids"
FAILED = "failed"


async def album_getter(dialog_manager: DialogManager, verdicts, event_chat, config=None, **_kwargs) -> dict:
    lines, pictures, numbers = [], [], []
    for number, verdict_id in enumerate(dialog_manager.start_data[VERDICT_IDS], start=1):
        record = await verdicts.get(event_chat.id, verdict_id)
        if record is None:
            continue
        lines.append(texts.album_line(number, record.verdict, record.p_fake))
        pictures.append((f"{texts.button_why()} {number}", verdict_id))
        numbers.append((str(number), verdict_id))
    failed = [texts.album_failed(number, reason) for number, reason in dialog_manager.start_data.get(FAILED, [])]
    return {
        "text": texts.album_text(lines, failed),
        "pictures": pictures,
        "numbers": numbers,
        "which": texts.which_picture(),
        **await labels_getter(config),
    }


async def on_picture(callback: CallbackQuery, _widget, manager: DialogManager, verdict_id: int) -> None:
    await send_why(callback, manager, verdict_id)


async def on_wrong(callback: CallbackQuery, _button, manager: DialogManager) -> None:
    if feedback_on(manager):
        await manager.switch_to(Album.pick)
    else:  # a button from before FEEDBACK=off
        await answer(callback, texts.feedback_off(), show_alert=True)


async def on_pick(callback: CallbackQuery, _widget, manager: DialogManager, verdict_id: int) -> None:
    ids = [int(known) for known in manager.start_data[VERDICT_IDS]]
    if verdict_id in ids:  # callback data can be forged: only this album's pictures
        await ask_about(callback, manager, verdict_id, ids.index(verdict_id) + 1, Album.feedback)


def picture_buttons(widget_id: str, items: str, on_click) -> Group:
    """A button per picture, five to a row: ``items`` is a getter key of (label, verdict id) pairs."""
    select = Select(
        Format("{item[0]}"),
        id=widget_id,
        item_id_getter=operator.itemgetter(1),
        items=items,
        type_factory=int,
        on_click=on_click,
    )
    return Group(select, width=5)


def build_album_dialog() -> Dialog:
    return Dialog(
        Window(
            Format("{text}"),
            picture_buttons("picture", "pictures", on_picture),
            Row(
                SwitchTo(Format("{help}"), id="help", state=Album.help),
                Button(Format("{new}"), id="new", on_click=on_new_check),
            ),
            Button(Format("{wrong}"), id="wrong", on_click=on_wrong, when="feedback_on"),
            state=Album.summary,
            getter=album_getter,
        ),
        Window(
            Format("{which}"),
            picture_buttons("pick", "numbers", on_pick),
            SwitchTo(Format("{back}"), id="back", state=Album.summary),
            state=Album.pick,
            getter=album_getter,
        ),
        help_window(Album.help, back_to=Album.summary),
        feedback_window(Album.feedback, back_to=Album.summary),
    )
