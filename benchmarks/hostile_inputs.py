"""What each awkward or hostile input costs to decode (a benchmark, not a test).

Every case of ``tests.corpus``, plus a few legitimately huge pictures just under the 64-megapixel limit, is
decoded with ``open_image`` and turned into model input (``model_inputs``, policy crop, 260 px) in a fresh child
process that imports only ``ensemble.preprocess`` (no TensorFlow). Printed per case, medians of ``--runs``
runs: the outcome (verdict-ready, or the one-line reason), milliseconds, the child's peak resident memory, and
that peak above a child that decoded nothing (the baseline row, which imports the same modules and plugins).

    python -m benchmarks.hostile_inputs [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from tests.corpus import CASES
from tests.images import encode, photo_like

ROOT = Path(__file__).resolve().parents[1]
SIZE = 260  # EfficientNet-Lite2's input side, the largest the ensemble builds (the shipped members use 224)
HUGE_SIDE = 7900  # 62.4 megapixels, just under ensemble.preprocess.MAX_PIXELS (64)

# VmHWM, not ru_maxrss: Linux starts a child's ru_maxrss at its parent's size, and this parent holds the huge
# pictures it made; VmHWM belongs to the memory the child got at exec.
CHILD = """
import json, sys, time
from PIL import Image
from ensemble.preprocess import ImageRejected, model_inputs, open_image
from benchmarks.timing import memory_mib

Image.init()  # every format plugin imported before the clock starts, as in a long-running process

path, size = sys.argv[1], int(sys.argv[2])
outcome = "(nothing decoded)"
start = time.perf_counter()
if path != "-":
    try:
        model_inputs(open_image(path), size, "crop")
        outcome = "verdict-ready"
    except ImageRejected as error:
        outcome = f"reason: {error}"
milliseconds = (time.perf_counter() - start) * 1000
peak_mib = memory_mib()["VmHWM"]
print(json.dumps({"outcome": outcome, "ms": milliseconds, "peak_mib": peak_mib, "tf": "tensorflow" in sys.modules}))
"""


def _tiled(side: int, mode: str = "RGB") -> Image.Image:
    """A side x side picture made of one noisy 256-px tile: photo-like to a decoder, cheap to make and to store."""
    tile = np.asarray(photo_like(256, 256, seed=11))
    reps = -(-side // 256)
    pixels = np.tile(tile, (reps, reps, 1))[:side, :side]
    return Image.fromarray(np.ascontiguousarray(pixels), "RGB").convert(mode)


def _huge_grey16(side: int) -> Image.Image:
    tile = np.asarray(photo_like(256, 256, seed=12).convert("L"), dtype=np.uint16) * 257
    reps = -(-side // 256)
    return Image.fromarray(np.ascontiguousarray(np.tile(tile, (reps, reps))[:side, :side]))


HUGE: list[tuple[str, str, Callable[[], bytes]]] = [
    (f"huge-{HUGE_SIDE}px-rgb-png", "big-rgb.png", lambda: encode(_tiled(HUGE_SIDE), "PNG", compress_level=1)),
    (f"huge-{HUGE_SIDE}px-rgba-png", "big-rgba.png", lambda: encode(_tiled(HUGE_SIDE, "RGBA"), "PNG")),
    (f"huge-{HUGE_SIDE}px-grey16-png", "big-grey16.png", lambda: encode(_huge_grey16(HUGE_SIDE), "PNG")),
    (f"huge-{HUGE_SIDE}px-jpeg", "big.jpg", lambda: encode(_tiled(HUGE_SIDE), "JPEG", quality=90)),
]


def decode_in_child(path: str) -> dict:
    command = [sys.executable, "-c", CHILD, path, str(SIZE)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=True)
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    if measured["tf"]:
        raise RuntimeError("the decoding child imported TensorFlow; its memory would not be the decoder's")
    return measured


def measure(path: str, runs: int) -> dict:
    results = [decode_in_child(path) for _ in range(runs)]
    outcomes = {result["outcome"] for result in results}
    return {
        "outcome": " | ".join(sorted(outcomes)),
        "ms": statistics.median(result["ms"] for result in results),
        "peak_mib": statistics.median(result["peak_mib"] for result in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"Python {platform.python_version()}, {platform.machine()}; medians of {args.runs} runs, fresh child each")
    with tempfile.TemporaryDirectory() as folder:
        rows = [("baseline (imports only)", "-", 0)]
        for case in CASES:
            path = case.write(Path(folder))
            rows.append((case.name, str(path), path.stat().st_size))
        for name, file_name, make in HUGE:
            path = Path(folder) / file_name
            path.write_bytes(make())
            rows.append((name, str(path), path.stat().st_size))
        measured = [(name, size, measure(path, args.runs)) for name, path, size in rows]
    baseline = measured[0][2]["peak_mib"]
    print(f"{'case':30} {'file':>10} {'outcome':60} {'ms':>8} {'peak MiB':>9} {'+base':>7}")
    for name, size, result in measured:
        file_size = f"{size / 2**20:.2f} MB" if size else "-"
        extra = result["peak_mib"] - baseline
        print(
            f"{name:30} {file_size:>10} {result['outcome'][:60]:60} {result['ms']:8.1f} "
            f"{result['peak_mib']:9.1f} {extra:7.1f}"
        )


if __name__ == "__main__":
    main()
