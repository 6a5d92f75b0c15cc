"""``python -m ensemble evaluate``: per-source and per-member metrics on a labelled folder."""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ensemble import metrics
from ensemble.data import load_dataset
from ensemble.preprocess import ImageRejected, open_image
from ensemble.views import telegram_view

CHUNK = 32


def _stratified_subset(samples, limit: int, seed: int = 0):
    """About ``limit`` samples with each (source, label) keeping its share; deterministic."""
    if limit >= len(samples):
        return samples
    rng = np.random.default_rng(seed)
    groups: dict = {}
    for sample in samples:
        groups.setdefault((sample.source, sample.label), []).append(sample)
    chosen = []
    for key in sorted(groups):
        members = groups[key]
        take = max(1, round(limit * len(members) / len(samples)))
        chosen += [members[i] for i in sorted(rng.choice(len(members), min(take, len(members)), replace=False))]
    return chosen


def _decode(sample):
    try:
        return open_image(sample.path)
    except ImageRejected as error:
        print(f"{sample.path}: {error}", file=sys.stderr)
        return None


SIZE_BANDS = ((0, 320, "long side < 320 px"), (320, 900, "320-899 px"), (900, 10**9, "900 px and more"))


def size_band(long_side: int) -> str:
    return next(name for low, high, name in SIZE_BANDS if low <= long_side < high)


def collect_logits(detector, samples, view: str, policy: str | None) -> tuple[np.ndarray, list[int], list[int]]:
    """Member logits for every readable sample; returns (logits, indices kept, long side of each as judged)."""
    rows, kept, sizes = [], [], []
    with ThreadPoolExecutor(2) as pool, tqdm(total=len(samples), desc=f"{view}", unit="img", mininterval=5) as bar:
        for start in range(0, len(samples), CHUNK):
            chunk = samples[start : start + CHUNK]
            pictures = list(pool.map(_decode, chunk))
            if view == "telegram":
                pictures = [None if p is None else telegram_view(p) for p in pictures]
            good = [i for i, p in enumerate(pictures) if p is not None]
            if good:
                rows.append(detector.member_logits([pictures[i] for i in good], policy))
                kept += [start + i for i in good]
                sizes += [max(pictures[i].size) for i in good]
            bar.update(len(chunk))
    width = len(detector.members)
    return (np.concatenate(rows) if rows else np.zeros((0, width))), kept, sizes


def group_name(sample) -> str:
    """The source a picture came from: a pool group, a ``modern`` game, an ``art`` generator, else its source."""
    return sample.group.removeprefix("pool:") or sample.source


def view_results(detector, samples, view: str, policy: str | None) -> dict:
    logits, kept, sizes = collect_logits(detector, samples, view, policy)
    labels = np.array([samples[i].label for i in kept])
    sources = [samples[i].source for i in kept]
    groups = [group_name(samples[i]) for i in kept]
    ensemble_p = detector.calibrate(logits.mean(axis=1))
    result = {
        "ensemble": metrics.table(ensemble_p, labels, sources, detector.band),
        "ensemble_by_group": metrics.table(ensemble_p, labels, groups, detector.band),
        # a model that learnt "big and sharp means FAKE" brands users' full-size photos: watch the big ones
        "ensemble_by_size": metrics.table(ensemble_p, labels, [size_band(s) for s in sizes], detector.band),
        "members": {},
        "_arrays": {"p": ensemble_p, "labels": labels, "sources": sources},
    }
    for column, spec in enumerate(detector.members):
        member_p = detector.calibrate(logits[:, column])
        result["members"][spec["name"]] = metrics.table(member_p, labels, sources, detector.band)
    return result


def run_evaluate(args) -> int:
    from ensemble.detector import Detector

    try:
        samples = load_dataset(args.data_dir, split=args.split)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not samples:
        print(f"error: no images in split {args.split!r}", file=sys.stderr)
        return 2
    if args.limit:
        samples = _stratified_subset(samples, args.limit)
    try:
        # the shipped ONNX graphs where they passed their check against TensorFlow, as served; else TensorFlow
        detector = Detector.from_dir(args.weights, shipped_onnx=not args.tensorflow)
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"error: cannot load the ensemble: {error}", file=sys.stderr)
        return 2
    print(f"members run on {'ONNX Runtime' if detector.backend == 'onnx' else 'TensorFlow'}", file=sys.stderr)
    policy = args.policy  # None: each member's own view group policy, as served
    views = ("plain", "telegram") if args.view == "both" else (args.view,)
    report = {"data_dir": str(args.data_dir), "split": args.split, "policy": policy, "views": {}}
    for view in views:
        result = view_results(detector, samples, view, policy)
        arrays = result.pop("_arrays")
        report["views"][view] = result
        metrics.print_table(
            result["ensemble"], title=f"ensemble, {view} view, {args.split} split, policy {policy or 'per member'}"
        )
        metrics.print_table(result["ensemble_by_group"], title=f"ensemble by source group, {view} view")
        metrics.print_table(result["ensemble_by_size"], title=f"ensemble by picture size, {view} view")
        member_rows = {name: table["overall"] for name, table in result["members"].items()}
        member_rows["ensemble"] = result["ensemble"]["overall"]
        metrics.print_table(member_rows, title=f"members (overall), {view} view", first_column="member")
        for source in sorted(k for k in result["ensemble"] if k != "overall"):
            rows = {name: table[source] for name, table in result["members"].items()}
            rows["ensemble"] = result["ensemble"][source]
            metrics.print_table(rows, title=f"members on {source}, {view} view", first_column="member")
        if args.report:
            from ensemble.report import write_plots

            write_plots(Path(args.report), view, arrays, detector.band)
    if args.report:
        Path(args.report).mkdir(parents=True, exist_ok=True)
        (Path(args.report) / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.write_manifest:
        manifest_path = Path(args.weights) / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        data_set = Path(args.data_dir).resolve().name
        manifest.setdefault("test_metrics", {})[data_set] = {
            "split": args.split,
            "policy": policy,
            "images": len(samples),
            **{view: report["views"][view]["ensemble"] for view in views},
        }
        for spec in manifest["members"]:
            spec.setdefault("test_metrics", {})[data_set] = {
                view: report["views"][view]["members"][spec["name"]] for view in views
            }
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return 0
