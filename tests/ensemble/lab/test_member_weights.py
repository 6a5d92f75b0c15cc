"""The member-weights probe: its designs hold the members' logits as asked, and a fit finds unequal weights."""

import numpy as np

from ensemble import calibration
from ensemble.calibration import fit_logistic
from ensemble.lab.member_weights import designs


def test_the_designs_hold_the_mean_each_member_and_their_slopes_by_size():
    members = {"a": np.array([1.0, 2.0]), "b": np.array([3.0, -2.0])}
    size = np.array([0.5, -1.0])
    columns = designs(members, size)
    np.testing.assert_allclose(columns["mean (shipped)"][0], [2.0, 0.0])
    np.testing.assert_allclose(np.stack(columns["a weight per member"]), [[1, 2], [3, -2], [1, 1]])
    slopes = columns["a weight and a slope by size per member"][3:]
    np.testing.assert_allclose(np.stack(slopes), [[0.5, -2.0], [1.5, 2.0]])
    np.testing.assert_allclose(columns["b alone"][0], members["b"])


def test_a_member_that_carries_no_signal_gets_no_weight():
    rng = np.random.default_rng(0)
    n = 20000
    signal, noise = rng.normal(0, 2, n), rng.normal(0, 2, n)
    labels = (rng.random(n) < calibration.sigmoid(signal)).astype(int)
    design = np.stack(designs({"signal": signal, "noise": noise}, np.zeros(n))["a weight per member"], axis=1)
    weight_signal, weight_noise, _ = fit_logistic(design, labels, np.ones(n))
    assert abs(weight_signal - 1.0) < 0.08 and abs(weight_noise) < 0.05
