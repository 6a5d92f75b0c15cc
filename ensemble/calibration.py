"""Platt scaling of the ensemble logit and the UNSURE band, both from out-of-fold data."""

from __future__ import annotations

import numpy as np

# The band around 0.5 grows until the confident verdicts left outside it are
# wrong at most this often (source-balanced, out-of-fold, unseen-generator folds).
# 5% was tried first: on out-of-fold data where half the sources come from
# generators the member never saw, it hit the 0.45 cap and made 98% of
# verdicts UNSURE, which tells a user nothing; 15% is the first whole step
# below that cap (h = 0.28 for the first weights, 0.20 for the shipped ones).
TARGET_CONFIDENT_ERROR = 0.15
MAX_HALF_WIDTH = 0.45
# Being branded AI when one made the picture oneself is what users hate most: past the symmetric band, the
# FAKE side widens until at most this share of REAL pictures (sources weighted equally, out of fold) is
# called FAKE.
TARGET_REAL_CALLED_FAKE = 0.05
MAX_FAKE_HALF_WIDTH = 0.49


def edges(band) -> tuple[float, float]:
    """``(real_below, fake_from)``: REAL when p <= the first, FAKE when p >= the second.

    ``band`` is a half-width (a symmetric band around 0.5) or such a pair.
    """
    if isinstance(band, (tuple, list)):
        return float(band[0]), float(band[1])
    return 0.5 - float(band), 0.5 + float(band)


def sigmoid(values: np.ndarray) -> np.ndarray:
    # tanh form: no overflow for large |values|
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(values, dtype=np.float64)))


def source_balanced_weights(sources: list[str] | np.ndarray) -> np.ndarray:
    """Weights that give every source the same total, so CIFAKE cannot dominate."""
    sources = np.asarray(sources)
    weights = np.zeros(len(sources))
    names = np.unique(sources)
    for name in names:
        mask = sources == name
        weights[mask] = 1.0 / mask.sum()
    return weights * len(sources) / len(names)


def fit_logistic(design: np.ndarray, labels: np.ndarray, weights: np.ndarray, steps: int = 100) -> np.ndarray:
    """Fit p = sigmoid(design @ params) by weighted log-loss (damped Newton's method), starting from a slope of 1
    on the first column and 0 elsewhere.

    Returns:
        params, one per column of ``design``.
    """
    design = np.asarray(design, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)

    def loss(params: np.ndarray) -> float:
        margin = design @ params
        # log(1 + exp(m)) - y * m, written to stay finite for large |m|
        return float(np.sum(w * (np.logaddexp(0.0, margin) - y * margin)))

    params = np.zeros(design.shape[1])
    params[0] = 1.0
    current = loss(params)
    for _ in range(steps):
        p = sigmoid(design @ params)
        gradient = design.T @ (w * (p - y))
        hessian = (design * (w * p * (1 - p))[:, None]).T @ design + 1e-9 * np.eye(design.shape[1])
        step = np.linalg.solve(hessian, gradient)
        rate = 1.0
        while rate > 1e-6 and loss(params - rate * step) > current:
            rate /= 2
        params = params - rate * step
        previous, current = current, loss(params)
        if previous - current < 1e-12 * max(1.0, abs(previous)):
            break
    return params


def fit_platt(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray, steps: int = 100) -> tuple[float, float]:
    """Fit p = sigmoid(scale * logit + shift) by weighted log-loss (``fit_logistic``).

    Returns:
        (scale, shift).
    """
    z = np.asarray(logits, dtype=np.float64)
    scale, shift = fit_logistic(np.stack([z, np.ones_like(z)], axis=1), labels, weights, steps)
    return float(scale), float(shift)


def unsure_half_width(probabilities: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """Smallest half-width h (grid of 0.01) such that verdicts with |p - 0.5| >= h err at most TARGET_CONFIDENT_ERROR.

    Errors are weighted, so each source counts equally.  Capped at 0.45.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels)
    w = np.asarray(weights, dtype=np.float64)
    wrong = ((p >= 0.5).astype(int) != y).astype(float)
    for half_width in np.arange(0.0, MAX_HALF_WIDTH + 1e-9, 0.01):
        confident = np.abs(p - 0.5) >= half_width
        if w[confident].sum() == 0:
            break
        if (w[confident] * wrong[confident]).sum() / w[confident].sum() <= TARGET_CONFIDENT_ERROR:
            return float(round(half_width, 2))
    return MAX_HALF_WIDTH


def fake_half_width(probabilities, labels, weights, half_width: float) -> float:
    """Smallest FAKE-side half-width (grid of 0.01, at least ``half_width``) for which the weighted share of
    REAL pictures with p >= 0.5 + it is at most TARGET_REAL_CALLED_FAKE. Capped at MAX_FAKE_HALF_WIDTH."""
    p = np.asarray(probabilities, dtype=np.float64)
    real = np.asarray(labels) == 0
    w = np.asarray(weights, dtype=np.float64)[real]
    for width in np.arange(half_width, MAX_FAKE_HALF_WIDTH + 1e-9, 0.01):
        if (w * (p[real] >= 0.5 + width)).sum() / w.sum() <= TARGET_REAL_CALLED_FAKE:
            return float(round(width, 2))
    return MAX_FAKE_HALF_WIDTH


def verdict(p_fake: float, band) -> str:
    """FAKE, REAL or UNSURE for a calibrated probability (``band``: see ``edges``)."""
    real_below, fake_from = edges(band)
    if p_fake >= fake_from:
        return "FAKE"
    if p_fake <= real_below:
        return "REAL"
    return "UNSURE"


def band_of(unsure: dict) -> tuple[float, float]:
    """``edges`` of a manifest's ``unsure`` entry (``fake_half_width`` defaults to the symmetric one)."""
    return 0.5 - unsure["half_width"], 0.5 + unsure.get("fake_half_width", unsure["half_width"])


def fit_from_out_of_fold(oof: dict) -> dict:
    """Platt scaling and the UNSURE band from out-of-fold predictions.

    Args:
        oof: arrays ``logit``, ``label`` and ``source`` (as in ``weights/oof_predictions.npz``).

    Returns:
        ``calibration`` and ``unsure`` entries for the manifest, and the
        calibrated out-of-fold ``probabilities``.
    """
    logits = np.asarray(oof["logit"], dtype=np.float64)
    labels = np.asarray(oof["label"])
    weights = source_balanced_weights(oof["source"])
    scale, shift = fit_platt(logits, labels, weights)
    probabilities = sigmoid(scale * logits + shift)
    half_width = unsure_half_width(probabilities, labels, weights)
    fake_width = fake_half_width(probabilities, labels, weights, half_width)
    return {
        "calibration": {
            "method": "platt",
            "scale": scale,
            "shift": shift,
            "fitted_on": "out-of-fold logits (oof_predictions.npz), sources weighted equally",
        },
        "unsure": {
            "half_width": half_width,
            "fake_half_width": fake_width,
            "rule": (
                "REAL when p_fake <= 0.5 - half_width, FAKE when p_fake >= 0.5 + fake_half_width, else UNSURE. "
                "half_width is the smallest multiple of 0.01 for which out-of-fold verdicts outside the symmetric "
                f"band err at most {TARGET_CONFIDENT_ERROR:.0%} (capped at {MAX_HALF_WIDTH}); fake_half_width, at "
                f"least half_width, the smallest for which at most {TARGET_REAL_CALLED_FAKE:.0%} of out-of-fold "
                f"REAL pictures are called FAKE (capped at {MAX_FAKE_HALF_WIDTH}); sources weighted equally"
            ),
        },
        "probabilities": probabilities,
    }
