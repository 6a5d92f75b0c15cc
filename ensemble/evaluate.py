"""``python -m ensemble evaluate``: per-source and per-member metrics on a labelled folder."""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ensemble import metrics
from ensemble.augment import telegram_view
from ensemble.data import load_dataset
from ensemble.preprocess import ImageRejected, open_image

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


def collect_logits(detector, samples, view: str, policy: str) -> tuple[np.ndarray, list[int]]:
    """Member logits for every readable sample; returns (logits, indices kept)."""
    rows, kept = [], []
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
            bar.update(len(chunk))
    width = len(detector.members)
    return (np.concatenate(rows) if rows else np.zeros((0, width))), kept


def view_results(detector, samples, view: str, policy: str) -> dict:
    logits, kept = collect_logits(detector, samples, view, policy)
    labels = np.array([samples[i].label for i in kept])
    sources = [samples[i].source for i in kept]
    ensemble_p = detector.calibrate(logits.mean(axis=1))
    result = {
        "ensemble": metrics.table(ensemble_p, labels, sources, detector.half_width),
        "members": {},
        "_arrays": {"p": ensemble_p, "labels": labels, "sources": sources},
    }
    for column, spec in enumerate(detector.members):
        member_p = detector.calibrate(logits[:, column])
        result["members"][spec["name"]] = metrics.table(member_p, labels, sources, detector.half_width)
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
        detector = Detector.from_dir(args.weights)
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"error: cannot load the ensemble: {error}", file=sys.stderr)
        return 2
    policy = args.policy or detector.policy
    views = ("plain", "telegram") if args.view == "both" else (args.view,)
    report = {"data_dir": str(args.data_dir), "split": args.split, "policy": policy, "views": {}}
    for view in views:
        result = view_results(detector, samples, view, policy)
        arrays = result.pop("_arrays")
        report["views"][view] = result
        metrics.print_table(result["ensemble"], title=f"ensemble, {view} view, {args.split} split, policy {policy}")
        member_rows = {name: table["overall"] for name, table in result["members"].items()}
        member_rows["ensemble"] = result["ensemble"]["overall"]
        metrics.print_table(member_rows, title=f"members (overall), {view} view", first_column="member")
        for source in sorted(k for k in result["ensemble"] if k != "overall"):
            rows = {name: table[source] for name, table in result["members"].items()}
            rows["ensemble"] = result["ensemble"][source]
            metrics.print_table(rows, title=f"members on {source}, {view} view", first_column="member")
        if args.report:
            from ensemble.report import write_plots

            write_plots(Path(args.report), view, arrays, detector.half_width)
    if args.report:
        Path(args.report).mkdir(parents=True, exist_ok=True)
        (Path(args.report) / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    if args.write_manifest:
        manifest_path = Path(args.weights) / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["test_metrics"] = {
            "split": args.split,
            "policy": policy,
            "images": len(samples),
            **{view: report["views"][view]["ensemble"] for view in views},
        }
        for spec in manifest["members"]:
            spec["test_metrics"] = {view: report["views"][view]["members"][spec["name"]] for view in views}
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return 0
