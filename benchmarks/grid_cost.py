"""What coverage costs: ONNX Runtime time per 1280x960 photo for the two members at the picture's own pixel
scale, by how many squares they read and where their graph ends (a benchmark, not a test).

    python -m benchmarks.grid_cost [--runs 5] [--requests 10] [--threads 2]

Rows: the three diagonal squares (policy ``native``, what shipped before Detection v3), grids of up to 3x3 and
4x4 squares (``grid``); each with the full graph (every layer to ``top_activation``, as the members before v3
computed although their heads gave the last two taps no weight) and the graph cut after
``block11_expand_activation`` (the last layer their heads read), the squares in one batch, and the 4x4 grid
also one square per call. The graphs are the feature cache's (``ensemble.features.feature_runner``: the members'
pooled means and deviations, no head; the time does not depend on the head). Preprocessing (cutting and
normalising the squares) is timed apart.
"""

from __future__ import annotations

import argparse
import io
import os
import platform

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.timing import spread, timed  # noqa: E402
from benchmarks.verdict_latency import telegram_style_jpeg  # noqa: E402


def runner(taps, input_filter: str, threads: int):
    """The feature cache's ONNX Runtime function from (size, size, 3) squares to the pooled features of ``taps``."""
    from ensemble.features import BackboneView, feature_runner

    return feature_runner(BackboneView("timed", "lite0", 224, "grid", tuple(taps), "mean_std", input_filter), threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from ensemble import preprocess
    from ensemble.features import LITE0_TAPS

    picture = Image.open(io.BytesIO(telegram_style_jpeg())).convert("RGB")
    graphs = {
        "full graph": [runner(LITE0_TAPS, f, args.threads) for f in ("none", "highpass")],
        "cut after block11": [runner(LITE0_TAPS[:-2], f, args.threads) for f in ("none", "highpass")],
    }
    coverages = {"3 diagonal squares": ("native", 4), "grid up to 3x3": ("grid", 3), "grid up to 4x4": ("grid", 4)}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; onnxruntime threads "
          f"{args.threads}; {args.runs} runs x {args.requests} photos, 1280x960 JPEG q80; ms per photo")  # fmt: skip
    print("| coverage | squares | graph | preprocess | two members, squares batched | one square per call |")
    print("|---|---|---|---|---|---|")
    for label, (policy, side) in coverages.items():
        preprocess.GRID_SIDE = side
        try:
            views = preprocess.model_inputs(picture, 224, policy)
            prep = float(np.median(timed(lambda policy=policy: preprocess.model_inputs(picture, 224, policy), 5)))
            for graph, sessions in graphs.items():

                def both(batch=views, sessions=sessions):
                    for run in sessions:
                        run(batch)

                def one_by_one(views=views, sessions=sessions):
                    for square in views:
                        for run in sessions:
                            run(square[None])

                both()
                batched = spread([float(np.median(timed(both, args.requests))) for _ in range(args.runs)])
                single = "-"
                if side == 4 and policy == "grid":
                    one = spread([float(np.median(timed(one_by_one, args.requests))) for _ in range(args.runs)])
                    single = f"{one['median']:.0f} ({one['min']:.0f}-{one['max']:.0f})"
                print(f"| {label} | {len(views)} | {graph} | {prep:.1f} | "
                      f"{batched['median']:.0f} ({batched['min']:.0f}-{batched['max']:.0f}) | {single} |")  # fmt: skip
        finally:
            preprocess.GRID_SIDE = 4


if __name__ == "__main__":
    main()
