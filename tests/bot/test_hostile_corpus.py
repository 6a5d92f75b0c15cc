"""Every case of the hostile corpus (tests/corpus.py), as a photo and as a file, gets exactly one answer.

In process, against the fake Bot API over real HTTP, with the tiny stand-in model: a verdict with its buttons for
each valid picture, a one-line refusal for each hostile one, and no failed update, server error or refused call.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot import texts
from bot.config import Config
from bot.i18n import build_i18n
from ensemble.preprocess import ImageRejected
from tests.bot.fake_telegram import FakeTelegram
from tests.bot.helpers import buttons
from tests.bot.test_bot_flow import RunningBot
from tests.corpus import CASES, Case, names_an_exception

KINDS = ("photo", "document")
FIRST_USER = 5000  # one user per case and kind: no rate limit, no dialog shared between cases


@pytest.fixture
async def fake():
    async with FakeTelegram() as server:
        yield server
    assert server.server_errors == []
    refused = [(call.method, call.status) for call in server.calls if call.status not in (None, 200)]
    assert refused == [], "the bot made a request that Telegram refuses"


@pytest.fixture
def analyst(analyst_parts):
    from bot.analysis import Analyst

    analyst = Analyst(*analyst_parts, workers=1, queue_limit=4 * len(CASES))  # all at once, never "busy"
    yield analyst
    analyst.close()


@pytest.fixture
async def running(fake, tmp_path, analyst):
    config = Config(bot_token=fake.token, api_url=fake.base_url, data_dir=tmp_path, rate_per_minute=100)
    bot = await RunningBot(fake, config, analyst).start()
    yield bot
    await bot.stop()


def send(fake: FakeTelegram, user: int, case: Case, kind: str, language: str = "en") -> str | None:
    """The user sends the case; returns the file_id when the bot must not even ask Telegram for the file."""
    data = case.make()
    if case.size is None:
        if kind == "photo":
            fake.send_photo(user, data, language_code=language)
        else:
            fake.send_document(user, data, case.file_name, language_code=language)
        return None
    # Over the Bot API's download limit: Telegram says the size in the update, and getFile would refuse.
    file_id, unique_id = fake.add_file(data, case.file_name.rsplit(".", 1)[-1], file_size=case.size)
    sent = {"file_id": file_id, "file_unique_id": unique_id, "file_size": case.size}
    if kind == "photo":
        content = {"photo": [{**sent, "width": 320, "height": 240}]}
    else:
        content = {"document": {**sent, "file_name": case.file_name, "mime_type": "image/jpeg"}}
    fake._user_message(user, "en", content)
    return file_id


def expected_words(case: Case, kind: str) -> list[str]:
    """What the one answer must say."""
    if case.valid:
        return ["Chance it was made by a neural network"]
    if case.size is not None:
        return [f"This file is {case.size / 2**20:.0f} MB", "bots can download at most 20 MB"]
    if kind == "document" and case.name == "pdf":
        return ["This kind of file I cannot check"]  # a .pdf file is not taken for a picture at all
    return ["I could not read this picture", case.expect]


async def test_every_corpus_case_gets_one_answer_as_a_photo_and_as_a_file(fake, running, caplog):
    caplog.set_level(logging.ERROR)
    sent = {}
    for number, (case, kind) in enumerate((case, kind) for case in CASES for kind in KINDS):
        user = FIRST_USER + number
        sent[user] = (case, kind, send(fake, user, case, kind))
    russian = FIRST_USER + len(sent)
    send(fake, russian, next(case for case in CASES if case.name == "bomb-81-megapixels"), "document", "ru")
    await fake.wait_for(lambda: all(fake.sent_to(user) for user in sent), timeout=120, what="an answer to each")
    await fake.wait_for(lambda: fake.sent_to(russian), timeout=30, what="the Russian answer")
    await asyncio.sleep(1.0)  # time for a second answer, were there one

    problems = []
    for user, (case, kind, unfetched) in sent.items():
        answers = fake.sent_to(user)
        if len(answers) != 1:
            problems.append(f"{case.name} as {kind}: {len(answers)} answers {[a.get('text') for a in answers]}")
            continue
        text = answers[0].get("text") or ""
        missing = [words for words in expected_words(case, kind) if words not in text]
        if missing:
            problems.append(f"{case.name} as {kind}: {missing} not in {text!r}")
        if case.valid and not {"Why?", "Help", "New check"} <= set(buttons(answers[0])):
            problems.append(f"{case.name} as {kind}: verdict without its buttons")
        if not case.valid and (buttons(answers[0]) or "\n" in text):
            problems.append(f"{case.name} as {kind}: refusal is not one line without buttons: {text!r}")
        if names_an_exception(text):
            problems.append(f"{case.name} as {kind}: a Python exception's name reached the user: {text!r}")
        if unfetched and any(call.params.get("file_id") == unfetched for call in fake.calls_of("getFile")):
            problems.append(f"{case.name} as {kind}: asked Telegram for a file over the download limit")
    assert problems == [], "\n".join(problems)
    assert [message["text"] for message in fake.sent_to(russian)] == [
        "Не удалось прочитать картинку: слишком много пикселей (9000x9000, максимум — 64 Мп). "
        "Пришлите изображение в формате JPEG, PNG, WebP, BMP или TIFF."
    ]
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("kind", sorted(ImageRejected.REASONS))
def test_every_reason_is_the_clis_words_in_english_and_translated_to_russian(kind):
    rejection = ImageRejected(kind, error="SyntaxError", size_mb=60, limit_mb=50, format="ICO", width=9000,
                              height=9000, limit_mp=64)  # fmt: skip
    i18n = build_i18n()
    with i18n.context(), i18n.use_locale("en"):
        english = texts.reason(rejection)
    with i18n.context(), i18n.use_locale("ru"):
        russian = texts.reason(rejection)
    assert english == str(rejection)
    assert russian != english and "\n" not in russian
