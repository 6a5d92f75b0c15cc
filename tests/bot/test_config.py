"""Configuration from the environment: clear refusals, and the token never in a message or repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Config, ConfigError

TOKEN = "123456789:TEST_not_a_real_token_0123456789"


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
            TELEGRAM_API_LOCAL="yes",
            BOT_MODE="Polling",
            DATA_DIR="/data",
            ADMIN_IDS="1, 22;333",
            ANALYSIS_WORKERS="2",
            QUEUE_LIMIT="5",
            BATCH_MAX="4",
            RATE_LIMIT_PER_MINUTE="7",
            DRAIN_SECONDS="3",
            LOG_LEVEL="debug",
        )
    )
    assert config.api_url == "http://127.0.0.1:8081" and config.api_local and config.data_dir == Path("/data")
    assert config.admin_ids == {1, 22, 333}
    assert (config.workers, config.queue_limit, config.rate_per_minute, config.drain_seconds) == (2, 5, 7, 3)
    assert config.log_level == "DEBUG" and config.max_batch == 4


def test_webhook_mode_redis_and_amvera_defaults():
    config = Config.from_env(
        env(
            BOT_MODE="webhook",
            WEBHOOK_URL="https://my-bot.amvera.io/telegram",
            WEBHOOK_SECRET="s3cret_-token",
            PORT="80",
            REDIS_URL="redis://:pa55@redis:6379/0",
            AMVERA="1",
        )
    )
    assert (config.mode, config.webhook_url, config.webhook_secret) == (
        "webhook",
        "https://my-bot.amvera.io/telegram",
        "s3cret_-token",
    )
    assert (config.host, config.port, config.data_dir) == ("0.0.0.0", 80, Path("/data"))
    assert config.onnx_dir == Path("/data/onnx")
    assert Config.from_env(env(ONNX_DIR="off")).onnx_dir is None
    assert Config.from_env(env(ONNX_DIR="/cache/onnx")).onnx_dir == Path("/cache/onnx")
    assert config.redis_url == "redis://:pa55@redis:6379/0"
    assert "s3cret" not in repr(config) and "pa55" not in repr(config)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"BOT_TOKEN": ""}, "BOT_TOKEN is not set"),
        ({"BOT_TOKEN": "   "}, "BOT_TOKEN is not set"),
        ({"BOT_TOKEN": "not-a-token"}, "BOT_TOKEN is malformed"),
        ({"BOT_TOKEN": "12345:short"}, "BOT_TOKEN is malformed"),
        ({"BOT_TOKEN": "abc:TEST_not_a_real_token_0123456789"}, "BOT_TOKEN is malformed"),
        ({"BOT_TOKEN": TOKEN + " x"}, "BOT_TOKEN is malformed"),
        ({"TELEGRAM_API_URL": "ftp://host"}, "TELEGRAM_API_URL must be an http"),
        ({"TELEGRAM_API_URL": "localhost:8081"}, "TELEGRAM_API_URL must be an http"),
        ({"TELEGRAM_API_LOCAL": "true"}, "TELEGRAM_API_LOCAL needs TELEGRAM_API_URL"),
        ({"TELEGRAM_API_URL": "http://h:1", "TELEGRAM_API_LOCAL": "maybe"}, "TELEGRAM_API_LOCAL must be true or false"),
        ({"BOT_MODE": "sometimes"}, "BOT_MODE must be polling or webhook"),
        ({"BOT_MODE": "webhook"}, "BOT_MODE=webhook needs WEBHOOK_URL"),
        ({"BOT_MODE": "webhook", "WEBHOOK_URL": "my-bot.example"}, "WEBHOOK_URL must be an https URL"),
        ({"BOT_MODE": "webhook", "WEBHOOK_URL": "https://b.example/hook"}, "BOT_MODE=webhook needs WEBHOOK_SECRET"),
        (
            {"BOT_MODE": "webhook", "WEBHOOK_URL": "https://b.example/hook", "WEBHOOK_SECRET": "with space"},
            "WEBHOOK_SECRET may hold only",
        ),
        ({"PORT": "http"}, "PORT must be a whole number"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must look like redis://"),
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


@pytest.mark.parametrize("local", [False, True])
async def test_the_bot_talks_to_the_configured_server(local):
    from bot.app import build_bot

    bot = build_bot(Config.from_env(env(TELEGRAM_API_URL="http://10.0.0.5:8081", TELEGRAM_API_LOCAL=str(local))))
    try:
        assert bot.session.api.api_url(TOKEN, "getMe") == f"http://10.0.0.5:8081/bot{TOKEN}/getMe"
        assert bot.session.api.is_local is local
    finally:
        await bot.session.close()
