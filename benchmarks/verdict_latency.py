"""Verdict latency of the shipped ensemble on a Telegram-style photo (a benchmark, not a test).

Measures decode + preprocess + ensemble for a 1280x960 JPEG (quality 80) made
here, one request at a time, and prints p50/p95 per run plus the median, min
and max over runs.

    python -m benchmarks.verdict_latency [--runs 5] [--requests 30] [--weights weights]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.timing import percentiles, summarise, timed  # noqa: E402


def telegram_style_jpeg(seed: int = 0, width: int = 1280, height: int = 960, quality: int = 80) -> bytes:
    """A photo-like gradient with noise, as a JPEG (by default what Telegram makes of a photo)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / width, y / height, (x * y) / (width * height)], axis=-1) * 220
    pixels = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--weights", default="weights")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    from ensemble.detector import Detector

    started = time.perf_counter()
    detector = Detector.from_dir(args.weights)
    load_seconds = time.perf_counter() - started
    photo = telegram_style_jpeg()
    detector.judge_file(photo)  # trace the compiled function once

    runs = [percentiles(timed(lambda: detector.judge_file(photo), args.requests)) for _ in range(args.runs)]
    summary = summarise(runs)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"members: {', '.join(m['name'] for m in detector.members)}; ensemble load {load_seconds:.1f} s"
    )
    print(f"{args.runs} runs x {args.requests} sequential requests, 1280x960 JPEG q80, decode+preprocess+ensemble")
    print("| figure | median | min | max |\n|---|---|---|---|")
    for key, values in summary.items():
        print(f"| verdict {key} (ms) | {values['median']:.0f} | {values['min']:.0f} | {values['max']:.0f} |")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"runs": runs, "summary": summary, "load_seconds": load_seconds}, file, indent=2)


if __name__ == "__main__":
    main()
