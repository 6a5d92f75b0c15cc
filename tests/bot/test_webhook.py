"""Webhook mode in process: real HTTP updates posted to the bot's aiohttp server, with a tiny stand-in model."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bot.config import Config
from bot.webhook import run_webhook
from tests.bot.fake_telegram import FakeTelegram
from tests.bot.helpers import buttons, free_port, jpeg

USER = 3001
SECRET = "correct_horse-battery_staple"


class Served:
    """run_webhook as a task, with the URLs a test needs."""

    def __init__(self, fake: FakeTelegram, config: Config, load_analyst) -> None:
        self.fake, self.config = fake, config
        self.base = f"http://127.0.0.1:{config.port}"
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(run_webhook(config, load_analyst=load_analyst, stop=self.stop))

    async def status(self, path: str) -> int:
        async with aiohttp.ClientSession() as session, session.get(self.base + path) as response:
            return response.status

    async def post(self, update: dict, secret: str | None = SECRET) -> int:
        return await self.fake.post_update_to_async(self.config.webhook_url, update, secret_token=secret)

    async def wait_ready(self) -> None:
        for _ in range(600):
            if self.task.done():
                await self.task  # raises what went wrong
            try:
                if await self.status("/readyz") == 200:
                    return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
        raise AssertionError("the webhook server never became ready")

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 60)


@pytest.fixture
async def fake():
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
def config(fake, tmp_path):
    port = free_port()
    return Config(
        bot_token=fake.token,
        api_url=fake.base_url,
        mode="webhook",
        webhook_url=f"http://127.0.0.1:{port}/telegram/updates",
        webhook_secret=SECRET,
        host="127.0.0.1",
        port=port,
        data_dir=tmp_path,
    )


def tiny_analyst(analyst_parts):
    from bot.analysis import Analyst

    return lambda _config: Analyst(*analyst_parts)


async def test_health_then_readiness_then_updates_with_the_secret_only(fake, config, analyst_parts):
    gate = asyncio.Event()

    def slow_loader(_config):
        asyncio.run_coroutine_threadsafe(gate.wait(), loop).result(60)  # hold "loading" until the test says
        return tiny_analyst(analyst_parts)(_config)

    loop = asyncio.get_running_loop()
    served = Served(fake, config, slow_loader)
    try:
        for _ in range(200):
            try:
                if await served.status("/healthz") == 200:
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        assert await served.status("/healthz") == 200, "the process is up while the models load"
        assert await served.status("/readyz") == 503
        first = fake.send_photo(USER, jpeg(seed=1))
        assert await served.post(first) == 503, "an update before the models are ready is refused for a retry"

        gate.set()
        await served.wait_ready()
        assert fake.webhook["url"] == config.webhook_url and fake.webhook["secret_token"] == SECRET

        assert await served.post(first, secret=None) == 401
        assert await served.post(first, secret="wrong-secret") == 401
        await asyncio.sleep(0.5)
        assert fake.sent_to(USER) == [], "refused updates do nothing"

        assert await served.post(first) == 200
        verdict = await fake.wait_for(lambda: fake.sent_to(USER), timeout=60)
        verdict = verdict[0]
        assert "Chance it was made by a neural network" in verdict["text"]

        photos = len(fake.calls_of("sendPhoto"))
        press = fake.press_button(USER, verdict, buttons(verdict)["Why?"])
        assert await served.post(press) == 200
        await fake.wait_for_call("sendPhoto", after=photos, timeout=60)
    finally:
        gate.set()
        await served.close()
    assert fake.webhook is None, "the webhook is removed on stop (no replicas share it)"


async def test_stop_finishes_the_answer_in_progress(fake, config, analyst_parts):
    served = Served(fake, config, tiny_analyst(analyst_parts))
    try:
        await served.wait_ready()
        downloads = len(fake.downloads)
        assert await served.post(fake.send_photo(USER, jpeg(2000, 1500, seed=7))) == 200
        await fake.wait_for(lambda: len(fake.downloads) > downloads, timeout=30)
    finally:
        await served.close()
    answers = fake.sent_to(USER)
    assert answers and "Chance it was made" in answers[0]["text"]
