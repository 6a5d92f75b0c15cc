"""The "Wrong?" button: the user says whether a picture was made by AI or by a person.

One answer per user per picture (a second one replaces the first), kept by ``bot.feedback`` without the picture.
The verdict a question is about sits in ``dialog_data[FEEDBACK_ID]``; the answer is recorded by the user who
pressed, so in a group every member answers for themselves.
"""

from __future__ import annotations

from aiogram.fsm.state import State
from aiogram.types import CallbackQuery
from aiogram_dialog import DialogManager, Window
from aiogram_dialog.widgets.kbd import Button, Row, SwitchTo
from aiogram_dialog.widgets.text import Format

from bot import texts
from dialogs.common import answer, feedback_on

FEEDBACK_ID = "feedback_verdict_id"
FEEDBACK_NUMBER = "feedback_number"  # the picture's number in an album, None for a single verdict


async def question_getter(dialog_manager: DialogManager, **_kwargs) -> dict:
    return {
        "question": texts.feedback_question(dialog_manager.dialog_data.get(FEEDBACK_NUMBER)),
        "ai_made": texts.button_ai_made(),
        "person_made": texts.button_person_made(),
        "cancel": texts.button_cancel(),
    }


def feedback_window(state: State, back_to: State) -> Window:
    """The question, with an answer button per class and Cancel; every way out leads back to ``back_to``."""

    async def on_answer(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
        if not feedback_on(manager):  # a question shown before FEEDBACK=off, or forged callback data
            await answer(callback, texts.feedback_off(), show_alert=True)
            await manager.switch_to(back_to)
            return
        data = manager.middleware_data
        verdict_id = manager.dialog_data.get(FEEDBACK_ID)
        record = None if verdict_id is None else await data["verdicts"].get(data["event_chat"].id, int(verdict_id))
        if record is None:
            await answer(callback, texts.too_old(), show_alert=True)
        else:
            replaced = await data["feedback"].record(
                user_id=callback.from_user.id,
                chat_id=record.chat_id,
                file_id=record.file_id,
                file_unique_id=record.file_unique_id,
                p_fake=record.p_fake,
                verdict=record.verdict,
                answer="FAKE" if button.widget_id == "ai_made" else "REAL",
            )
            await answer(callback, texts.feedback_updated() if replaced else texts.feedback_thanks())
        await manager.switch_to(back_to)

    return Window(
        Format("{question}"),
        Row(
            Button(Format("{ai_made}"), id="ai_made", on_click=on_answer),
            Button(Format("{person_made}"), id="person_made", on_click=on_answer),
        ),
        SwitchTo(Format("{cancel}"), id="cancel", state=back_to),
        state=state,
        getter=question_getter,
    )


async def ask_about(
    callback: CallbackQuery, manager: DialogManager, verdict_id: int, number: int | None, state: State
) -> None:
    """Open the question about one verdict (unless feedback is off: a button from before, or forged data)."""
    if not feedback_on(manager):
        await answer(callback, texts.feedback_off(), show_alert=True)
        return
    manager.dialog_data[FEEDBACK_ID] = int(verdict_id)
    manager.dialog_data[FEEDBACK_NUMBER] = number
    await manager.switch_to(state)
