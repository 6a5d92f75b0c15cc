"""Groups and supergroups, through the real Dispatcher against the fake Bot API over HTTP.

Quiet by default; /check and mentions in replies; auto mode for admins only, kept across restarts; buttons for the
chat's members only; a rate limit per chat; the group command menu; and "Wrong?" answers with their export.
"""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from bot.config import Config
from tests.bot.fake_telegram import FakeTelegram
from tests.bot.helpers import ROOT, buttons, jpeg
from tests.bot.test_bot_flow import RunningBot
from tests.images import photo_like

GROUP = -100777
OTHER_GROUP = -100888
ADMIN, MEMBER, STRANGER = 501, 502, 503


@pytest.fixture
async def fake():
    async with FakeTelegram() as server:
        server.add_group(GROUP, members={ADMIN: "administrator", MEMBER: "member"})
        server.add_group(OTHER_GROUP, members={ADMIN: "creator", MEMBER: "member"})
        yield server
    assert server.server_errors == []
    refused = [(call.method, call.status) for call in server.calls if call.status not in (None, 200)]
    assert refused == [], "the bot made a request that Telegram refuses"


@pytest.fixture
def config(fake, tmp_path):
    return Config(bot_token=fake.token, api_url=fake.base_url, data_dir=tmp_path, rate_per_minute=100)


def leaning(analyst_parts, shift: float, scale: float = 1.0):
    """The tiny test ensemble with its calibration moved so that every picture comes out FAKE (+), REAL (-), or
    (scale 0) at 0.5, UNSURE."""
    from bot.analysis import Analyst
    from ensemble.detector import Detector
    from explain.explainer import Explainer

    detector, _explainer = analyst_parts
    manifest = {**detector.manifest, "calibration": {"scale": scale, "shift": shift}}
    moved = Detector(manifest, detector.models)
    return Analyst(moved, Explainer(moved, image_format="jpeg"), workers=1, queue_limit=64)


@pytest.fixture
def fake_leaning(analyst_parts):
    analyst = leaning(analyst_parts, 12.0)
    yield analyst
    analyst.close()


@pytest.fixture
def real_leaning(analyst_parts):
    analyst = leaning(analyst_parts, -12.0)
    yield analyst
    analyst.close()


@pytest.fixture
def unsure_leaning(analyst_parts):
    analyst = leaning(analyst_parts, 0.0, scale=0.0)
    yield analyst
    analyst.close()


@pytest.fixture
async def running(fake, config, fake_leaning):
    bot = await RunningBot(fake, config, fake_leaning).start()
    yield bot
    await bot.stop()


async def reply_after(fake: FakeTelegram, chat_id: int, act, timeout: float = 60.0) -> dict:
    """Do ``act()`` and return the bot's next message in the chat."""
    seen = len(fake.sent_to(chat_id))
    act()
    return await fake.wait_for(lambda: (fake.sent_to(chat_id)[seen:] or [None])[0], timeout=timeout)


async def settle(fake: FakeTelegram, chat_id: int) -> list[dict]:
    """Everything the bot says in the chat once a /start sent now has been answered (updates run in order)."""
    seen = len(fake.sent_to(chat_id))
    fake.group_text(chat_id, MEMBER, "/start")
    await fake.wait_for(lambda: any("quiet until asked" in (m.get("text") or "") for m in fake.sent_to(chat_id)[seen:]),
                        timeout=60)  # fmt: skip
    await asyncio.sleep(0.5)
    return fake.sent_to(chat_id)


async def test_a_picture_nobody_asked_about_gets_no_answer(fake, running):
    fake.set_privacy(False)  # the bot sees everything, and still says nothing
    photo = fake.group_photo(GROUP, MEMBER, jpeg(seed=1))
    assert photo is not None
    said = await settle(fake, GROUP)
    assert len(said) == 1 and "quiet until asked" in said[0]["text"], [m.get("text") for m in said]
    assert said[0]["reply_to_message"]["message_id"] != photo["message"]["message_id"]


async def test_check_in_reply_gives_the_verdict_under_the_picture_for_everyone_in_the_chat(fake, running):
    photo = fake.group_photo(GROUP, MEMBER, jpeg(seed=2))
    assert photo is None, "privacy mode on: the bot never saw the picture itself"
    picture = fake.hidden[-1]
    verdict = await reply_after(fake, GROUP, lambda: fake.group_text(GROUP, ADMIN, "/check", reply_to=picture))
    assert "Chance it was made by a neural network" in verdict["text"]
    assert verdict["reply_to_message"]["message_id"] == picture["message_id"], "the verdict quotes the picture"
    labels = buttons(verdict)
    assert {"Why?", "Help", "Wrong?"} <= set(labels)

    photos = len(fake.calls_of("sendPhoto"))
    fake.press_button(MEMBER, verdict, labels["Why?"])  # another member than the one who asked
    call = await fake.wait_for_call("sendPhoto", after=photos, timeout=60)
    assert int(call.params["chat_id"]) == GROUP

    answers = len(fake.calls_of("answerCallbackQuery"))
    fake.press_button(STRANGER, verdict, labels["Why?"])  # not a member of this public group
    call = await fake.wait_for_call("answerCallbackQuery", after=answers, timeout=30)
    assert "Only members of this chat" in call.params["text"]
    await asyncio.sleep(0.5)
    assert len(fake.calls_of("sendPhoto")) == photos + 1, "no heatmap for a stranger"


