"""``python -m ensemble policies``: compare resize policies on out-of-fold data, never on test.

Only pictures that are not square can differ between policies (a square
picture gives the same input for crop, squash and multicrop), so the
comparison runs on the non-square train-split pictures, each predicted by the
member that held its fold out.
"""

from __future__ import annotations

import sys

import numpy as np

from ensemble import metrics
from ensemble.data import assign_folds, load_dataset
from ensemble.preprocess import RESIZE_POLICIES, ImageRejected, open_image
from ensemble.train import FOLD_SEED, FOLDS


def run_policies(data_dir: str, weights_dir: str) -> int:
    from ensemble.detector import Detector

    detector = Detector.from_dir(weights_dir)
    if any("held_out_fold" not in spec for spec in detector.members):
        print(
            "error: these members were fitted on every fold (their out-of-fold heads are not shipped); each "
            "member's view is chosen out of fold by `python -m ensemble.selection` instead",
            file=sys.stderr,
        )
        return 2
    samples = load_dataset(data_dir, split="train")
    folds = assign_folds(samples, FOLDS, FOLD_SEED)
    pictures, rows = [], []
    for index, sample in enumerate(samples):
        try:
            picture = open_image(sample.path)
        except ImageRejected:
            continue
        if picture.size[0] != picture.size[1]:
            pictures.append(picture)
            rows.append(index)
    print(f"{len(rows)} non-square train-split pictures", file=sys.stderr)
    labels = np.array([samples[i].label for i in rows])
    sources = [samples[i].source for i in rows]
    column_of_fold = {spec["held_out_fold"]: column for column, spec in enumerate(detector.members)}
    results, losses = {}, {}
    for policy in RESIZE_POLICIES[:3]:  # crop, squash, multicrop: what whole-network members were trained with
        logits = detector.member_logits(pictures, policy)
        out_of_fold = np.array([logits[row, column_of_fold[folds[i]]] for row, i in enumerate(rows)])
        probabilities = detector.calibrate(out_of_fold)
        results[policy] = metrics.table(probabilities, labels, sources, detector.band)["overall"]
        losses[policy] = metrics.log_losses(probabilities, labels)
    metrics.print_table(results, title="resize policy, out-of-fold, non-square pictures", first_column="policy")
    baseline = RESIZE_POLICIES[0]
    for policy in RESIZE_POLICIES[1:3]:
        low, high = paired_bootstrap_interval(losses[policy] - losses[baseline])
        print(
            f"logloss {policy} minus {baseline}: {np.mean(losses[policy] - losses[baseline]):+.4f}, "
            f"95% paired bootstrap interval [{low:+.4f}, {high:+.4f}]"
        )
    return 0


def paired_bootstrap_interval(differences: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean per-picture difference, resampling pictures (the same ones for both policies)."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(differences), size=(resamples, len(differences)))
    means = differences[draws].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))
