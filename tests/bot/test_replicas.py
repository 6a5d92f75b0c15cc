"""Two ``python -m bot`` replicas in webhook mode sharing a real redis-server.

Updates alternate between the replicas; a button pressed on replica B for a verdict replica A gave works,
even after A has stopped; the rate limit counts both replicas together.
"""

from __future__ import annotations

from tests.bot.fake_telegram import FakeTelegram
from tests.bot.helpers import BotProcess, buttons, free_port, jpeg, readyz, webhook_env

SECRET = "replica_secret-0123456789"


def start_replicas(fake: FakeTelegram, redis_url: str, tmp_path, onnx_dir, count: int = 2):
    ports = [free_port() for _ in range(count)]
    replicas = []
    for name, port in zip("ab", ports):
        replicas.append(
            BotProcess(
                fake,
                tmp_path / f"data-{name}",
                tmp_path / f"replica-{name}.log",
                ready=readyz(port),
                **webhook_env(port, SECRET),
                REDIS_URL=redis_url,
                ONNX_DIR=str(onnx_dir),  # converted once for the test session
                RATE_LIMIT_PER_MINUTE="3",
                LOG_LEVEL="INFO",
            )
        )
    return replicas, [f"http://127.0.0.1:{port}/telegram" for port in ports]


def test_two_replicas_share_dialogs_verdicts_and_rate_limits(redis_url, tmp_path, onnx_dir):
    with FakeTelegram() as fake:
        (a, b), (url_a, url_b) = start_replicas(fake, redis_url, tmp_path, onnx_dir)
        try:
            assert fake.webhook["url"] == "https://detector.example/telegram"
            assert fake.webhook["secret_token"] == SECRET

            # Ten users, their photos alternating between the replicas: every one answered.
            users = list(range(8001, 8011))
            for number, user in enumerate(users):
                assert fake.post_update_to(url_a if number % 2 else url_b, fake.send_photo(user, jpeg(seed=user)),
                                           secret_token=SECRET) == 200  # fmt: skip
            fake.wait_for_sync(lambda: all(fake.sent_to(user) for user in users), timeout=180, what="10 answers")
            assert all("Chance it was made" in fake.sent_to(user)[0]["text"] for user in users)

            # A wrong secret is refused by either replica.
            assert fake.post_update_to(url_a, fake.send_photo(9999, jpeg()), secret_token="wrong") == 401
            assert fake.post_update_to(url_b, fake.send_photo(9999, jpeg())) == 401

            # One user, five photos spread over both replicas, a limit of 3 a minute: 3 verdicts, 1 "please wait".
            greedy = 8100
            for number in range(5):
                fake.post_update_to(url_a if number % 2 else url_b, fake.send_photo(greedy, jpeg(seed=number)),
                                    secret_token=SECRET)  # fmt: skip
            fake.wait_for_sync(lambda: len(fake.sent_to(greedy)) >= 4, timeout=120, what="the greedy user's answers")
            texts = [message.get("text", "") for message in fake.sent_to(greedy)]
            assert sum("Chance it was made" in text for text in texts) == 3, texts
            assert sum("Please wait" in text for text in texts) == 1, texts

            # An album whose parts reach both replicas: one summary with every picture.
            album_user = 8300
            for number in range(3):
                part = fake.send_photo(album_user, jpeg(seed=100 + number), media_group_id="holiday")
                assert fake.post_update_to(url_a if number % 2 else url_b, part, secret_token=SECRET) == 200
            summary = fake.wait_for_sync(lambda: fake.sent_to(album_user), timeout=120, what="the album")[0]
            assert "Album: 3 pictures checked" in summary["text"]

            # A verdict from replica A ...
            user = 8200
            fake.post_update_to(url_a, fake.send_photo(user, jpeg(seed=42)), secret_token=SECRET)
            verdict = fake.wait_for_sync(lambda: fake.sent_to(user), timeout=120, what="the verdict")[0]
            assert a.terminate() == 0, a.log
            assert fake.webhook is not None, "a stopping replica leaves the shared webhook to the others"

            # ... and its buttons pressed on replica B after A is gone.
            photos = len(fake.calls_of("sendPhoto"))
            press = fake.press_button(user, verdict, buttons(verdict)["Why?"])
            assert fake.post_update_to(url_b, press, secret_token=SECRET) == 200
            fake.wait_for_call_sync("sendPhoto", after=photos, timeout=120)
            press = fake.press_button(user, verdict, buttons(verdict)["Help"])
            assert fake.post_update_to(url_b, press, secret_token=SECRET) == 200
            fake.wait_for_sync(
                lambda: "How it works" in fake.message(user, verdict["message_id"]).get("text", ""), timeout=60
            )
            assert b.terminate() == 0, b.log
            assert len(fake.sent_to(album_user)) == 1, "the album was answered once"
        finally:
            a.kill()
            b.kill()
    for replica in (a, b):
        assert "Traceback" not in replica.log and fake.token not in replica.log
    assert not (tmp_path / "data-a" / "dialogs.sqlite3").exists(), "with Redis nothing is kept in DATA_DIR"
