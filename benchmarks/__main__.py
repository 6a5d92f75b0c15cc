"""The benchmark: our serving path against the original's way, every figure on this machine (not a test).

    python -m benchmarks [--runs 3] [--requests 20] [--json reports/benchmarks.json]

Figures, each the median of ``--runs`` runs with min and max:
  * verdict latency p50/p95, 1280x960 Telegram-style JPEG: decode + preprocess + ensemble, one at a time;
  * "Why?" latency p50/p95: Grad-CAM overlay encoded as PNG and as JPEG;
  * throughput in photos/s at 1, 8 and 40 concurrent checks through the bot's service layer
    (``bot.analysis.Analyst``: decode, metadata, ensemble), in a fresh process;
  * cold start: process start to models ready (loaded and warmed up), and to the first verdict;
  * peak resident memory after 100+ photos;
  * the original's way, side by side: every member loaded with Keras and called with ``model.predict`` on
    one image at a time, in sequence, with PIL resizing; photos/s over 40 photos (its throughput is the
    same at any concurrency, since it handles one photo after another);
  * candidates: TensorFlow (micro-batched by 8) instead of ONNX Runtime (one at a time) for the verdict,
    ONNX Runtime micro-batched by 8,
    TensorFlow with 2 intra-op / 1 inter-op threads, and Pillow's JPEG draft mode for large photos.

The serving path is ONNX Runtime with the graphs shipped in ``weights/onnx`` (converted into ``data/onnx`` only
where those do not match the weights).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.timing import percentiles, spread, summarise, timed  # noqa: E402
from benchmarks.verdict_latency import telegram_style_jpeg  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def original_way(weights: Path, photos: list[bytes]) -> dict[str, float]:
    """Keras ``model.predict`` per member, one image at a time, PIL resizing: photos/s and ms per photo."""
    from ensemble.classifier import load_member
    from ensemble.preprocess import normalise

    manifest = json.loads((weights / "manifest.json").read_text())
    members = [(load_member(weights, spec), int(spec["input_size"])) for spec in manifest["members"]]

    def judge(data: bytes) -> float:
        picture = Image.open(io.BytesIO(data)).convert("RGB")
        logits = []
        for model, size in members:
            batch = normalise(np.asarray(picture.resize((size, size))))[None]
            logits.append(float(model.predict(batch, verbose=0)[0, 0]))
        return float(np.mean(logits))

    judge(photos[0])  # Keras builds its predict function on the first call
    latencies = []
    started = time.perf_counter()
    for data in photos:
        one = time.perf_counter()
        judge(data)
        latencies.append((time.perf_counter() - one) * 1000)
    return {"photos_per_s": len(photos) / (time.perf_counter() - started), **percentiles(latencies)}


def fresh_process(weights: Path, *options: str) -> dict:
    """Run ``benchmarks.service`` in a new process; cold start is measured from just before it starts."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.service", "--weights", str(weights), *options],
        cwd=ROOT,
        env={**os.environ, "BENCH_T0": repr(time.time())},  # the child counts from here: interpreter start included
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def draft_mode(photo: bytes, size: int, repeats: int) -> dict[str, float]:
    """Decode + resize of a large JPEG, full decode versus Pillow's draft (DCT-scaled) decode."""
    from ensemble.preprocess import model_inputs

    def full() -> np.ndarray:
        picture = Image.open(io.BytesIO(photo))
        picture.load()
        return model_inputs(picture.convert("RGB"), size, "crop")

    def draft() -> np.ndarray:
        picture = Image.open(io.BytesIO(photo))
        picture.draft("RGB", (size, size))  # the smallest DCT scale still at least size on the short side
        picture.load()
        return model_inputs(picture.convert("RGB"), size, "crop")

    full(), draft()
    difference = float(np.abs(full() - draft()).max())
    return {
        "full_ms": statistics.median(timed(full, repeats)),
        "draft_ms": statistics.median(timed(draft, repeats)),
        "max_abs_input_difference": difference,
    }


