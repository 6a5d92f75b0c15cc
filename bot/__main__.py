"""python -m bot: start the Telegram bot (settings from the environment, see .env.example).

``python -m bot feedback-export OUT.csv`` writes users' "Wrong?" answers instead (see ``bot.feedback_export``), and
``python -m bot harvest FEEDBACK.csv DIR`` downloads the pictures users agreed on (see ``bot.harvest``).
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys

# The bot's other commands: the word after ``python -m bot`` -> the module whose ``main(argv)`` runs it.
COMMANDS = {"feedback-export": "bot.feedback_export", "harvest": "bot.harvest"}

USAGE = """usage: python -m bot                                   start the bot (settings from the environment)
       python -m bot feedback-export OUT.csv             users' "Wrong?" answers, as CSV (no token needed)
       python -m bot harvest FEEDBACK.csv DIR [options]  download the pictures users agreed on into DIR/REAL, DIR/FAKE

The bot reads BOT_TOKEN (required), TELEGRAM_API_URL, BOT_MODE, DATA_DIR, REDIS_URL and more from the
environment; .env.example lists and explains them all. Each command answers --help."""


def main() -> int:
    command = sys.argv[1:2]
    if command in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if command and command[0] not in COMMANDS:
        print(f"{USAGE}\n\nerror: unknown command {command[0]!r}", file=sys.stderr)
        return 2
    from bot.aiogram_import import import_aiogram

    import_aiogram()  # before anything imports aiogram: its validators are built on first use (start-up time)
    if command:
        return importlib.import_module(COMMANDS[command[0]]).main(sys.argv[2:])
    from bot.config import Config, ConfigError

    try:
        config = Config.from_env()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not for this log

    from bot.logs import setup_logging

    setup_logging(config.log_level, config.bot_token)
    try:
        config.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"error: DATA_DIR {config.data_dir} cannot be created: {error.strerror or error}", file=sys.stderr)
        return 2
    if config.mode == "webhook":
        from bot.webhook import run_webhook

        asyncio.run(run_webhook(config))
    else:
        from bot.app import run_polling

        asyncio.run(run_polling(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
