import numpy as np

from ensemble.policies import paired_bootstrap_interval


def test_bootstrap_interval_tells_a_real_gain_from_noise():
    rng = np.random.default_rng(1)
    noise = rng.normal(0.0, 0.3, size=900)
    low, high = paired_bootstrap_interval(noise)
    assert low < 0 < high
    low, high = paired_bootstrap_interval(noise - 0.1)
    assert low < np.mean(noise - 0.1) < high < 0
    assert paired_bootstrap_interval(noise) == paired_bootstrap_interval(noise)  # seeded
