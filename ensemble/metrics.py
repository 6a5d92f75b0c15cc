"""Log-loss, accuracy, AUC and the UNSURE share, per source and overall."""

from __future__ import annotations

import sys

import numpy as np

from ensemble.calibration import edges

EPSILON = 1e-6


def log_losses(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Log-loss of each prediction."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), EPSILON, 1 - EPSILON)
    y = np.asarray(labels, dtype=np.float64)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(log_losses(probabilities, labels)))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half); NaN with one class."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def row(probabilities: np.ndarray, labels: np.ndarray, band) -> dict:
    """One row of metrics; ``band``: the UNSURE band, a half-width or ``(real_below, fake_from)``."""
    real_below, fake_from = edges(band)
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels).astype(int)
    unsure = (p > real_below) & (p < fake_from)
    confident = ~unsure
    correct = (p >= 0.5).astype(int) == y
    real = y == 0
    return {
        "n": int(len(p)),
        "logloss": log_loss(p, y),
        "accuracy": float(correct.mean()) if len(p) else float("nan"),
        "auc": roc_auc(p, y),
        "unsure": float(unsure.mean()) if len(p) else float("nan"),
        "confident_accuracy": float(correct[confident].mean()) if confident.any() else float("nan"),
        # what users hate most: a real picture branded FAKE (a confident FAKE verdict)
        "real_called_fake": float((p[real] >= fake_from).mean()) if real.any() else float("nan"),
    }


def table(probabilities, labels, sources, band) -> dict:
    """Metrics per source (sorted) and "overall"; ``band`` as in ``row``."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels)
    sources = np.asarray(sources)
    result = {name: row(p[sources == name], y[sources == name], band) for name in sorted(set(sources.tolist()))}
    result["overall"] = row(p, y, band)
    return result


COLUMNS = ("n", "logloss", "accuracy", "auc", "unsure", "confident_accuracy", "real_called_fake")


def format_table(rows: dict, title: str = "", first_column: str = "source") -> str:
    """A fixed-width text (and Markdown-compatible) table."""
    lines = []
    if title:
        lines.append(f"### {title}")
    header = [first_column, *COLUMNS]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for name, values in rows.items():
        cells = [name, str(values["n"])] + [f"{values[key]:.3f}" for key in COLUMNS[1:]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def print_table(rows: dict, title: str = "", first_column: str = "source", file=sys.stdout) -> None:
    print(format_table(rows, title, first_column) + "\n", file=file)
