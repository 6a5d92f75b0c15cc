"""The verdict and album windows with aiogram-dialog's own test tools (no HTTP, no models)."""

from __future__ import annotations

import pytest
from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram_dialog import DialogManager, StartMode
from aiogram_dialog.test_tools import BotClient, MockMessageManager
from aiogram_dialog.test_tools.keyboard import InlineButtonTextLocator

from bot.app import build_dispatcher
from bot.config import Config
from bot.stores import open_stores
from bot.verdicts import VerdictStore
from dialogs.album import FAILED, VERDICT_IDS
from dialogs.check import VERDICT_ID
from dialogs.states import Album, Check

TOKEN = "123456789:TEST_not_a_real_token_0123456789"
USER = 1


def opener() -> Router:
    """/check ID and /album ID,ID,... open the dialogs the way the picture handler does, minus the models."""
    router = Router(name="opener")

    @router.message(Command("check"))
    async def open_check(message: Message, command: CommandObject, dialog_manager: DialogManager) -> None:
        await dialog_manager.start(Check.verdict, data={VERDICT_ID: int(command.args)}, mode=StartMode.RESET_STACK)

    @router.message(Command("album"))
    async def open_album(message: Message, command: CommandObject, dialog_manager: DialogManager) -> None:
        ids = [int(part) for part in command.args.split(",")]
        failed = [[len(ids) + 1, "I could not read this picture: truncated."]]
        await dialog_manager.start(Album.summary, data={VERDICT_IDS: ids, FAILED: failed}, mode=StartMode.RESET_STACK)

    return router


async def open_world(config: Config):
    stores = await open_stores(config)
    messages = MockMessageManager()
    dispatcher, _in_flight = build_dispatcher(config, stores, None, message_manager=messages)
    dispatcher.include_router(opener())
    dispatcher.sub_routers.insert(0, dispatcher.sub_routers.pop())  # before the router that answers everything
    return BotClient(dispatcher, user_id=USER, chat_id=USER), messages, stores


@pytest.fixture
async def world(tmp_path):
    client, messages, stores = await open_world(Config(bot_token=TOKEN, data_dir=tmp_path))
    yield client, messages, stores.verdicts
    await stores.close()


@pytest.fixture
async def feedback_world(tmp_path):
    client, messages, stores = await open_world(Config(bot_token=TOKEN, data_dir=tmp_path))
    yield client, messages, stores
    await stores.close()


async def add(verdicts: VerdictStore, p_fake: float, verdict: str, user_id: int = USER, **extra):
    record = {"kind": "photo", "file_name": None, "evidence": [], **extra}
    return await verdicts.add(
        user_id=user_id,
        chat_id=user_id,
        file_id=f"file-{p_fake}",
        file_unique_id=f"unique-{p_fake}",
        p_fake=p_fake,
        verdict=verdict,
        member_p_fake={"a": p_fake, "b": p_fake},
        **record,
    )


def button_texts(message: Message) -> list[str]:
    return [button.text for row in message.reply_markup.inline_keyboard for button in row]


async def test_the_verdict_window_and_its_help(world):
    client, messages, verdicts = world
    record = await add(verdicts, 0.93, "FAKE", evidence=["generator:Midjourney"])
    await client.send(f"/check {record.id}")
    shown = messages.one_message()
    assert "93%" in shown.text and "Midjourney" in shown.text
    assert button_texts(shown) == ["Why?", "Help", "New check", "Wrong?"]

    messages.reset_history()
    await client.click(shown, InlineButtonTextLocator("Help"))
    help_shown = messages.one_message()
    assert "How it works" in help_shown.text and button_texts(help_shown) == ["Back to the verdict"]

    messages.reset_history()
    await client.click(help_shown, InlineButtonTextLocator("Back to the verdict"))
    assert messages.one_message().text == shown.text


async def test_new_check_keeps_the_verdict_and_answers_with_a_hint(world):
    client, messages, verdicts = world
    record = await add(verdicts, 0.12, "REAL")
    await client.send(f"/check {record.id}")
    shown = messages.one_message()
    messages.reset_history()
    await client.click(shown, InlineButtonTextLocator("New check"))
    assert messages.sent_messages == [], "the verdict stays as it is"


async def test_someone_elses_verdict_is_not_shown(world):
    client, messages, verdicts = world
    theirs = await add(verdicts, 0.99, "FAKE", user_id=777, evidence=["camera:Canon EOS 5D"])
    await client.send(f"/check {theirs.id}")
    shown = messages.one_message()
    assert "99%" not in shown.text and "Canon" not in shown.text
    assert "too old" in shown.text


