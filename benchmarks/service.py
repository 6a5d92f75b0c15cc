"""One fresh process: cold start, throughput through the bot's service layer, and peak memory.

Run by ``python -m benchmarks`` (it starts this as a child process, so start-up and memory are a new
process's), or alone:

    python -m benchmarks.service [--max-batch 8] [--intra 0 --inter 0] [--photos 100] [--onnx-dir data/onnx|off]

Prints one JSON object: seconds from process start to the models being ready (loaded and warmed up) and to
the first verdict; photos per second at 1, 8 and 40 concurrent checks through ``bot.analysis.Analyst``
(decode, metadata, ensemble, micro-batched where that is on); and the peak resident memory after ``--photos`` photos.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

# The parent passes the wall-clock time it started this process, so interpreter start-up counts too.
STARTED = float(os.environ.get("BENCH_T0") or time.time())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


async def throughput(analyst, photos: list[bytes], concurrency: int, total: int) -> float:
    """Photos per second with ``concurrency`` checks in flight until ``total`` are done."""
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            await analyst.check(photos[index % len(photos)])

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    return total / (time.perf_counter() - started)


async def measure(args) -> dict:
    if args.intra or args.inter:
        import tensorflow as tf  # only then: serving on ONNX Runtime does not import it

        tf.config.threading.set_intra_op_parallelism_threads(args.intra)
        tf.config.threading.set_inter_op_parallelism_threads(args.inter)

    from benchmarks.timing import memory_mib
    from benchmarks.verdict_latency import telegram_style_jpeg
    from bot.analysis import Analyst

    onnx_dir = None if args.onnx_dir == "off" else args.onnx_dir
    analyst = Analyst.load(args.weights, workers=1, queue_limit=1000, max_batch=args.max_batch, onnx_dir=onnx_dir)
    ready = time.time() - STARTED
    await analyst.check(telegram_style_jpeg(0))
    first = time.time() - STARTED
    photos = [telegram_style_jpeg(seed) for seed in range(16)]
    figures = {"ready_s": ready, "first_verdict_s": first, "backend": analyst.detector.backend}
    done = 1
    for concurrency in (1, 8, 40):
        total = max(2 * concurrency, 16)
        figures[f"photos_per_s_at_{concurrency}"] = await throughput(analyst, photos, concurrency, total)
        done += total
    while done < args.photos:
        await analyst.check(photos[done % len(photos)])
        done += 1
    figures["photos"] = done
    figures["memory_mib"] = memory_mib()
    figures["batch_sizes"] = sorted(set(analyst.batcher.batch_sizes))
    figures["tensorflow_imported"] = "tensorflow" in sys.modules
    analyst.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="weights")
    parser.add_argument("--max-batch", type=int, default=None, help="default: by backend, see Analyst")
    parser.add_argument("--intra", type=int, default=0, help="TensorFlow intra-op threads (0: its default)")
    parser.add_argument("--inter", type=int, default=0, help="TensorFlow inter-op threads (0: its default)")
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--onnx-dir", default="data/onnx", help='the ONNX conversion ("off": TensorFlow)')
    print(json.dumps(asyncio.run(measure(parser.parse_args()))))


if __name__ == "__main__":
    main()
