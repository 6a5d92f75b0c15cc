"""Configuration from the environment: clear refusals, and the token never in a message or repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Config, ConfigError

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"


def env(**values: str) -> dict[str, str]:
    return {"BOT_TOKEN": TOKEN, **values}


def test_defaults_and_the_token_stays_out_of_repr():
    config = Config.from_env(env())
    assert config.bot_token == TOKEN and config.mode == "polling" and config.api_url is None
    assert config.data_dir == Path("data") and (config.weights_dir / "manifest.json").is_file()
    assert TOKEN not in repr(config) and TOKEN.split(":")[1] not in repr(config)


def test_every_setting_is_read():
    config = Config.from_env(
        env(
            TELEGRAM_API_URL="http://127.0.0.1:8081/",
            BOT_MODE="Polling",
            DATA_DIR="/data",
            ADMIN_IDS="1, 22;333",
            ANALYSIS_WORKERS="2",
            QUEUE_LIMIT="5",
            RATE_LIMIT_PER_MINUTE="7",
            DRAIN_SECONDS="3",
            LOG_LEVEL="debug",
        )
    )
    assert config.api_url == "http://127.0.0.1:8081" and config.data_dir == Path("/data")
    assert config.admin_ids == {1, 22, 333}
    assert (config.workers, config.queue_limit, config.rate_per_minute, config.drain_seconds) == (2, 5, 7, 3)
    assert config.log_level == "DEBUG"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"BOT_TOKEN": ""}, "BOT_TOKEN is not set"),
        ({"BOT_TOKEN": "   "}, "BOT_TOKEN is not set"),
        ({"BOT_TOKEN": "not-a-token"}, "BOT_TOKEN is malformed"),
        ({"BOT_TOKEN": "12345:short"}, "BOT_TOKEN is malformed"),
        ({"BOT_TOKEN": "abc:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0"}, "BOT_TOKEN is malformed"),
        ({"BOT_TOKEN": TOKEN + " x"}, "BOT_TOKEN is malformed"),
        ({"TELEGRAM_API_URL": "ftp://host"}, "TELEGRAM_API_URL must be an http"),
        ({"TELEGRAM_API_URL": "localhost:8081"}, "TELEGRAM_API_URL must be an http"),
        ({"BOT_MODE": "webhook"}, "BOT_MODE must be polling"),
        ({"ADMIN_IDS": "12,alice"}, "ADMIN_IDS must be Telegram user ids"),
        ({"QUEUE_LIMIT": "0"}, "QUEUE_LIMIT must be at least 1"),
        ({"RATE_LIMIT_PER_MINUTE": "many"}, "RATE_LIMIT_PER_MINUTE must be a whole number"),
        ({"WEIGHTS_DIR": "/nonexistent"}, "WEIGHTS_DIR /nonexistent has no manifest.json"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be"),
    ],
)
def test_bad_settings_are_refused_with_what_to_do(values, message):
    with pytest.raises(ConfigError, match=message) as raised:
        Config.from_env(env(**values))
    assert TOKEN.split(":")[1] not in str(raised.value)


def test_a_missing_token_fails_fast_from_the_command_line(tmp_path):
    import os
    import subprocess
    import sys

    clean = {key: value for key, value in os.environ.items() if key != "BOT_TOKEN"}
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=root, env=clean, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "BOT_TOKEN is not set" in result.stderr and "Traceback" not in result.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=root,
        env={**clean, "BOT_TOKEN": "123:" + "x" * 40 + "!"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "malformed" in bad.stderr and "x" * 40 not in bad.stderr
