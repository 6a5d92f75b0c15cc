"""The bot's handlers and dialogs, in process, against the fake Bot API over real HTTP, with a tiny stand-in model.

The Dispatcher, middlewares, dialogs, storage and models are the real ones;
only the ensemble is a small untrained Lite0 at 64 px so each test is quick.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace

import pytest
from PIL import Image

from bot.app import build_bot, build_dispatcher, serve_polling
from bot.config import Config
from bot.journal import UpdateJournal
from bot.stores import open_stores
from tests.bot.fake_telegram import FakeTelegram
from tests.bot.helpers import buttons, jpeg
from tests.images import encode, photo_like

USER = 1001
OTHER_USER = 1002


class RunningBot:
    """The real Dispatcher polling the fake server from this test's event loop."""

    def __init__(self, fake: FakeTelegram, config: Config, analyst) -> None:
        self.fake, self.config, self.analyst = fake, config, analyst
        self.task: asyncio.Task | None = None

    async def start(self) -> RunningBot:
        self.stores = await open_stores(self.config)
        self.verdicts = self.stores.verdicts
        self.journal = UpdateJournal(self.config.data_dir / "updates.sqlite3")
        self.bot = build_bot(self.config)
        self.dispatcher, self.in_flight = build_dispatcher(self.config, self.stores, self.analyst)
        self.stopping = asyncio.Event()
        self.task = asyncio.create_task(
            serve_polling(self.bot, self.dispatcher, self.in_flight, self.journal, self.stopping, polling_timeout=1)
        )
        await self.fake.wait_for_call("getUpdates", timeout=30)
        return self

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.stopping.set()
            await asyncio.wait_for(self.task, 30)
        await self.bot.session.close()
        await self.stores.close()
        self.journal.close()


@pytest.fixture
async def fake():
    async with FakeTelegram() as server:
        yield server
    assert server.server_errors == []
    refused = [
        (call.method, call.status)
        for call in server.calls
        if call.status not in (None, 200) and call.method != "getFile"  # getFile refuses files over 20 MB
    ]
    assert refused == [], "the bot made a request that Telegram refuses (e.g. a second answer to a button press)"


@pytest.fixture
def config(fake, tmp_path):
    return Config(bot_token=fake.token, api_url=fake.base_url, data_dir=tmp_path, rate_per_minute=100)


@pytest.fixture
def analyst(analyst_parts):
    from bot.analysis import Analyst

    analyst = Analyst(*analyst_parts, workers=1, queue_limit=64)
    yield analyst
    analyst.close()


@pytest.fixture
async def running(fake, config, analyst):
    bot = await RunningBot(fake, config, analyst).start()
    yield bot
    await bot.stop()


async def next_bot_message(fake: FakeTelegram, chat_id: int, seen: int, timeout: float = 30.0) -> dict:
    """The first message the bot sent to ``chat_id`` after it had sent ``seen`` there."""
    return await fake.wait_for(lambda: (fake.sent_to(chat_id)[seen:] or [None])[0], timeout=timeout)


async def answer_to(fake: FakeTelegram, send, timeout: float = 30.0) -> dict:
    """Do ``send()`` (a user action) and return the bot's first message after it."""
    seen = len(fake.sent_to(USER))
    send()
    return await next_bot_message(fake, USER, seen, timeout)


def current(fake: FakeTelegram, message: dict) -> dict:
    return fake.message(message["chat"]["id"], message["message_id"])


async def test_start_and_help_answer_in_the_users_language(fake, running):
    english = await answer_to(fake, lambda: fake.send_command(USER, "/start", language_code="en"))
    assert "Send me a picture" in english["text"]
    russian = await answer_to(fake, lambda: fake.send_command(USER, "/help", language_code="uk"))
    assert "Как это работает" in russian["text"]
    assert fake.commands(language_code="ru"), "Russian command descriptions are registered at start-up"