async def test_a_mention_in_reply_asks_too_and_other_bots_commands_are_not_ours(fake, running):
    fake.group_photo(GROUP, MEMBER, jpeg(seed=3))
    picture = fake.hidden[-1]
    verdict = await reply_after(
        fake, GROUP, lambda: fake.group_text(GROUP, MEMBER, f"@{fake.bot_user['username']} is this real?",
                                             reply_to=picture)
    )  # fmt: skip
    assert verdict["reply_to_message"]["message_id"] == picture["message_id"]
    before = len(fake.sent_to(GROUP))
    fake.group_text(GROUP, MEMBER, "/check@some_other_bot", reply_to=picture)
    said = await settle(fake, GROUP)
    assert len(said) == before + 1, "only the /start answer: /check@some_other_bot is another bot's command"


async def test_check_without_a_picture_says_how_to_ask(fake, running):
    how = await reply_after(fake, GROUP, lambda: fake.group_text(GROUP, MEMBER, "/check"))
    assert how["text"] == "Reply to a picture with /check and I will check it."
    text = fake.group_text(GROUP, MEMBER, "hello")
    assert text is None
    not_picture = await reply_after(fake, GROUP, lambda: fake.group_text(GROUP, MEMBER, "/check",
                                                                          reply_to=fake.hidden[-1]))  # fmt: skip
    assert "has no picture" in not_picture["text"]


async def test_auto_mode_is_for_admins_and_says_what_privacy_mode_hides(fake, running):
    refusal = await reply_after(fake, GROUP, lambda: fake.group_text(GROUP, MEMBER, "/auto on"))
    assert "Only this chat's administrators" in refusal["text"]
    fake.group_text(GROUP, MEMBER, "/auto on")  # again within the minute: nothing, the chat is not spammed
    said = await settle(fake, GROUP)
    assert sum("administrators" in (m.get("text") or "") for m in said) == 1

    state = await reply_after(fake, GROUP, lambda: fake.group_text(GROUP, ADMIN, "/auto"))
    assert state["text"].startswith("Auto mode is off")
    blind = await reply_after(fake, GROUP, lambda: fake.group_text(GROUP, ADMIN, "/auto on"))
    assert "cannot see the pictures" in blind["text"] and "Group Privacy" in blind["text"]
    fake.set_privacy(False)
    on = await reply_after(fake, GROUP, lambda: fake.group_text(GROUP, ADMIN, "/auto on"))
    assert on["text"].startswith("Auto mode is on")
    usage = await reply_after(fake, GROUP, lambda: fake.group_text(GROUP, ADMIN, "/auto maybe"))
    assert "/auto on, /auto off" in usage["text"]
    private = await reply_after(fake, ADMIN, lambda: fake.send_command(ADMIN, "/auto", "on"))
    assert "for group chats" in private["text"]


async def test_auto_mode_answers_only_fake_pictures_and_survives_a_restart(
    fake, config, fake_leaning, real_leaning, unsure_leaning
):
    fake.set_privacy(False)
    first = await RunningBot(fake, config, fake_leaning).start()
    try:
        await reply_after(fake, GROUP, lambda: fake.group_text(GROUP, ADMIN, "/auto on"))
    finally:
        await first.stop()

    second = await RunningBot(fake, config, fake_leaning).start()  # a restart: the setting is on disk
    try:
        posted = fake.group_photo(GROUP, MEMBER, jpeg(seed=4))
        verdict = await reply_after(fake, GROUP, lambda: None)
        assert "(FAKE)" in verdict["text"]
        assert verdict["reply_to_message"]["message_id"] == posted["message"]["message_id"]
        assert not fake.calls_of("sendChatAction"), "auto mode does not announce itself with 'typing'"
    finally:
        await second.stop()

    for analyst, seed in ((real_leaning, 5), (unsure_leaning, 6)):
        third = await RunningBot(fake, config, analyst).start()
        try:
            before, downloads = len(fake.sent_to(GROUP)), len(fake.calls_of("getFile"))
            fake.group_photo(GROUP, ADMIN, jpeg(seed=seed))
            await fake.wait_for(lambda n=downloads: len(fake.calls_of("getFile")) > n, timeout=60)
            await fake.wait_for(lambda a=analyst: a.pending == 0, timeout=60)  # judged: any answer is on its way
            said = await settle(fake, GROUP)
            assert len(said) == before + 1, "silent on a REAL or UNSURE picture: only the /start answer"
        finally:
            await third.stop()
    assert real_leaning.detector.judge(photo_like(64, 64)).verdict == "REAL"
    assert unsure_leaning.detector.judge(photo_like(64, 64)).verdict == "UNSURE"


