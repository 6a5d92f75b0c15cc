"""PNG plots for ``evaluate --report``: ROC curves, reliability diagram, confusion matrix."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ensemble.calibration import edges as band_edges  # noqa: E402


def roc_points(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-scores)
    labels = labels[order].astype(bool)
    true_positive = np.concatenate([[0], np.cumsum(labels)]) / max(labels.sum(), 1)
    false_positive = np.concatenate([[0], np.cumsum(~labels)]) / max((~labels).sum(), 1)
    return false_positive, true_positive


def write_plots(folder: Path, view: str, arrays: dict, band) -> list[Path]:
    """Write roc_<view>.png, reliability_<view>.png and confusion_<view>.png into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    p, labels, sources = arrays["p"], np.asarray(arrays["labels"]), np.asarray(arrays["sources"])
    written = []

    figure, axes = plt.subplots(figsize=(5, 5))
    for name in [*sorted(set(sources.tolist())), "overall"]:
        mask = np.ones(len(p), bool) if name == "overall" else sources == name
        if len(set(labels[mask].tolist())) < 2:
            continue
        fpr, tpr = roc_points(p[mask], labels[mask])
        axes.plot(fpr, tpr, label=name, linewidth=2.5 if name == "overall" else 1.2)
    axes.plot([0, 1], [0, 1], ":", color="grey")
    axes.set(xlabel="false positive rate (REAL called FAKE)", ylabel="true positive rate", title=f"ROC, {view} view")
    axes.legend(loc="lower right")
    written.append(_save(figure, folder / f"roc_{view}.png"))

    figure, axes = plt.subplots(figsize=(5, 5))
    edges = np.linspace(0, 1, 11)
    bins = np.clip(np.digitize(p, edges) - 1, 0, 9)
    centres, observed, counts = [], [], []
    for index in range(10):
        mask = bins == index
        if mask.any():
            centres.append(p[mask].mean())
            observed.append(labels[mask].mean())
            counts.append(mask.sum())
    axes.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    axes.plot(centres, observed, "o-", label="ensemble")
    for x, y, n in zip(centres, observed, counts):
        axes.annotate(str(n), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    real_below, fake_from = band_edges(band)
    axes.axvspan(real_below, fake_from, color="orange", alpha=0.15, label="UNSURE band")
    axes.set(xlabel="predicted P(FAKE)", ylabel="observed share FAKE", title=f"Reliability, {view} view")
    axes.legend(loc="upper left")
    written.append(_save(figure, folder / f"reliability_{view}.png"))

    figure, axes = plt.subplots(figsize=(5, 3.5))
    verdicts = np.where(p >= fake_from, 2, np.where(p <= real_below, 0, 1))
    matrix = np.array([[np.sum((labels == truth) & (verdicts == said)) for said in range(3)] for truth in (0, 1)])
    axes.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, str(count), ha="center", va="center")
    axes.set_xticks(range(3), ["REAL", "UNSURE", "FAKE"])
    axes.set_yticks(range(2), ["REAL", "FAKE"])
    axes.set(xlabel="verdict", ylabel="truth", title=f"Confusion, {view} view")
    written.append(_save(figure, folder / f"confusion_{view}.png"))
    return written


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
