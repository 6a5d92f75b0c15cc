"""``python -m ensemble predict``: CSV verdicts for files and folders."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from ensemble.data import IMAGE_SUFFIXES
from ensemble.preprocess import ImageRejected


def iter_inputs(paths: list[str]):
    """Named files as given; folders walked recursively for image files (hidden ones skipped)."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            for found in sorted(path.rglob("*")):
                hidden = any(part.startswith(".") for part in found.relative_to(path).parts)
                if found.is_file() and not hidden and found.suffix.lower() in IMAGE_SUFFIXES:
                    yield found
        else:
            yield path


PROGRESS_FROM = 20  # files; fewer finish before a bar would tell anything


def run_predict(paths: list[str], weights_dir: str) -> int:
    """CSV rows on stdout; reasons for unreadable files, and a progress bar for long runs, on stderr."""
    from tqdm import tqdm

    from ensemble.detector import Detector

    try:
        # ONNX Runtime with the conversion shipped in weights/onnx (TensorFlow only where it is missing).
        detector = Detector.from_dir(weights_dir, shipped_onnx=True)
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"error: cannot load the ensemble: {error}", file=sys.stderr)
        return 2
    files = list(iter_inputs(paths))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["path", "p_fake", "verdict"])
    failures = 0
    with tqdm(files, desc="judging", unit="file", file=sys.stderr, disable=len(files) < PROGRESS_FROM) as bar:
        for path in bar:
            if not path.exists():
                bar.write(f"{path}: no such file", file=sys.stderr)
                failures += 1
                continue
            try:
                judgement = detector.judge_file(path)
            except ImageRejected as error:
                bar.write(f"{path}: {error}", file=sys.stderr)
                failures += 1
                continue
            writer.writerow([str(path), f"{judgement.p_fake:.4f}", judgement.verdict])
            sys.stdout.flush()
    return 1 if failures else 0
