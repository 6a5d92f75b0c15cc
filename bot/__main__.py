"""python -m bot: start the Telegram bot (settings from the environment, see .env.example)."""

from __future__ import annotations

import asyncio
import os
import sys


def main() -> int:
    from bot.config import Config, ConfigError

    try:
        config = Config.from_env()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not for this log

    from bot.app import run
    from bot.logs import setup_logging

    setup_logging(config.log_level, config.bot_token)
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"error: DATA_DIR {config.data_dir} cannot be created: {error.strerror or error}", file=sys.stderr)
        return 2
    asyncio.run(run(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
