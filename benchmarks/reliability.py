"""Soak, overload and a crash, through the real ``python -m bot`` process and the fake Bot API on 127.0.0.1.

Each scenario starts the bot with the shipped weights, drives it like Telegram would, and returns what
happened; ``tests/bot/test_reliability.py`` asserts on the same functions, and this script prints figures:

  * soak: 100 users send 500 photos in all (1280x960 JPEG q80), at most ``window`` waiting at a time;
    every photo must get its verdict; the bot's resident memory while the first and the last 100 were
    answered shows whether it keeps growing;
  * overload: ``burst`` users send a photo at the same moment, far more than QUEUE_LIMIT; each gets a
    verdict or the "busy" answer, and photos sent afterwards get verdicts again;
  * crash: photos in progress when the process is killed with SIGKILL; after a restart on the same DATA_DIR,
    which were answered before the kill, after it, twice, or never.

    python -m benchmarks.reliability [--runs 3] [--soak 500] [--burst 300] [--crash 12]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.timing import memory_mib, percentiles
from benchmarks.verdict_latency import telegram_style_jpeg
from tests.bot.fake_telegram import FakeTelegram
from tests.bot.helpers import BotProcess, free_port, readyz, webhook_env

ROOT = Path(__file__).resolve().parents[1]
VERDICT = "Chance it was made by a neural network"
BUSY = "busy with many pictures"
WEBHOOK_SECRET = "reliability_secret-0123456789"


def verdicts(fake: FakeTelegram, user: int) -> int:
    return sum(VERDICT in (message.get("text") or "") for message in fake.sent_to(user))


def answers(fake: FakeTelegram, users) -> int:
    return sum(len(fake.sent_to(user)) for user in users)


def token_in(log: str, token: str) -> bool:
    """Whether the token, or its secret half alone, appears in a log."""
    return token in log or token.partition(":")[2] in log


def start_bot(fake: FakeTelegram, folder: Path, onnx_dir: Path | None, ready=None, **env: str) -> BotProcess:
    settings = {"LOG_LEVEL": "INFO", "RATE_LIMIT_PER_MINUTE": "1000", **env}
    if onnx_dir is not None:
        settings["ONNX_DIR"] = str(onnx_dir)
    return BotProcess(fake, folder / "data", folder / "bot.log", ready=ready, **settings)


@dataclass
class Soak:
    users: int
    photos: int
    window: int
    verdicts: int = 0
    other_answers: int = 0
    seconds: float = 0.0
    rss_first_100_mib: float = 0.0  # median resident memory while the first 100 photos were answered
    rss_last_100_mib: float = 0.0
    peak_rss_mib: float = 0.0
    log_errors: int = 0
    token_in_log: bool = False

    @property
    def lost(self) -> int:
        return self.photos - self.verdicts - self.other_answers


def soak(folder: Path, onnx_dir: Path | None, users: int = 100, photos: int = 500, window: int = 24) -> Soak:
    pictures = [telegram_style_jpeg(seed) for seed in range(10)]
    people = list(range(200_000, 200_000 + users))
    result = Soak(users, photos, window)
    samples: list[tuple[int, float]] = []  # (answers so far, RSS MiB)
    with FakeTelegram() as fake:
        bot = start_bot(fake, folder, onnx_dir)
        try:
            start = time.perf_counter()
            sent = 0
            while sent < photos or answers(fake, people) < photos:
                done = answers(fake, people)
                if sent < photos and sent - done < window:
                    fake.send_photo(people[sent % users], pictures[sent % len(pictures)])
                    sent += 1
                    continue
                samples.append((done, memory_mib(bot.process.pid)["VmRSS"]))
                if time.perf_counter() - start > 900:
                    break
                time.sleep(0.05)
            result.seconds = time.perf_counter() - start
            result.peak_rss_mib = memory_mib(bot.process.pid)["VmHWM"]
            result.verdicts = sum(verdicts(fake, user) for user in people)
            result.other_answers = answers(fake, people) - result.verdicts
        finally:
            bot.terminate(120)
    result.rss_first_100_mib = statistics.median(rss for done, rss in samples if done <= 100)
    result.rss_last_100_mib = statistics.median(rss for done, rss in samples if done > photos - 100)
    result.log_errors = bot.log.count(" ERROR ") + bot.log.count("Traceback")
    result.token_in_log = token_in(bot.log, fake.token)
    return result


@dataclass
class Overload:
    burst: int
    queue_limit: int
    verdicts: int = 0
    busy: int = 0
    unanswered: int = 0
    seconds_to_answer_all: float = 0.0
    latency_ms: dict = field(default_factory=dict)
    after_burst_verdicts: int = 0
    after_burst: int = 10


def overload(folder: Path, onnx_dir: Path | None, burst: int = 300, queue_limit: int = 64) -> Overload:
    photo = telegram_style_jpeg(7)
    crowd = list(range(300_000, 300_000 + burst))
    later = list(range(400_000, 400_010))
    result = Overload(burst, queue_limit)
    with FakeTelegram() as fake:
        bot = start_bot(fake, folder, onnx_dir, QUEUE_LIMIT=str(queue_limit))
        try:
            start = time.perf_counter()
            for user in crowd:
                fake.send_photo(user, photo)
            answered: dict[int, float] = {}
            while len(answered) < burst and time.perf_counter() - start < 600:
                for user in crowd:
                    if user not in answered and fake.sent_to(user):
                        answered[user] = time.perf_counter()
                time.sleep(0.01)
            result.seconds_to_answer_all = max(answered.values(), default=start) - start
            result.latency_ms = percentiles([(moment - start) * 1000 for moment in answered.values()])
            result.verdicts = sum(verdicts(fake, user) for user in crowd)
            result.busy = sum(BUSY in (m.get("text") or "") for user in crowd for m in fake.sent_to(user))
            result.unanswered = burst - len(answered)
            for user in later:  # the bot has recovered: ordinary photos get verdicts again
                fake.send_photo(user, photo)
            fake.wait_for_sync(lambda: all(fake.sent_to(user) for user in later), timeout=120, what="later answers")
            result.after_burst_verdicts = sum(verdicts(fake, user) for user in later)
        finally:
            bot.terminate(120)
    return result


@dataclass
class Crash:
    photos: int
    answered_before_kill: int = 0
    answered_after_restart: int = 0
    answered_twice: int = 0
    lost: int = 0
    confirmed_to_telegram_before_kill: bool = False
    token_in_log: bool = False


def crash(folder: Path, onnx_dir: Path | None, photos: int = 12, mode: str = "polling") -> Crash:
    """Kill the bot (SIGKILL) while half the photos still wait for their download, then restart it.

    In webhook mode each update is posted to the bot like Telegram does, and counts as confirmed once the bot
    answered the POST with 200.
    """
    people = list(range(500_000, 500_000 + photos))
    result = Crash(photos)
    port = free_port()
    settings = webhook_env(port, WEBHOOK_SECRET) if mode == "webhook" else {}
    ready = readyz(port) if mode == "webhook" else None
    with FakeTelegram() as fake:

        def confirmed() -> bool:  # polling: the bot asked for updates after these; webhook: every POST got 200
            return mode == "webhook" or not fake.pending_updates

        bot = start_bot(fake, folder, onnx_dir, ready=ready, **settings)
        try:
            fake.delay_next("getFile", 8, count=photos // 2)  # these are in progress when the kill comes
            for user in people:
                update = fake.send_photo(user, telegram_style_jpeg(user % 10))
                if mode == "webhook":
                    status = fake.post_update_to(f"http://127.0.0.1:{port}/telegram", update, WEBHOOK_SECRET)
                    assert status == 200, f"the bot answered the webhook POST with {status}"  # Telegram forgets it
            fake.wait_for_sync(
                lambda: confirmed() and sum(bool(verdicts(fake, u)) for u in people) >= photos // 2,
                timeout=120,
                what="half the verdicts and every update confirmed",
            )
            result.confirmed_to_telegram_before_kill = confirmed()
            result.answered_before_kill = sum(bool(verdicts(fake, user)) for user in people)
        finally:
            bot.kill()  # SIGKILL: no drain, no clean-up
        restarted = start_bot(fake, folder, onnx_dir, ready=ready, **settings)
        try:
            try:
                fake.wait_for_sync(lambda: all(verdicts(fake, u) for u in people), timeout=120, what="every verdict")
            except AssertionError:
                pass  # counted as lost below
            time.sleep(1)  # a second answer to the same photo would come now
        finally:
            restarted.terminate(120)
        counts = [verdicts(fake, user) for user in people]
    result.answered_after_restart = sum(bool(n) for n in counts) - result.answered_before_kill
    result.answered_twice = sum(n > 1 for n in counts)
    result.lost = sum(n == 0 for n in counts)
    result.token_in_log = token_in(restarted.log, fake.token)
    return result


def median_of(runs: list[dict]) -> dict:
    """Median of each number over the runs (min and max beside it when they differ); other values from run 1."""
    summary = {}
    for key, first in runs[0].items():
        values = [run[key] for run in runs]
        if isinstance(first, (int, float)) and not isinstance(first, bool):
            low, high = min(values), max(values)
            middle = statistics.median(values)
            summary[key] = middle if low == high else {"median": middle, "min": low, "max": high}
        elif isinstance(first, dict):
            summary[key] = median_of(values)
        else:
            summary[key] = first if all(value == first for value in values) else values
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--soak", type=int, default=500, help="photos in the soak (100 users)")
    parser.add_argument("--burst", type=int, default=300, help="photos sent at the same moment")
    parser.add_argument("--crash", type=int, default=12, help="photos in flight at the SIGKILL")
    parser.add_argument("--onnx-dir", default=str(ROOT / "data" / "onnx"))
    args = parser.parse_args()
    onnx_dir = Path(args.onnx_dir) if Path(args.onnx_dir, "onnx.json").exists() else None
    scenarios = {
        "soak": lambda folder: soak(folder, onnx_dir, photos=args.soak),
        "overload": lambda folder: overload(folder, onnx_dir, burst=args.burst),
        "crash_polling": lambda folder: crash(folder, onnx_dir, photos=args.crash),
        "crash_webhook": lambda folder: crash(folder, onnx_dir, photos=args.crash, mode="webhook"),
    }
    runs: dict[str, list[dict]] = {name: [] for name in scenarios}
    with tempfile.TemporaryDirectory() as scratch:
        for run in range(args.runs):
            for name, scenario in scenarios.items():
                folder = Path(scratch) / f"{name}-{run}"
                folder.mkdir()
                outcome = scenario(folder)
                figures = {**asdict(outcome), **({"lost": outcome.lost} if name == "soak" else {})}
                runs[name].append(figures)
                print(f"run {run + 1} {name}: {json.dumps(figures)}", flush=True)
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "runs": args.runs}
    report.update({name: median_of(results) for name, results in runs.items()})
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