async def test_the_album_window_lists_every_picture_and_each_failure(world):
    client, messages, verdicts = world
    records = [await add(verdicts, p, v) for p, v in ((0.91, "FAKE"), (0.08, "REAL"), (0.52, "UNSURE"))]
    await client.send("/album " + ",".join(str(record.id) for record in records))
    shown = messages.one_message()
    assert "Album: 3 pictures checked" in shown.text
    assert "1. " in shown.text and "91%" in shown.text and "8%" in shown.text and "52%" in shown.text
    assert "4. ⚠️ not checked: I could not read this picture" in shown.text
    assert button_texts(shown) == ["Why? 1", "Why? 2", "Why? 3", "Help", "New check", "Wrong?"]


async def test_wrong_asks_stores_one_answer_per_user_and_returns_to_the_verdict(feedback_world):
    client, messages, stores = feedback_world
    record = await add(stores.verdicts, 0.93, "FAKE")
    await client.send(f"/check {record.id}")
    verdict = messages.one_message()
    messages.reset_history()
    await client.click(verdict, InlineButtonTextLocator(r"Wrong\?"))
    question = messages.one_message()
    assert "AI-made or made by a person" in question.text
    assert button_texts(question) == ["🤖 AI-made", "📷 Made by a person", "Cancel"]
    messages.reset_history()
    await client.click(question, InlineButtonTextLocator("📷 Made by a person"))
    assert "93%" in messages.last_message().text, "back at the verdict"
    [kept] = await stores.feedback.all()
    assert (kept.user_id, kept.chat_id, kept.answer, kept.verdict, kept.p_fake) == (USER, USER, "REAL", "FAKE", 0.93)
    assert (kept.file_id, kept.file_unique_id) == (record.file_id, record.file_unique_id)

    back = messages.last_message()
    messages.reset_history()
    await client.click(back, InlineButtonTextLocator(r"Wrong\?"))
    question = messages.one_message()
    messages.reset_history()
    await client.click(question, InlineButtonTextLocator("🤖 AI-made"))
    [changed] = await stores.feedback.all()
    assert changed.answer == "FAKE", "a second answer replaces the first"
    summary = await stores.feedback.summary()
    assert summary.count == 1 and summary.confident["FAKE"] == (1, 0)


async def test_wrong_on_an_album_asks_which_picture(feedback_world):
    client, messages, stores = feedback_world
    records = [await stores.verdicts.add(
        user_id=USER, chat_id=USER, file_id=f"f{i}", file_unique_id=f"u{i}", kind="photo", file_name=None,
        p_fake=p, verdict=v, member_p_fake={}, evidence=[]) for i, (p, v) in enumerate(((0.91, "FAKE"), (0.08, "REAL")))
    ]  # fmt: skip
    await client.send("/album " + ",".join(str(record.id) for record in records))
    summary = messages.one_message()
    messages.reset_history()
    await client.click(summary, InlineButtonTextLocator(r"Wrong\?"))
    pick = messages.one_message()
    assert "Which picture" in pick.text and button_texts(pick)[:2] == ["1", "2"]
    messages.reset_history()
    await client.click(pick, InlineButtonTextLocator("2"))
    question = messages.one_message()
    assert "Picture 2" in question.text
    messages.reset_history()
    await client.click(question, InlineButtonTextLocator("🤖 AI-made"))
    [kept] = await stores.feedback.all()
    assert (kept.file_unique_id, kept.answer, kept.verdict) == ("u1", "FAKE", "REAL")


async def test_feedback_off_hides_wrong(tmp_path):
    client, messages, stores = await open_world(Config(bot_token=TOKEN, data_dir=tmp_path, feedback=False))
    try:
        record = await add(stores.verdicts, 0.93, "FAKE")
        await client.send(f"/check {record.id}")
        assert button_texts(messages.one_message()) == ["Why?", "Help", "New check"]
    finally:
        await stores.close()


async def test_a_wrong_button_from_before_feedback_was_switched_off_keeps_nothing(feedback_world):
    from dataclasses import replace

    client, messages, stores = feedback_world
    record = await add(stores.verdicts, 0.93, "FAKE")
    await client.send(f"/check {record.id}")
    verdict = messages.one_message()  # sent while feedback was on
    client.dp.workflow_data["config"] = replace(client.dp.workflow_data["config"], feedback=False)  # a restart
    messages.reset_history()
    await client.click(verdict, InlineButtonTextLocator(r"Wrong\?"))
    shown = messages.last_message()
    assert "made by a person" not in shown.text and "93%" in shown.text, "no question, the verdict stays"
    assert button_texts(shown) == ["Why?", "Help", "New check"], "and the stale button is gone"
    assert await stores.feedback.all() == []
