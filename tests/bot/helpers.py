"""Small helpers shared by the bot tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.bot.fake_telegram import FakeTelegram
from tests.images import encode, photo_like

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 300  # loading TensorFlow and three members on a busy 2-core machine


def jpeg(width: int = 320, height: int = 240, seed: int = 0) -> bytes:
    return encode(photo_like(width, height, seed), "JPEG", quality=90)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def readyz(port: int) -> Callable[[], bool]:
    """A readiness check for BotProcess: the webhook server on ``port`` answers /readyz with 200."""

    def check() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    return check


def webhook_env(port: int, secret: str) -> dict[str, str]:
    """The settings of ``python -m bot`` in webhook mode, listening on 127.0.0.1:``port`` at /telegram."""
    return {
        "BOT_MODE": "webhook",
        "WEBHOOK_URL": "https://detector.example/telegram",  # the load balancer's address in real life
        "WEBHOOK_SECRET": secret,
        "WEB_HOST": "127.0.0.1",
        "PORT": str(port),
    }


def buttons(message: dict) -> dict[str, str]:
    """Button text -> callback_data of a message's inline keyboard."""
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return {button["text"]: button["callback_data"] for row in rows for button in row}


class BotProcess:
    """The bot as a process (``python -m bot`` unless ``command`` says otherwise), its output in a log file.

    It is started against the fake Bot API server; the constructor returns once ``ready()`` holds (by default:
    the bot has started long polling). The log goes to a file because a pipe could fill up and stall the bot.
    """

    def __init__(
        self,
        fake: FakeTelegram,
        data_dir: Path,
        log_path: Path,
        *,
        command: list[str] | None = None,
        ready: Callable[[], bool] | None = None,
        **env: str,
    ) -> None:
        self.fake = fake
        self.log_path = log_path
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "TELEGRAM_", "WEBHOOK_"))}
        environment.update(
            BOT_TOKEN=fake.token,
            TELEGRAM_API_URL=fake.base_url,
            DATA_DIR=str(data_dir),
            LOG_LEVEL="DEBUG",  # the most talkative level, so the token checks mean something
            PYTHONUNBUFFERED="1",
        )
        environment.update(env)
        if ready is None:
            polls_before = len(fake.calls_of("getUpdates"))
            ready = lambda: len(fake.calls_of("getUpdates")) > polls_before  # noqa: E731
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            command or [sys.executable, "-m", "bot"],
            cwd=ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            fake.wait_for_sync(
                lambda: self.process.poll() is not None or ready(),
                timeout=START_TIMEOUT,
                interval=0.1,
                what="the bot to start",
            )
        except AssertionError:
            self.kill()
            raise
        assert self.process.poll() is None, f"the bot exited during start-up:\n{self.log}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()