async def test_a_flood_in_one_group_is_cut_without_starving_another(fake, config, fake_leaning):
    running = await RunningBot(fake, replace(config, rate_per_chat_minute=2), fake_leaning).start()
    try:
        pictures = []
        for seed in range(3):
            fake.group_photo(GROUP, MEMBER, jpeg(seed=10 + seed))
            pictures.append(fake.hidden[-1])
        for user, picture in zip((ADMIN, MEMBER, ADMIN), pictures):
            fake.group_text(GROUP, user, "/check", reply_to=picture)
        await fake.wait_for(lambda: len(fake.sent_to(GROUP)) >= 3, timeout=60)
        await asyncio.sleep(1.0)
        said = [m.get("text", "") for m in fake.sent_to(GROUP)]
        assert sum("Chance it was made" in text for text in said) == 2, said
        assert sum("faster than I can check" in text for text in said) == 1, said

        fake.group_photo(OTHER_GROUP, MEMBER, jpeg(seed=20))
        elsewhere = fake.hidden[-1]
        other = await reply_after(fake, OTHER_GROUP, lambda: fake.group_text(OTHER_GROUP, MEMBER, "/check",
                                                                             reply_to=elsewhere))  # fmt: skip
        assert "Chance it was made" in other["text"]
    finally:
        await running.stop()


async def test_the_group_menu_and_help_in_both_languages(fake, running):
    group_scope = {"type": "all_group_chats"}
    assert [c["command"] for c in fake.commands(group_scope)] == ["check", "auto", "help"]
    assert "картинку" in fake.commands(group_scope, "ru")[0]["description"]
    assert [c["command"] for c in fake.commands()] == ["start", "help"]
    help_text = await reply_after(fake, GROUP, lambda: fake.group_text(GROUP, MEMBER, "/help"))
    assert "quiet until asked" in help_text["text"] and "How it works" in help_text["text"]
    assert f"@{fake.bot_user['username']}" in help_text["text"]


async def test_wrong_answers_are_kept_once_per_user_exported_and_counted(fake, config, fake_leaning, tmp_path):
    running = await RunningBot(fake, replace(config, admin_ids=frozenset({ADMIN})), fake_leaning).start()
    try:
        fake.group_photo(GROUP, MEMBER, jpeg(seed=30))
        picture = fake.hidden[-1]
        verdict = await reply_after(fake, GROUP, lambda: fake.group_text(GROUP, MEMBER, "/check", reply_to=picture))

        async def answer(user: int, choice: str) -> str:
            fake.press_button(user, verdict, buttons(fake.message(GROUP, verdict["message_id"]))["Wrong?"])
            await fake.wait_for(lambda: choice in buttons(fake.message(GROUP, verdict["message_id"])), timeout=30)
            update = fake.press_button(user, verdict, buttons(fake.message(GROUP, verdict["message_id"]))[choice])
            query = update["callback_query"]["id"]
            await fake.wait_for(lambda: fake.callback_answer(query), timeout=30)
            await fake.wait_for(lambda: "Wrong?" in buttons(fake.message(GROUP, verdict["message_id"])), timeout=30)
            return fake.callback_answer(query)["text"]

        assert await answer(MEMBER, "📷 Made by a person") == "Thank you! Your answer helps to train the next version."
        assert await answer(MEMBER, "🤖 AI-made") == "Your answer is updated.", "thanked once"
        assert (await answer(ADMIN, "📷 Made by a person")).startswith("Thank you")

        fake.send_command(ADMIN, "/stats")
        stats = await fake.wait_for(lambda: (fake.sent_to(ADMIN) or [None])[-1], timeout=30)
        assert "Feedback answers: 2" in stats["text"]
        assert "confident FAKE: 1 of 2 (50%)" in stats["text"]
    finally:
        await running.stop()

    out = tmp_path / "export" / "feedback.csv"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "REDIS_", "TELEGRAM_"))}
    environment["DATA_DIR"] = str(config.data_dir)  # no token needed
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "bot", "feedback-export", str(out)],
                                   cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and "2 answers written" in done.stderr, done.stderr
    with out.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert sorted((int(r["user_id"]), r["answer"]) for r in rows) == [(ADMIN, "REAL"), (MEMBER, "FAKE")]
    assert {r["chat_id"] for r in rows} == {str(GROUP)} and {r["verdict"] for r in rows} == {"FAKE"}
    assert all(float(r["p_fake"]) > 0.9 and r["file_unique_id"] and r["file_id"] for r in rows)
    assert "picture" not in rows[0] and set(rows[0]) == {
        "file_unique_id", "user_id", "chat_id", "file_id", "answer", "verdict", "p_fake", "answered_at"
    }  # fmt: skip


