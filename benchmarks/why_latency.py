"""Why? heatmaps: Grad-CAM, Grad-CAM++, Faster Score-CAM, tap shares; the latency of the answer (a benchmark).

For each method: the Explainer's build time, the heatmap latency on a
1280x960 JPEG (q80), and the deletion faithfulness score
(``explain.explainer.deletion_score``: how much further the ensemble's FAKE
logit falls when the hottest 10% of the analysed area is masked than when a
random 10% is) on FAKE test-split pictures of the real-vs-ai data set. Then
the "Why?" answer's p50/p95 (decode, verdict, metadata, heatmap, PNG) with
the default method, per run and the median over runs, next to the same with
a JPEG overlay and to the verdict alone.

    python -m benchmarks.why_latency [--weights weights] [--data ../shared/datasets/real-vs-ai] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.timing import percentiles, summarise, timed  # noqa: E402
from benchmarks.verdict_latency import telegram_style_jpeg  # noqa: E402
from explain.explainer import DELETION_FILLS  # noqa: E402


def deletion_pictures(data_dir: Path, count: int, seed: int = 0):
    """FAKE test-split pictures (CIFAKE's 32 px ones left out), or None when the data set is absent."""
    from ensemble.data import load_dataset
    from ensemble.preprocess import ImageRejected, open_image

    if not (data_dir / "manifest.csv").is_file():
        return None
    fakes = [s for s in load_dataset(data_dir, split="test") if s.label == 1 and s.source != "cifake"]
    chosen = [fakes[i] for i in np.random.default_rng(seed).choice(len(fakes), min(count, len(fakes)), replace=False)]
    pictures = []
    for sample in chosen:
        try:
            pictures.append((sample.source, open_image(sample.path)))
        except ImageRejected:
            continue
    return pictures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="weights")
    parser.add_argument("--data", default="../shared/datasets/real-vs-ai", help="for the deletion scores")
    parser.add_argument("--methods", default="gradcam,gradcam++,scorecam")
    parser.add_argument("--scorecam-max-n", type=int, default=16, help="Faster Score-CAM channels per member")
    parser.add_argument("--pictures", type=int, default=16, help="FAKE test pictures for the deletion scores")
    parser.add_argument("--trials", type=int, default=4, help="random masks per picture")
    parser.add_argument("--fill", choices=DELETION_FILLS, default="mean", help="what masked pixels become")
    parser.add_argument("--method-requests", type=int, default=5, help="heatmaps timed per method")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=10, help="Why? answers per run")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    if not (Path(args.weights) / "manifest.json").is_file():
        print(f"error: {Path(args.weights) / 'manifest.json'} not found; train the ensemble first", file=sys.stderr)
        return 2

    from ensemble.detector import Detector
    from ensemble.preprocess import open_image
    from explain import overlay
    from explain.explainer import Explainer, deletion_score

    started = time.perf_counter()
    detector = Detector.from_dir(args.weights)
    load_seconds = time.perf_counter() - started
    photo = telegram_style_jpeg()
    picture = open_image(photo)
    shown = overlay.display_picture(picture)
    pictures = deletion_pictures(Path(args.data), args.pictures)
    detector.judge(picture)  # trace the compiled function once

    methods = []
    for method in args.methods.split(","):
        started = time.perf_counter()
        explainer = Explainer(detector, method=method, scorecam_max_n=args.scorecam_max_n)
        build_seconds = time.perf_counter() - started
        explainer.heatmap(picture, *shown.size)  # the first call builds tf-keras-vis's graph pieces
        heat_ms = timed(lambda explainer=explainer: explainer.heatmap(picture, *shown.size), args.method_requests)
        row = {"method": method, "build_s": build_seconds, "heatmap_ms": statistics.median(heat_ms)}
        if pictures:
            scores = [deletion_score(explainer, p, trials=args.trials, fill=args.fill).score for _, p in pictures]
            row |= {
                "deletion_mean": float(np.mean(scores)),
                "deletion_sem": float(np.std(scores, ddof=1) / np.sqrt(len(scores))) if len(scores) > 1 else 0.0,
                "deletion_positive": float(np.mean(np.array(scores) > 0)),
                "deletion_scores": scores,
            }
        methods.append(row)
        print(f"{method}: done", file=sys.stderr)

    explainer = Explainer(detector)  # the default, as the bot builds it
    explainer.explain(photo)
    verdict = percentiles(timed(lambda: detector.judge_file(photo), args.requests))
    as_jpeg = Explainer(detector, image_format="jpeg")
    as_jpeg.explain(photo)
    jpeg = percentiles(timed(lambda: as_jpeg.explain(photo), args.requests))
    runs = [percentiles(timed(lambda: explainer.explain(photo), args.requests)) for _ in range(args.runs)]
    summary = summarise(runs)

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"members: {', '.join(m['name'] for m in detector.members)}; ensemble load {load_seconds:.1f} s"
    )
    where = f"{len(pictures)} FAKE test pictures (no CIFAKE), {args.trials} random masks each" if pictures else None
    print(
        f"deletion score ({args.fill} fill): FAKE-logit drop, hottest 10% minus random 10% of the analysed area; "
        f"{where or 'no data'}"
    )
    print("| method | build (s) | heatmap, 1280x960 (ms) | deletion mean +- sem | deletion > 0 |")
    print("|---|---|---|---|---|")
    for row in methods:
        deletion = (
            f"{row['deletion_mean']:.2f} +- {row['deletion_sem']:.2f} | {row['deletion_positive']:.0%}"
            if "deletion_mean" in row
            else "n/a (data set absent) | n/a"
        )
        label = f"scorecam (max_N={args.scorecam_max_n})" if row["method"] == "scorecam" else row["method"]
        print(f"| {label} | {row['build_s']:.1f} | {row['heatmap_ms']:.0f} | {deletion} |")
    print(f"\n{args.runs} runs x {args.requests} sequential Why? answers (gradcam), 1280x960 JPEG q80")
    print("| figure | median | min | max |\n|---|---|---|---|")
    for key, values in summary.items():
        print(f"| Why? {key} (ms) | {values['median']:.0f} | {values['min']:.0f} | {values['max']:.0f} |")
    print(f"| Why? with a JPEG overlay, one run, p50 / p95 (ms) | {jpeg['p50']:.0f} / {jpeg['p95']:.0f} | | |")
    print(f"| verdict alone, one run, p50 / p95 (ms) | {verdict['p50']:.0f} / {verdict['p95']:.0f} | | |")
    if args.json:
        with open(args.json, "w") as file:
            figures = {"methods": methods, "runs": runs, "summary": summary, "verdict": verdict, "jpeg": jpeg}
            json.dump(figures | {"load_seconds": load_seconds}, file, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
