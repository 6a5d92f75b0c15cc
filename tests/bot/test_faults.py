"""The Bot API failing: 429 with retry_after, 5xx, calls that time out, getUpdates down for a while.

The real Dispatcher and polling loop in process, against the fake Bot API over HTTP, which is told to fail.
"""

from __future__ import annotations

import logging

import pytest

from bot.config import Config
from tests.bot.fake_telegram import DOWNLOAD, FakeTelegram
from tests.bot.helpers import jpeg
from tests.bot.test_bot_flow import RunningBot

ALICE, BOB = 3001, 3002
VERDICT = "Chance it was made by a neural network"


@pytest.fixture
async def fake(caplog):
    caplog.set_level("DEBUG")
    async with FakeTelegram() as server:
        yield server
    assert server.server_errors == []
    # Unredacted here (the redacting formatter is the process's): no failure message may carry the token.
    text = "\n".join(logging.Formatter().format(record) for record in caplog.get_records("call"))
    assert text and server.token not in text and server.token.partition(":")[2] not in text


@pytest.fixture
def config(fake, tmp_path):
    return Config(bot_token=fake.token, api_url=fake.base_url, data_dir=tmp_path, rate_per_minute=100, api_timeout=2)


@pytest.fixture
async def running(fake, config, analyst_parts):
    from bot.analysis import Analyst

    analyst = Analyst(*analyst_parts, workers=1, queue_limit=64)
    bot = await RunningBot(fake, config, analyst).start()
    yield bot
    await bot.stop()
    analyst.close()


def sends_to(fake: FakeTelegram, chat_id: int) -> list:
    return [call for call in fake.calls_of("sendMessage") if call.params.get("chat_id") == chat_id]


def verdicts_to(fake: FakeTelegram, chat_id: int) -> list[dict]:
    return [message for message in fake.sent_to(chat_id) if VERDICT in (message.get("text") or "")]


async def test_429_is_waited_out_while_other_users_are_answered(fake, running):
    fake.fail_next("sendMessage", 429, retry_after=3)
    fake.send_photo(ALICE, jpeg(seed=1), language_code="en")
    refused = await fake.wait_for(lambda: [c for c in sends_to(fake, ALICE) if c.status == 429], timeout=60)
    fake.send_photo(BOB, jpeg(seed=2), language_code="en")

    await fake.wait_for(lambda: verdicts_to(fake, ALICE), timeout=60)
    alice = [call for call in sends_to(fake, ALICE) if call.status == 200]
    bob = [call for call in sends_to(fake, BOB) if call.status == 200]
    assert len(alice) == 1 and len(verdicts_to(fake, ALICE)) == 1, "one verdict, sent again after the wait"
    assert alice[0].time - refused[0].time >= 3, "the bot waited the retry_after Telegram asked for"
    assert bob and bob[0].time < alice[0].time, "another user was answered during the wait"


async def test_server_errors_are_retried_with_backoff(fake, running):
    fake.fail_next("sendMessage", 502, count=2)
    fake.send_photo(ALICE, jpeg(seed=3), language_code="en")
    await fake.wait_for(lambda: verdicts_to(fake, ALICE), timeout=60)
    statuses = [call.status for call in sends_to(fake, ALICE)]
    assert statuses == [502, 502, 200]
    gaps = [later.time - earlier.time for earlier, later in zip(sends_to(fake, ALICE), sends_to(fake, ALICE)[1:])]
    assert gaps[1] > gaps[0] * 1.2, f"the waits grow ({gaps})"


async def test_a_call_that_times_out_is_sent_again(fake, running):
    fake.delay_next("sendMessage", 6)  # the bot gives up after api_timeout=2 s
    fake.send_photo(ALICE, jpeg(seed=4), language_code="en")
    await fake.wait_for(lambda: verdicts_to(fake, ALICE), timeout=60)
    first, second = sends_to(fake, ALICE)[:2]
    assert second.time - first.time < 5, "retried after the client's timeout, not after Telegram's late answer"
    # Telegram may still carry out the call that timed out: at least once, at most twice.
    await fake.wait_for(lambda: all(call.status is not None for call in sends_to(fake, ALICE)), timeout=30)
    assert 1 <= len(verdicts_to(fake, ALICE)) <= 2


async def test_polling_survives_get_updates_failing(fake, running):
    fake.fail_next("getUpdates", 500, count=3)
    await fake.wait_for(lambda: [c for c in fake.calls_of("getUpdates") if c.status == 500][2:], timeout=60)
    fake.send_photo(ALICE, jpeg(seed=5), language_code="en")
    await fake.wait_for(lambda: verdicts_to(fake, ALICE), timeout=60)
    failed = [call.time for call in fake.calls_of("getUpdates") if call.status == 500]
    assert failed[2] - failed[0] >= 1.5, "it backs off instead of hammering a failing server"


async def test_a_send_that_keeps_failing_gets_an_apology_and_the_bot_goes_on(fake, running):
    fake.fail_next("sendMessage", 500, count=5)  # every try of the verdict fails
    fake.send_photo(ALICE, jpeg(seed=6), language_code="en")
    apology = await fake.wait_for(lambda: fake.sent_to(ALICE), timeout=90)
    assert "went wrong" in apology[0]["text"].lower() or "try again" in apology[0]["text"].lower()
    fake.send_photo(BOB, jpeg(seed=7), language_code="en")
    await fake.wait_for(lambda: verdicts_to(fake, BOB), timeout=60)


async def test_a_failed_download_is_tried_again(fake, running):
    fake.fail_next(DOWNLOAD, 502, count=2)
    fake.send_photo(ALICE, jpeg(seed=8), language_code="en")
    await fake.wait_for(lambda: verdicts_to(fake, ALICE), timeout=60)
    assert len(fake.downloads) == 3, "two failed downloads, then the one that worked"