def serving_only(args, detector, verdict: dict, why: dict, service: list[dict]) -> None:
    """``--serving-only``: the served path's figures, printed and written to ``args.json``."""
    figures = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "members": [member["name"] for member in detector.members],
        "verdict_backend": detector.backend,
        "verdict_ms": verdict,
        "why_ms": why,
        "throughput_photos_per_s": {
            f"at_{n}": spread([r[f"photos_per_s_at_{n}"] for r in service]) for n in (1, 8, 40)
        },
        "cold_start_s": {key: spread([r[f"{key}_s"] for r in service]) for key in ("ready", "first_verdict")},
        "peak_rss_mib": spread([run["memory_mib"]["VmHWM"] for run in service]),
        "photos_before_rss": service[0]["photos"],
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    print(f"{figures['machine']}; members {', '.join(figures['members'])}; median (min-max) of {args.runs} runs")
    rows = [("verdict p50 (ms)", verdict["p50"]), ("verdict p95 (ms)", verdict["p95"])]
    rows += [(f"Why? p50, {f.upper()} overlay (ms)", why[f]["p50"]) for f in ("png", "jpeg")]
    rows += [
        (f"photos/s at {n} concurrent (service layer)", figures["throughput_photos_per_s"][f"at_{n}"])
        for n in (1, 8, 40)
    ]
    rows += [(f"cold start to {k.replace('_', ' ')} (s)", v) for k, v in figures["cold_start_s"].items()]
    rows.append((f"peak RSS after {figures['photos_before_rss']} photos (MiB)", figures["peak_rss_mib"]))
    for name, value in rows:
        print(f"| {name} | {value['median']:.2f} | {value['min']:.2f} | {value['max']:.2f} |")
    print(f"written: {args.json}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="weights")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--json", default="reports/benchmarks.json")
    parser.add_argument("--onnx-dir", default="data/onnx", help="the ONNX conversion (made there if missing)")
    parser.add_argument(
        "--serving-only",
        action="store_true",
        help="only the served path (verdict, Why?, service layer): no original's way, no candidates",
    )
    args = parser.parse_args()
    weights = Path(args.weights)

    from ensemble.detector import Detector
    from explain.explainer import Explainer

    photo = telegram_style_jpeg()
    photos = [telegram_style_jpeg(seed) for seed in range(40)]
    detector = Detector.from_dir(weights, onnx_dir=args.onnx_dir)  # the serving path: ONNX Runtime
    judges = {"served": detector.judge_file}
    if not args.serving_only:
        judges["tensorflow"] = Detector.from_dir(weights).judge_file
    verdicts = {}
    for name, judge in judges.items():
        judge(photo)
        verdicts[name] = summarise([percentiles(timed(lambda judge=judge: judge(photo), args.requests))
                                    for _ in range(args.runs)])  # fmt: skip
    verdict = verdicts["served"]
    why = {}
    for image_format in ("png", "jpeg"):
        explainer = Explainer(detector, image_format=image_format)
        explainer.explain(photo)
        explain = explainer.explain
        why[image_format] = summarise(
            [percentiles(timed(lambda explain=explain: explain(photo), args.requests // 2)) for _ in range(args.runs)]
        )
    print("in-process figures done", file=sys.stderr)

    fresh_process(weights)  # makes data/onnx if it is not there yet (not timed)
    service = [fresh_process(weights) for _ in range(args.runs)]
    if args.serving_only:
        serving_only(args, detector, verdict, why, service)
        return
    original = [original_way(weights, photos) for _ in range(args.runs)]
    print("original's way done", file=sys.stderr)
    tensorflow = [fresh_process(weights, "--onnx-dir", "off") for _ in range(args.runs)]
    batched = [fresh_process(weights, "--max-batch", "8") for _ in range(args.runs)]
    threads = [fresh_process(weights, "--onnx-dir", "off", "--intra", "2", "--inter", "1") for _ in range(args.runs)]
    print("fresh processes done", file=sys.stderr)
    draft = draft_mode(telegram_style_jpeg(0, 4032, 3024, quality=90), 260, 5)  # a phone photo sent as a file

    def per(runs: list[dict], key: str) -> dict[str, float]:
        return spread([run[key] for run in runs])

    ours_40 = per(service, "photos_per_s_at_40")
    theirs = per(original, "photos_per_s")
    figures = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "members": [member["name"] for member in detector.members],
        "service_backend": service[0]["backend"],
        "verdict_backend": detector.backend,
        "verdict_ms": verdict,
        "verdict_ms_tensorflow": verdicts["tensorflow"],
        "why_ms": why,
        "throughput_photos_per_s": {f"at_{n}": per(service, f"photos_per_s_at_{n}") for n in (1, 8, 40)},
        "cold_start_s": {"ready": per(service, "ready_s"), "first_verdict": per(service, "first_verdict_s")},
        "peak_rss_mib": spread([run["memory_mib"]["VmHWM"] for run in service]),
        "photos_before_rss": service[0]["photos"],
        "original_way": {"photos_per_s": theirs, "ms_per_photo": summarise(original)},
        "speed_up_at_40": ours_40["median"] / theirs["median"],
        "candidates": {
            "tensorflow_instead_of_onnx_runtime": {
                f"at_{n}": per(tensorflow, f"photos_per_s_at_{n}") for n in (1, 8, 40)
            },
            "tensorflow_peak_rss_mib": spread([run["memory_mib"]["VmHWM"] for run in tensorflow]),
            "tensorflow_cold_start_ready_s": per(tensorflow, "ready_s"),
            "onnx_runtime_with_micro_batches_of_8": {
                f"at_{n}": per(batched, f"photos_per_s_at_{n}") for n in (1, 8, 40)
            },
            "onnx_batches_of_8_peak_rss_mib": spread([run["memory_mib"]["VmHWM"] for run in batched]),
            "tensorflow_with_2_intra_1_inter_threads": {
                f"at_{n}": per(threads, f"photos_per_s_at_{n}") for n in (1, 8, 40)
            },
            "pillow_draft_4032x3024": draft,
        },
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(figures, indent=2))

    def row(name: str, values: dict[str, float], digits: int = 0) -> None:
        print(f"| {name} | {values['median']:.{digits}f} | {values['min']:.{digits}f} | {values['max']:.{digits}f} |")

    print(f"machine: {figures['machine']}; {args.runs} runs; members: {', '.join(figures['members'])}")
    print("| figure | median | min | max |\n|---|---|---|---|")
    row(f"verdict p50, {detector.backend} (ms)", verdict["p50"])
    row(f"verdict p95, {detector.backend} (ms)", verdict["p95"])
    row("  candidate: verdict p50 on TensorFlow (ms)", verdicts["tensorflow"]["p50"])
    row("  candidate: verdict p95 on TensorFlow (ms)", verdicts["tensorflow"]["p95"])
    for image_format in ("png", "jpeg"):
        row(f"Why? p50, {image_format.upper()} overlay (ms)", why[image_format]["p50"])
        row(f"Why? p95, {image_format.upper()} overlay (ms)", why[image_format]["p95"])
    for n in (1, 8, 40):
        row(
            f"photos/s at {n} concurrent (service layer)",
            figures["throughput_photos_per_s"][f"at_{n}"],
            1,
        )
    candidates = figures["candidates"]
    for name, key in (
        ("TensorFlow instead of ONNX Runtime", "tensorflow_instead_of_onnx_runtime"),
        ("ONNX Runtime with micro-batches of 8", "onnx_runtime_with_micro_batches_of_8"),
        ("TensorFlow, 2 intra / 1 inter threads", "tensorflow_with_2_intra_1_inter_threads"),
    ):
        for n in (1, 8, 40):
            row(f"  candidate: {name}, at {n}", candidates[key][f"at_{n}"], 1)
    row("the original's way: photos/s (any concurrency)", theirs, 1)
    row("the original's way: ms per photo, p50", figures["original_way"]["ms_per_photo"]["p50"])
    row("cold start: process start to ready (s)", figures["cold_start_s"]["ready"], 1)
    row("cold start: process start to first verdict (s)", figures["cold_start_s"]["first_verdict"], 1)
    row(f"peak RSS after {figures['photos_before_rss']} photos (MiB)", figures["peak_rss_mib"])
    row("  candidate TensorFlow: peak RSS (MiB)", candidates["tensorflow_peak_rss_mib"])
    row(
        "  candidate ONNX Runtime batches of 8: peak RSS (MiB)",
        candidates["onnx_batches_of_8_peak_rss_mib"],
    )
    row("  candidate TensorFlow: cold start to ready (s)", candidates["tensorflow_cold_start_ready_s"], 1)
    print(f"speed-up at 40 concurrent over the original's way: {figures['speed_up_at_40']:.1f}x")
    print(
        f"Pillow draft on a 4032x3024 JPEG: {draft['full_ms']:.0f} ms full decode+resize, "
        f"{draft['draft_ms']:.0f} ms with draft; max input difference {draft['max_abs_input_difference']:.3f}"
    )
    print(f"written: {args.json}")


if __name__ == "__main__":
    main()
