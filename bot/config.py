"""Everything the bot reads from the environment, read in one place (``Config.from_env``, called by ``main``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
MODES = ("polling", "webhook")
# Telegram's rule for secret_token: 1 to 256 of these characters.
SECRET_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class ConfigError(ValueError):
    """A setting is missing or wrong; the message says which and how to fix it (and never holds the token)."""


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")
    return value


def _token(env: Mapping[str, str]) -> str:
    token = env.get("BOT_TOKEN", "").strip()
    if not token:
        raise ConfigError(
            "BOT_TOKEN is not set: create a bot with @BotFather, then put its token in the environment "
            "(see .env.example). Without a token, use the offline CLI: python -m ensemble predict PICTURE"
        )
    bot_id, colon, secret = token.partition(":")
    # The shape @BotFather gives: a numeric bot id, a colon, and a secret of URL-safe characters.
    if not (colon and bot_id.isdigit() and len(secret) >= 30 and all(c.isalnum() or c in "_-" for c in secret)):
        raise ConfigError("BOT_TOKEN is malformed: expected <bot id>:<secret> exactly as @BotFather gives it")
    return token


def _api_url(env: Mapping[str, str]) -> str | None:
    raw = env.get("TELEGRAM_API_URL", "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"TELEGRAM_API_URL must be an http(s) base URL such as http://127.0.0.1:8081, got {raw!r}")
    return raw.rstrip("/")


def _webhook(env: Mapping[str, str]) -> tuple[str, str]:
    url = env.get("WEBHOOK_URL", "").strip()
    parts = urlsplit(url)
    if not url:
        raise ConfigError("BOT_MODE=webhook needs WEBHOOK_URL: the public https address Telegram posts updates to")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"WEBHOOK_URL must be an https URL such as https://my-bot.amvera.io/webhook, got {url!r}")
    secret = env.get("WEBHOOK_SECRET", "").strip()
    if not secret:
        raise ConfigError("BOT_MODE=webhook needs WEBHOOK_SECRET: 16 or more random letters, digits, _ or -")
    if len(secret) > 256 or not set(secret) <= SECRET_CHARACTERS:
        raise ConfigError("WEBHOOK_SECRET may hold only letters, digits, _ and -, at most 256 of them")
    return url, secret


def redis_url_of(env: Mapping[str, str]) -> str | None:
    raw = env.get("REDIS_URL", "").strip()
    if not raw:
        return None
    if urlsplit(raw).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("REDIS_URL must look like redis://host:6379/0 (or rediss:// or unix://)")
    return raw


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _on_off(env: Mapping[str, str], name: str, default: bool) -> bool:
    if not env.get(name, "").strip():
        return default
    return _flag(env, name)


def data_dir_of(env: Mapping[str, str]) -> Path:
    """``DATA_DIR``, or ``/data`` on Amvera (which sets ``AMVERA=1`` and mounts its persistent storage there)."""
    return Path(env.get("DATA_DIR", "").strip() or ("/data" if env.get("AMVERA") == "1" else "data"))


def _admins(env: Mapping[str, str]) -> frozenset[int]:
    raw = env.get("ADMIN_IDS", "").replace(";", ",")
    ids = set()
    for item in filter(None, (part.strip() for part in raw.split(","))):
        if not item.lstrip("-").isdigit():
            raise ConfigError(f"ADMIN_IDS must be Telegram user ids separated by commas, got {item!r}")
        ids.add(int(item))
    return frozenset(ids)


@dataclass(frozen=True)
class Config:
    """The bot's settings. ``repr`` never shows the token."""

    bot_token: str = field(repr=False)
    api_url: str | None = None
    api_local: bool = False
    mode: str = "polling"
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    host: str = "0.0.0.0"
    port: int = 8080
    redis_url: str | None = field(default=None, repr=False)  # may hold a password
    data_dir: Path = Path("data")
    weights_dir: Path = ROOT / "weights"
    onnx_dir: Path | None = None  # None: TensorFlow serves the verdict
    admin_ids: frozenset[int] = frozenset()
    workers: int = 1
    queue_limit: int = 64
    max_batch: int | None = None  # None: chosen by the backend (see bot.analysis.Analyst)
    rate_per_minute: int = 20
    rate_per_chat_minute: int = 30  # pictures per group chat per minute, all its members together
    feedback: bool = True  # the "Wrong?" button under verdicts
    drain_seconds: int = 20
    api_timeout: int = 30  # seconds a Bot API call may take before it is retried
    log_level: str = "INFO"

    @classmethod
    def for_bot_api(cls, env: Mapping[str, str] | None = None) -> Config:
        """Only what talking to the Bot API needs (token, server, timeout), for tools such as harvest.

        Raises:
            ConfigError: a missing or malformed token or server address.
        """
        env = os.environ if env is None else env
        api_url, api_local = _api_url(env), _flag(env, "TELEGRAM_API_LOCAL")
        return cls(
            bot_token=_token(env),
            api_url=api_url,
            api_local=api_local and api_url is not None,
            api_timeout=_positive_int(env, "TELEGRAM_TIMEOUT", 30),
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Read and check every setting (see .env.example).

        Raises:
            ConfigError: a missing or malformed setting, with what to do about it.
        """
        env = os.environ if env is None else env
        mode = env.get("BOT_MODE", "polling").strip().lower() or "polling"
        if mode not in MODES:
            raise ConfigError(f"BOT_MODE must be {' or '.join(MODES)}, got {mode!r}")
        webhook_url, webhook_secret = _webhook(env) if mode == "webhook" else (None, None)
        weights_dir = Path(env.get("WEIGHTS_DIR", "").strip() or ROOT / "weights")
        if not (weights_dir / "manifest.json").is_file():
            raise ConfigError(f"WEIGHTS_DIR {weights_dir} has no manifest.json: point it at the shipped weights/")
        data_dir = data_dir_of(env)
        onnx_raw = env.get("ONNX_DIR", "").strip()
        onnx_dir = (
            None if onnx_raw.lower() in ("off", "none", "0") else Path(onnx_raw) if onnx_raw else data_dir / "onnx"
        )
        log_level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
        api_url, api_local = _api_url(env), _flag(env, "TELEGRAM_API_LOCAL")
        if api_local and api_url is None:
            raise ConfigError("TELEGRAM_API_LOCAL needs TELEGRAM_API_URL: the address of your local Bot API server")
        return cls(
            bot_token=_token(env),
            api_url=api_url,
            api_local=api_local,
            mode=mode,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            host=env.get("WEB_HOST", "").strip() or "0.0.0.0",
            port=_positive_int(env, "PORT", 8080),
            redis_url=redis_url_of(env),
            data_dir=data_dir,
            onnx_dir=onnx_dir,
            weights_dir=weights_dir,
            admin_ids=_admins(env),
            workers=_positive_int(env, "ANALYSIS_WORKERS", 1),
            queue_limit=_positive_int(env, "QUEUE_LIMIT", 64),
            max_batch=_positive_int(env, "BATCH_MAX", 0) or None,
            rate_per_minute=_positive_int(env, "RATE_LIMIT_PER_MINUTE", 20),
            rate_per_chat_minute=_positive_int(env, "RATE_LIMIT_PER_CHAT_PER_MINUTE", 30),
            feedback=_on_off(env, "FEEDBACK", True),
            drain_seconds=_positive_int(env, "DRAIN_SECONDS", 20),
            api_timeout=_positive_int(env, "TELEGRAM_TIMEOUT", 30),
            log_level=log_level,
        )