async def test_a_photo_gets_a_verdict_with_why_and_help_that_work(fake, running):
    verdict = await answer_to(fake, lambda: fake.send_photo(USER, jpeg(), language_code="en"))
    assert "Chance it was made by a neural network" in verdict["text"]
    assert "%" in verdict["text"]
    assert "as a file" in verdict["text"], "a compressed photo gets the hint to send the original as a file"
    labels = buttons(verdict)
    assert {"Why?", "Help", "New check"} <= set(labels)
    assert fake.calls_of("sendChatAction"), "a chat action is shown while the picture is checked"

    record = (await running.verdicts.recent(USER, 1))[0]
    assert record.kind == "photo" and 0.0 <= record.p_fake <= 1.0 and len(record.member_p_fake) == 2

    photos_before = len(fake.calls_of("sendPhoto"))
    fake.press_button(USER, verdict, labels["Why?"])
    call = await fake.wait_for_call("sendPhoto", after=photos_before, timeout=60)
    overlay = Image.open(io.BytesIO(next(iter(call.files.values()))))
    overlay.load()
    assert overlay.format == "JPEG" and overlay.size[0] > 64
    assert "Red and yellow" in call.params["caption"]

    fake.press_button(USER, verdict, labels["Help"])
    await fake.wait_for(lambda: "How it works" in (current(fake, verdict).get("text") or ""), timeout=10)
    back = buttons(current(fake, verdict))["Back to the verdict"]
    fake.press_button(USER, verdict, back)
    await fake.wait_for(lambda: "Chance it was made" in (current(fake, verdict).get("text") or ""), timeout=10)

    # A second Why? reuses the uploaded overlay by file_id instead of computing it again.
    photos_before = len(fake.calls_of("sendPhoto"))
    fake.press_button(USER, verdict, labels["Why?"])
    again = await fake.wait_for_call("sendPhoto", after=photos_before, timeout=30)
    assert not again.files and isinstance(again.params["photo"], str)


async def test_russian_users_get_russian_verdicts_and_buttons(fake, running):
    verdict = await answer_to(fake, lambda: fake.send_photo(USER, jpeg(seed=3), language_code="ru"))
    assert "Вероятность" in verdict["text"] or "нейросет" in verdict["text"]
    assert "Почему?" in buttons(verdict)


async def test_an_image_file_gets_a_verdict_without_the_file_hint(fake, running):
    png = encode(photo_like(400, 300, seed=5), "PNG")
    verdict = await answer_to(fake, lambda: fake.send_document(USER, png, "drawing.png", "image/png"))
    assert "Chance it was made by a neural network" in verdict["text"]
    assert "as a file" not in verdict["text"]
    record = (await running.verdicts.recent(USER, 1))[0]
    assert record.kind == "document" and record.file_name == "drawing.png"


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        (lambda fake: fake.send_sticker(USER), "Stickers"),
        (lambda fake: fake.send_animation(USER), "GIF"),
        (lambda fake: fake.send_video(USER), "Videos"),
        (lambda fake: fake.send_voice(USER), "oice"),
        (lambda fake: fake.send_text(USER, "is this fake?"), "picture"),
        (lambda fake: fake.send_document(USER, b"%PDF-1.4\n%%EOF", "paper.pdf", "application/pdf"), "picture"),
    ],
    ids=["sticker", "gif", "video", "voice", "text", "pdf"],
)
async def test_what_is_not_a_picture_gets_a_short_answer(fake, running, send, expected):
    answer = await answer_to(fake, lambda: send(fake))
    assert expected in answer["text"]
    assert not buttons(answer)


async def test_a_broken_photo_is_refused_with_a_reason(fake, running):
    broken = jpeg()[:400]
    answer = await answer_to(fake, lambda: fake.send_document(USER, broken, "broken.jpg", "image/jpeg"))
    assert "could not read this picture" in answer["text"]
    assert not buttons(answer)
    not_an_image = await answer_to(fake, lambda: fake.send_document(USER, b"hello" * 50, "x.png", "image/png"))
    assert "could not read this picture" in not_an_image["text"]


@pytest.mark.parametrize("size_in_update", [True, False], ids=["size-in-update", "size-from-getFile"])
async def test_a_file_over_the_download_limit_is_refused_without_downloading(fake, running, size_in_update):
    huge = 25 * 2**20
    file_id, unique_id = fake.add_file(jpeg(), "jpg", file_size=huge)
    document = {"file_id": file_id, "file_unique_id": unique_id, "file_name": "huge.jpg", "mime_type": "image/jpeg"}
    if size_in_update:
        document["file_size"] = huge
    answer = await answer_to(fake, lambda: fake._user_message(USER, None, {"document": document}))
    assert "20 MB" in answer["text"] and ("25 MB" in answer["text"]) == size_in_update
    assert not fake.downloads


async def test_an_album_gets_one_summary_with_a_why_per_picture(fake, running):
    seen = len(fake.sent_to(USER))
    for seed in range(3):
        fake.send_photo(USER, jpeg(seed=seed), media_group_id="album-1")
    summary = await next_bot_message(fake, USER, seen, timeout=60)
    await asyncio.sleep(1.5)  # nothing else may follow: one message per album
    assert len(fake.sent_to(USER)) == seen + 1, [m.get("text") for m in fake.sent_to(USER)]
    assert "3 pictures" in summary["text"]
    labels = buttons(summary)
    assert {"Why? 1", "Why? 2", "Why? 3"} <= set(labels)

    photos_before = len(fake.calls_of("sendPhoto"))
    fake.press_button(USER, summary, labels["Why? 2"])
    call = await fake.wait_for_call("sendPhoto", after=photos_before, timeout=60)
    assert Image.open(io.BytesIO(next(iter(call.files.values())))).format == "JPEG"


