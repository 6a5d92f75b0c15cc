"""Verdict latency and throughput through the whole bot (a benchmark, not a test).

Starts the real ``python -m bot`` process with the shipped weights against the
fake Bot API server of the tests (tests/bot/fake_telegram.py) on 127.0.0.1, so
every answer goes over HTTP: getUpdates, getFile, the download, the models,
the SQLite records, aiogram-dialog and sendMessage.

Each run measures
  * sequential: ``--requests`` users send one Telegram-style photo each (1280x960
    JPEG, quality 80), one after another; latency is from the update being
    offered to the bot until the verdict message reaches the server;
  * concurrent: ``--crowd`` users send a photo at the same moment; it prints how
    many were answered, their latency p50/p95, and photos per second (the crowd
    size divided by the time until the last verdict).

It also reads the bot's peak resident memory (VmHWM) after its first 50 photos
and at the end.

    python -m benchmarks.bot_latency [--runs 3] [--requests 20] [--crowd 40]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from itertools import count
from pathlib import Path

from benchmarks.timing import memory_mib, percentiles, spread, summarise
from benchmarks.verdict_latency import telegram_style_jpeg
from tests.bot.fake_telegram import FakeTelegram
from tests.bot.helpers import BotProcess

ROOT = Path(__file__).resolve().parents[1]


def answered_at(fake: FakeTelegram, users: list[int], timeout: float) -> dict[int, float]:
    """perf_counter() time at which each user first got a message (polled every 2 ms)."""
    times: dict[int, float] = {}
    deadline = time.perf_counter() + timeout
    while len(times) < len(users) and time.perf_counter() < deadline:
        now = time.perf_counter()
        for user in users:
            if user not in times and fake.sent_to(user):
                times[user] = now
        time.sleep(0.002)
    return times


def sequential(fake: FakeTelegram, users, photo: bytes, requests: int) -> dict[str, float]:
    latencies = []
    for _ in range(requests):
        user = next(users)
        start = time.perf_counter()
        fake.send_photo(user, photo)
        done = answered_at(fake, [user], timeout=120)
        if user not in done:
            raise SystemExit(f"user {user} got no answer in 120 s")
        latencies.append((done[user] - start) * 1000)
    return percentiles(latencies)


def concurrent(fake: FakeTelegram, users, photo: bytes, crowd: int) -> dict[str, float]:
    group = [next(users) for _ in range(crowd)]
    start = time.perf_counter()
    for user in group:
        fake.send_photo(user, photo)
    done = answered_at(fake, group, timeout=600)
    latencies = [(done[user] - start) * 1000 for user in group if user in done]
    verdicts = sum("%" in fake.sent_to(user)[0].get("text", "") for user in group if user in done)
    elapsed = (max(done.values()) - start) if done else float("inf")
    return {
        **percentiles(latencies),
        "answered": len(done),
        "verdicts": verdicts,
        "photos_per_s": len(done) / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--crowd", type=int, default=40)
    args = parser.parse_args()

    photo = telegram_style_jpeg()
    users = count(100_000)
    with tempfile.TemporaryDirectory() as scratch, FakeTelegram() as fake:
        bot = BotProcess(
            fake,
            Path(scratch) / "data",
            Path(scratch) / "bot.log",
            LOG_LEVEL="WARNING",
            RATE_LIMIT_PER_MINUTE="1000",
            ONNX_DIR=str(ROOT / "data" / "onnx"),  # used only if weights/onnx did not match the weights
        )
        process = bot.process
        try:
            sequential(fake, users, photo, 50)  # warm the HTTP connections and the caches
            after_50 = memory_mib(process.pid)
            print(f"after 50 photos: peak RSS {after_50['VmHWM']:.0f} MiB, RSS now {after_50['VmRSS']:.0f} MiB")
            runs, crowds = [], []
            for run in range(args.runs):
                runs.append(sequential(fake, users, photo, args.requests))
                crowds.append(concurrent(fake, users, photo, args.crowd))
                print(
                    f"run {run + 1}: sequential p50 {runs[-1]['p50']:.0f} ms p95 {runs[-1]['p95']:.0f} ms | "
                    f"{args.crowd} at once: {crowds[-1]['answered']} answered ({crowds[-1]['verdicts']} verdicts), "
                    f"p50 {crowds[-1]['p50']:.0f} ms p95 {crowds[-1]['p95']:.0f} ms, "
                    f"{crowds[-1]['photos_per_s']:.2f} photos/s",
                    flush=True,
                )
            at_end = memory_mib(process.pid)
        finally:
            exit_code = bot.terminate(120)
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "photo": "1280x960 JPEG q80",
        "sequential_ms": summarise(runs),
        "concurrent": {
            "users": args.crowd,
            "answered_min": min(c["answered"] for c in crowds),
            "latency_ms": summarise(crowds),
            "photos_per_s": spread([c["photos_per_s"] for c in crowds]),
        },
        "memory_mib": {"after_50_photos": after_50, "at_end": at_end},
        "photos_in_all": 50 + args.runs * (args.requests + args.crowd),
        "exit_code_after_sigterm": exit_code,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
