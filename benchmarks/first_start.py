"""The bot's very first start: a fresh DATA_DIR (nothing converted, no state), process start to answering.

    python -m benchmarks.first_start [--runs 3]

Each run starts the real ``python -m bot`` against the fake Bot API server on 127.0.0.1 with an empty data
folder and measures, from just before the process starts: the first long poll (the bot is ready: models
loaded, handlers registered) and the verdict for a first photo. It also reports whether anything was
converted (the ONNX graphs should come from weights/onnx) and the process's peak memory by then.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.reliability import VERDICT, start_bot
from benchmarks.timing import memory_mib
from benchmarks.verdict_latency import telegram_style_jpeg
from tests.bot.fake_telegram import FakeTelegram


def one_start() -> dict:
    with tempfile.TemporaryDirectory() as folder, FakeTelegram() as fake:
        started = time.perf_counter()
        bot = start_bot(fake, Path(folder), Path(folder) / "data" / "onnx")
        ready = time.perf_counter() - started
        try:
            fake.send_photo(1, telegram_style_jpeg())
            fake.wait_for_sync(lambda: any(VERDICT in (m.get("text") or "") for m in fake.sent_to(1)), timeout=60)
            first_verdict = time.perf_counter() - started
            memory = memory_mib(bot.process.pid)
        finally:
            bot.terminate()
        converted = (Path(folder) / "data" / "onnx").exists()
        return {"ready_s": ready, "first_verdict_s": first_verdict, "converted": converted, "memory_mib": memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_start() for _ in range(args.runs)]
    summary = {
        "machine": f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores",
        "runs": runs,
        "ready_s_median": statistics.median(r["ready_s"] for r in runs),
        "first_verdict_s_median": statistics.median(r["first_verdict_s"] for r in runs),
        "anything_converted": any(r["converted"] for r in runs),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