async def test_the_rate_limit_answers_once_politely(fake, config, analyst):
    bot = await RunningBot(fake, replace(config, rate_per_minute=2), analyst).start()
    try:
        seen = len(fake.sent_to(USER))
        for seed in range(5):
            fake.send_photo(USER, jpeg(seed=seed))
        await fake.wait_for(lambda: len(fake.sent_to(USER)) >= seen + 3, timeout=60)
        await asyncio.sleep(1.0)
        answers = [message.get("text", "") for message in fake.sent_to(USER)[seen:]]
        assert len(answers) == 3, answers
        assert sum("Please wait" in text for text in answers) == 1
        assert sum("Chance it was made" in text for text in answers) == 2
    finally:
        await bot.stop()


async def test_a_full_queue_answers_busy_instead_of_waiting(fake, config, analyst_parts):
    from bot.analysis import Analyst

    crowded = Analyst(*analyst_parts, workers=1, queue_limit=1)
    bot = await RunningBot(fake, config, crowded).start()
    try:
        users = range(2001, 2009)
        for user in users:
            fake.send_photo(user, jpeg(640, 480, seed=user))
        await fake.wait_for(lambda: all(fake.sent_to(user) for user in users), timeout=60)
        texts = [fake.sent_to(user)[0].get("text", "") for user in users]
        assert any("busy" in text for text in texts), texts
        assert any("Chance it was made" in text for text in texts), texts
    finally:
        await bot.stop()
        crowded.close()


async def test_why_survives_a_restart_and_is_private_to_its_user(fake, config, analyst):
    first = await RunningBot(fake, config, analyst).start()
    try:
        verdict = await answer_to(fake, lambda: fake.send_photo(USER, jpeg(seed=9)))
    finally:
        await first.stop()

    second = await RunningBot(fake, config, analyst).start()
    try:
        photos_before = len(fake.calls_of("sendPhoto"))
        fake.press_button(USER, verdict, buttons(verdict)["Why?"])
        await fake.wait_for_call("sendPhoto", after=photos_before, timeout=60)

        fake.press_button(USER, verdict, buttons(verdict)["Help"])
        await fake.wait_for(lambda: "How it works" in (current(fake, verdict).get("text") or ""), timeout=10)

        # Another user pressing the same button data (a forwarded keyboard) learns nothing and gets no heatmap.
        answers_before = len(fake.calls_of("answerCallbackQuery"))
        photos_before = len(fake.calls_of("sendPhoto"))
        fake.press_button(OTHER_USER, verdict, buttons(current(fake, verdict))["Back to the verdict"], check=False)
        await fake.wait_for_call("answerCallbackQuery", after=answers_before, timeout=10)
        await asyncio.sleep(0.5)
        assert len(fake.calls_of("sendPhoto")) == photos_before
        assert not fake.sent_to(OTHER_USER)
    finally:
        await second.stop()


async def test_a_button_from_a_lost_database_says_the_check_is_too_old(fake, config, analyst, tmp_path):
    first = await RunningBot(fake, config, analyst).start()
    try:
        verdict = await answer_to(fake, lambda: fake.send_photo(USER, jpeg(seed=11)))
    finally:
        await first.stop()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    second = await RunningBot(fake, replace(config, data_dir=fresh), analyst).start()
    try:
        answers_before = len(fake.calls_of("answerCallbackQuery"))
        fake.press_button(USER, verdict, buttons(verdict)["Why?"])
        call = await fake.wait_for_call("answerCallbackQuery", after=answers_before, timeout=10)
        assert "too old" in call.params.get("text", "")
    finally:
        await second.stop()


async def test_stats_is_for_admins_only(fake, config, analyst):
    admin = 4242
    running = await RunningBot(fake, replace(config, admin_ids=frozenset({admin})), analyst).start()
    try:
        refused = await answer_to(fake, lambda: fake.send_command(USER, "/stats", language_code="en"))
        assert "for the bot's admins" in refused["text"] and "Verdicts stored" not in refused["text"]
        fake.send_command(admin, "/stats", language_code="en")
        stats = await next_bot_message(fake, admin, 0)
        assert stats["text"].startswith("Verdicts stored: ") and "Pictures waiting or in analysis: 0" in stats["text"]
        fake.send_command(admin, "/stats", language_code="ru")
        russian = await next_bot_message(fake, admin, 1)
        assert russian["text"].startswith("Сохранено вердиктов: ") and "(максимум — " in russian["text"]
    finally:
        await running.stop()
