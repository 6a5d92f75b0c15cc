"""Labelled data sets: the real-vs-ai manifest, or REAL/ and FAKE/ folders."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LABELS = ("REAL", "FAKE")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # 1 = FAKE
    source: str
    group: str  # what must not be split across folds: a game or a generator
    split: str


def _group_of(row: dict[str, str]) -> str:
    if row.get("group"):  # the pool: one public source (a repository), kept whole
        return "pool:" + row["group"]
    source = row["source"]
    if source == "modern":  # modern/<game>/<label>/<n>.jpg: keep each game in one fold
        return "modern:" + row["path"].split("/")[1]
    if source == "art" and row["label"] == "FAKE":  # one generator per fold: leave-one-generator-out
        return "art:" + row.get("generator", "")
    # REAL art is spread over the folds.  Grouping it by style held out all
    # Pixiv-style illustrations at once, and that member put them below chance
    # (out-of-fold AUC 0.28): a fact about one missing style, not about generators.
    return ""


def load_dataset(data_dir: str | Path, split: str | None = None) -> list[Sample]:
    """Read a labelled data set.

    Args:
        data_dir: a folder with ``manifest.csv`` (columns path, label, source,
            split, and optionally generator), or with ``REAL/`` and ``FAKE/``
            subfolders (then the source is the folder name and every image is
            in the ``test`` split unless it lies under ``train/`` or ``test/``).
        split: keep only this split; None keeps all.

    Raises:
        ValueError: the folder has neither layout.
    """
    root = Path(data_dir)
    manifest = root / "manifest.csv"
    samples: list[Sample] = []
    if manifest.is_file():
        with manifest.open(newline="") as file:
            for row in csv.DictReader(file):
                if row["label"] not in LABELS:
                    raise ValueError(f"{manifest}: unknown label {row['label']!r}")
                samples.append(
                    Sample(
                        path=root / row["path"],
                        label=LABELS.index(row["label"]),
                        source=row.get("source") or root.name,
                        group=_group_of(row),
                        split=row.get("split") or "test",
                    )
                )
    else:
        samples = _from_folders(root)
    if not samples:
        raise ValueError(f"{root}: no manifest.csv and no REAL/ and FAKE/ folders with images")
    if split is not None:
        samples = [sample for sample in samples if sample.split == split]
    return samples


def _from_folders(root: Path) -> list[Sample]:
    samples = []
    candidates = [(root, "test")] + [(root / name, name) for name in ("train", "test") if (root / name).is_dir()]
    for base, split in candidates:
        for label_index, label in enumerate(LABELS):
            folder = base / label
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*")):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    samples.append(Sample(path, label_index, root.name, "", split))
    return samples


def manifest_hash(samples: list[Sample], root: str | Path) -> str:
    """SHA-256 over the sorted (relative path, label, source, split) rows used."""
    digest = hashlib.sha256()
    for sample in sorted(samples, key=lambda s: str(s.path)):
        relative = Path(sample.path).relative_to(root).as_posix()
        digest.update(f"{relative},{sample.label},{sample.source},{sample.split}\n".encode())
    return digest.hexdigest()


def assign_folds(samples: list[Sample], folds: int, seed: int) -> np.ndarray:
    """Fold index per sample, stratified by source and label.

    Samples that share a group (a ``modern`` game, an ``art`` generator) land
    in the same fold, so out-of-fold predictions on them come from a member
    that never saw that game or generator: a stand-in for the unseen
    generators users will send.
    """
    rng = np.random.default_rng(seed)
    fold_of = np.full(len(samples), -1, dtype=int)
    grouped: dict[str, list[int]] = {}
    loose: dict[tuple[str, int], list[int]] = {}
    for index, sample in enumerate(samples):
        if sample.group:
            grouped.setdefault(sample.group, []).append(index)
        else:
            loose.setdefault((sample.source, sample.label), []).append(index)
    # Largest groups first, each into the fold of that source that is smallest so far.
    load = {}
    for group in sorted(grouped, key=lambda name: (-len(grouped[name]), name)):
        members = grouped[group]
        # Balance per source and label mix, so no fold is all-FAKE for a source.
        key = (samples[members[0]].source, tuple(sorted({samples[i].label for i in members})))
        counts = load.setdefault(key, np.zeros(folds, dtype=int))
        target = int(np.argmin(counts + rng.random(folds) * 1e-3))
        fold_of[members] = target
        counts[target] += len(members)
    for key in sorted(loose):
        indices = np.array(loose[key])
        rng.shuffle(indices)
        fold_of[indices] = np.arange(len(indices)) % folds
    return fold_of
