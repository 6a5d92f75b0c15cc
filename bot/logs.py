"""Logging set-up: one line per record, and the token never printed, whatever a library puts in a message."""

from __future__ import annotations

import logging
import sys

REDACTED = "<token>"


class RedactingFormatter(logging.Formatter):
    """Replaces the bot token (and its secret half alone) in every formatted record, tracebacks included."""

    def __init__(self, secrets: list[str], fmt: str) -> None:
        super().__init__(fmt)
        # The longest first, so the whole token is replaced before its secret half is.
        self.secrets = sorted({secret for secret in secrets if len(secret) >= 8}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


def setup_logging(level: str, token: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        RedactingFormatter([token, token.partition(":")[2]], "%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # aiohttp's access log and aiogram's per-update lines say nothing a reader of the log needs at INFO.
    logging.getLogger("aiogram.event").setLevel(max(logging.getLevelName(level), logging.WARNING))
