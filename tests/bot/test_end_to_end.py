"""The real ``python -m bot`` process, with the shipped weights, against the fake Bot API on 127.0.0.1.

One walk through everything a user can do, then SIGTERM, then a restart that
must still answer an old verdict's Why? button. The log is checked for the token.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.bot import helpers
from tests.bot.fake_telegram import FakeTelegram
from tests.bot.helpers import BotProcess, buttons
from tests.images import encode, photo_like

ROOT = Path(__file__).resolve().parents[2]
USER = 501
ANSWER_TIMEOUT = 120


def jpeg(seed: int) -> bytes:
    return helpers.jpeg(1280, 960, seed)


def answer(fake: FakeTelegram, user: int, send, timeout: float = ANSWER_TIMEOUT) -> dict:
    seen = len(fake.sent_to(user))
    send()
    return fake.wait_for_sync(lambda: (fake.sent_to(user)[seen:] or [None])[0], timeout, what=f"an answer to {user}")


def why(fake: FakeTelegram, verdict: dict) -> Image.Image:
    """Press Why? and return the picture the bot sends (uploaded, or resent by file_id)."""
    before = len(fake.calls_of("sendPhoto"))
    fake.press_button(verdict["chat"]["id"], verdict, buttons(verdict)["Why?"])
    call = fake.wait_for_call_sync("sendPhoto", after=before, timeout=ANSWER_TIMEOUT)
    data = next(iter(call.files.values())) if call.files else fake.file_bytes(call.params["photo"])
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


@pytest.mark.parametrize(("token", "message"), [(None, "BOT_TOKEN is not set"), ("hello", "BOT_TOKEN")])
def test_the_bot_refuses_to_start_without_a_valid_token(tmp_path, token, message):
    environment = {k: v for k, v in os.environ.items() if k != "BOT_TOKEN"}
    if token is not None:
        environment["BOT_TOKEN"] = token
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_the_bot_process_end_to_end(tmp_path):
    data_dir, log_path = tmp_path / "data", tmp_path / "bot.log"
    with FakeTelegram() as fake:
        bot = BotProcess(fake, data_dir, log_path)
        try:
            greeting = answer(fake, USER, lambda: fake.send_command(USER, "/start"))
            assert "Send me a picture" in greeting["text"]

            verdict = answer(fake, USER, lambda: fake.send_photo(USER, jpeg(1)))
            assert "Chance it was made by a neural network" in verdict["text"]
            assert {"Why?", "Help"} <= set(buttons(verdict))
            heatmap = why(fake, verdict)
            assert heatmap.format == "JPEG" and max(heatmap.size) >= 640

            fake.press_button(USER, verdict, buttons(verdict)["Help"])
            fake.wait_for_sync(
                lambda: "How it works" in fake.message(USER, verdict["message_id"]).get("text", ""), timeout=30
            )

            assert "Stickers" in answer(fake, USER, lambda: fake.send_sticker(USER))["text"]
            broken = jpeg(2)[:1000]
            assert "could not read" in answer(fake, USER, lambda: fake.send_photo(USER, broken))["text"]
            png = encode(photo_like(800, 600, seed=3), "PNG")
            png_verdict = answer(fake, USER, lambda: fake.send_document(USER, png, "scan.png", "image/png"))
            assert "Chance it was made by a neural network" in png_verdict["text"]
            pdf = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF"
            assert "picture" in answer(fake, USER, lambda: fake.send_document(USER, pdf, "doc.pdf"))["text"]

            crowd = range(10_001, 10_041)
            pictures = {user: jpeg(user) for user in crowd}
            for user in crowd:
                fake.send_photo(user, pictures[user])
            fake.wait_for_sync(lambda: all(fake.sent_to(user) for user in crowd), timeout=300, what="40 answers")
            for user in crowd:
                assert "Chance it was made by a neural network" in fake.sent_to(user)[0]["text"], user

            # SIGTERM while a picture is being checked: its answer is finished, then the process exits 0.
            downloads = len(fake.downloads)
            late = fake.send_photo(USER + 1, jpeg(99))
            fake.wait_for_sync(lambda: len(fake.downloads) > downloads, timeout=60, what="the download")
            assert bot.terminate() == 0, bot.log
            late_answers = fake.sent_to(USER + 1)
            assert late_answers and "Chance it was made" in late_answers[0]["text"], late
        finally:
            bot.kill()

        # A restart on the same DATA_DIR: the old verdict's buttons still work.
        restarted = BotProcess(fake, data_dir, log_path)
        try:
            shown = fake.message(USER, verdict["message_id"])  # still showing Help from before the restart
            fake.press_button(USER, verdict, buttons(shown)["Back to the verdict"])
            fake.wait_for_sync(
                lambda: "Chance it was made" in fake.message(USER, verdict["message_id"]).get("text", ""), timeout=60
            )
            assert why(fake, png_verdict).format == "JPEG"
            assert restarted.terminate() == 0
        finally:
            restarted.kill()

    log = log_path.read_text(errors="replace")
    assert "ready:" in log and "stopped" in log
    assert log.count("verdicts on ONNX Runtime") == 2, "the shipped ONNX graphs served both starts"
    assert log.count("converting the ensemble to ONNX once") == 0, "nothing converted: the graphs ship in weights/onnx"
    assert not (data_dir / "onnx").exists()
    assert "Traceback" not in log and " ERROR " not in log, "every bad input was answered without an error"
    assert fake.token not in log and fake.token.partition(":")[2] not in log
    assert not list(data_dir.rglob("*.jpg")) and not list(data_dir.rglob("*.png")), "no pictures kept on disk"
