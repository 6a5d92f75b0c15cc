"""The size-aware calibration probe: its logistic fit recovers known parameters, and folds calibrate each other."""

import numpy as np

from ensemble import calibration
from ensemble.calibration import fit_logistic
from ensemble.lab.size_calibration import cross_fitted, size_term


def _synthetic(n=20000, seed=0):
    rng = np.random.default_rng(seed)
    z, s = rng.normal(0, 2, n), rng.uniform(-3, 3, n)
    design = np.stack([z, np.ones(n), s], axis=1)
    labels = (rng.random(n) < calibration.sigmoid(design @ np.array([0.7, -0.3, 0.4]))).astype(int)
    return design, labels


def test_the_fit_recovers_the_parameters_a_sample_was_drawn_with():
    design, labels = _synthetic()
    params = fit_logistic(design, labels, np.ones(len(labels)))
    np.testing.assert_allclose(params, [0.7, -0.3, 0.4], atol=0.06)


def test_a_fold_is_calibrated_by_the_other_folds_only():
    design, labels = _synthetic(4000)
    folds = np.repeat([0, 1], 2000)
    p = cross_fitted(design, labels, np.ones(4000), folds)
    alone = calibration.sigmoid(design[:2000] @ fit_logistic(design[2000:], labels[2000:], np.ones(2000)))
    np.testing.assert_allclose(p[:2000], alone)


def test_size_is_log2_of_the_long_side_over_224_clipped():
    np.testing.assert_allclose(size_term(np.array([224, 448, 32, 100_000])), [0.0, 1.0, np.log2(32 / 224), 3.0])