async def test_a_picture_forwarded_from_a_channel_into_a_private_chat_gets_its_verdict(fake, running):
    file_id, unique_id = fake.add_file(jpeg(seed=40))
    user = fake.add_user(MEMBER)
    channel = {"id": -1009999, "type": "channel", "title": "News"}
    message = {
        "message_id": 900,
        "from": user,
        "chat": {"id": MEMBER, "type": "private", "first_name": user["first_name"]},
        "date": 1_700_000_000,
        "forward_origin": {"type": "channel", "chat": channel, "message_id": 77, "date": 1_699_999_000},
        "photo": [{"file_id": file_id, "file_unique_id": unique_id, "width": 320, "height": 240}],
    }
    verdict = await reply_after(fake, MEMBER, lambda: fake.push_update({"message": message}))
    assert "Chance it was made by a neural network" in verdict["text"]
    assert "reply_to_message" not in verdict, "private chats get the verdict as before, without a quote"


async def test_in_a_forum_topic_the_verdict_and_its_heatmap_stay_in_the_topic(fake, running):
    topic = fake.add_topic(GROUP, "Memes")
    fake.group_photo(GROUP, MEMBER, jpeg(seed=50), thread_id=topic)
    picture = fake.hidden[-1]
    verdict = await reply_after(fake, GROUP, lambda: fake.group_text(GROUP, MEMBER, "/check", reply_to=picture,
                                                                      thread_id=topic))  # fmt: skip
    assert verdict.get("message_thread_id") == topic
    assert verdict["reply_to_message"]["message_id"] == picture["message_id"]
    typing = [call for call in fake.calls_of("sendChatAction") if int(call.params["chat_id"]) == GROUP]
    assert typing and all(int(call.params.get("message_thread_id", 0)) == topic for call in typing)
    photos = len(fake.calls_of("sendPhoto"))
    fake.press_button(ADMIN, verdict, buttons(verdict)["Why?"])
    call = await fake.wait_for_call("sendPhoto", after=photos, timeout=60)
    assert int(call.params["message_thread_id"]) == topic, "the heatmap goes to the topic, not to General"
    how = await reply_after(fake, GROUP, lambda: fake.group_text(GROUP, MEMBER, "/check", thread_id=topic))
    assert how["text"].startswith("Reply to a picture"), "the topic's first message is not a picture to check"


async def test_an_anonymous_admin_may_switch_auto_mode_and_it_follows_a_supergroup_upgrade(fake, running):
    fake.set_privacy(False)
    on = await reply_after(fake, GROUP, lambda: fake.group_text(GROUP, MEMBER, "/auto on", anonymous=True))
    assert on["text"].startswith("Auto mode is on")
    upgraded = -100999
    fake.add_group(upgraded, members={ADMIN: "creator", MEMBER: "member"})
    fake.group_message(GROUP, ADMIN, {"migrate_to_chat_id": upgraded})
    await asyncio.sleep(1.0)
    state = await reply_after(fake, upgraded, lambda: fake.group_text(upgraded, ADMIN, "/auto"))
    assert state["text"].startswith("Auto mode is on")


async def test_a_check_on_any_part_of_an_album_gets_one_summary(fake, running):
    fake.set_privacy(False)
    fake.group_photo(GROUP, MEMBER, jpeg(seed=60), media_group_id="a1")
    fake.group_photo(GROUP, MEMBER, jpeg(seed=61), caption="/check", media_group_id="a1")
    summary = await reply_after(fake, GROUP, lambda: None)
    assert "Album: 2 pictures checked" in summary["text"]


async def test_a_verdict_cannot_be_opened_from_another_chat(fake, running):
    fake.group_photo(GROUP, MEMBER, jpeg(seed=70))
    verdict = await reply_after(fake, GROUP, lambda: fake.group_text(GROUP, MEMBER, "/check", reply_to=fake.hidden[-1]))
    elsewhere = await reply_after(fake, OTHER_GROUP, lambda: fake.group_text(OTHER_GROUP, MEMBER, "/start"))
    answers, photos = len(fake.calls_of("answerCallbackQuery")), len(fake.calls_of("sendPhoto"))
    fake.press_button(MEMBER, elsewhere, buttons(verdict)["Why?"], check=False)  # forged: the data of another chat
    call = await fake.wait_for_call("answerCallbackQuery", after=answers, timeout=30)
    assert "too old" in call.params["text"]
    await asyncio.sleep(0.5)
    assert len(fake.calls_of("sendPhoto")) == photos
