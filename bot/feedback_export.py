"""``python -m bot feedback-export OUT.csv``: every "Wrong?" answer, with the model's p_fake at the time.

Reads where the bot keeps its state: ``REDIS_URL`` when set, else ``DATA_DIR/feedback.sqlite3`` (no token needed).
The columns are ``bot.feedback.EXPORT_COLUMNS``; ``python -m bot harvest`` reads the file.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from bot.config import ConfigError, data_dir_of, redis_url_of
from bot.feedback import FeedbackStore, write_csv


async def export(out: Path, env: Mapping[str, str]) -> int:
    """Write the answers to ``out``; returns how many.

    Raises:
        ConfigError: no feedback store where the settings point.
    """
    redis_url = redis_url_of(env)
    if redis_url:
        from bot.redis_state import RedisFeedbackStore, connect

        redis = await connect(redis_url)
        try:
            records = await RedisFeedbackStore(redis).all()
        finally:
            await redis.aclose()
    else:
        path = data_dir_of(env) / "feedback.sqlite3"
        if not path.is_file():
            raise ConfigError(f"{path} does not exist: set DATA_DIR to the bot's data folder (or REDIS_URL)")
        store = FeedbackStore(path)
        try:
            records = await store.all()
        finally:
            store.close()
    return write_csv(records, out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot feedback-export", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the CSV file to write")
    args = parser.parse_args(argv)
    try:
        count = asyncio.run(export(args.out, os.environ))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot write {args.out}: {error.strerror or error}", file=sys.stderr)
        return 2
    print(f"{count} answers written to {args.out}", file=sys.stderr)
    return 0
