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


def run_predict(paths: list[str], weights_dir: str) -> int:
    from ensemble.detector import Detector

    try:
        detector = Detector.from_dir(weights_dir)
    except (FileNotFoundError, ValueError, KeyError) as error:
        print(f"error: cannot load the ensemble: {error}", file=sys.stderr)
        return 2
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["path", "p_fake", "verdict"])
    failures = 0
    for path in iter_inputs(paths):
        if not path.exists():
            print(f"{path}: no such file", file=sys.stderr)
            failures += 1
            continue
        try:
            judgement = detector.judge_file(path)
        except ImageRejected as error:
            print(f"{path}: {error}", file=sys.stderr)
            failures += 1
            continue
        writer.writerow([str(path), f"{judgement.p_fake:.4f}", judgement.verdict])
        sys.stdout.flush()
    return 1 if failures else 0
