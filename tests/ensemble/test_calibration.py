import numpy as np

from ensemble import calibration, metrics


def test_platt_recovers_a_known_scale_and_shift():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, 20000)
    labels = (rng.random(20000) < calibration.sigmoid(0.5 * logits - 0.3)).astype(int)
    scale, shift = calibration.fit_platt(logits, labels, np.ones(len(labels)))
    assert abs(scale - 0.5) < 0.05 and abs(shift + 0.3) < 0.08


def test_overconfident_logits_are_shrunk():
    rng = np.random.default_rng(1)
    true_logits = rng.normal(0, 1.5, 5000)
    labels = (rng.random(5000) < calibration.sigmoid(true_logits)).astype(int)
    scale, _ = calibration.fit_platt(4 * true_logits, labels, np.ones(5000))
    assert 0.2 < scale < 0.3
    before = metrics.log_loss(calibration.sigmoid(4 * true_logits), labels)
    after = metrics.log_loss(calibration.sigmoid(scale * 4 * true_logits), labels)
    assert after < before


def test_source_weights_give_each_source_the_same_total():
    weights = calibration.source_balanced_weights(["a"] * 90 + ["b"] * 10)
    assert np.isclose(weights[:90].sum(), weights[90:].sum())


def test_unsure_band_widens_when_confident_answers_are_wrong():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 4000)
    clean = np.where(labels == 1, 0.95, 0.05)
    assert calibration.unsure_half_width(clean, labels, np.ones(4000)) == 0.0
    noisy = np.clip(clean + rng.normal(0, 0.5, 4000), 0, 1)
    band = calibration.unsure_half_width(noisy, labels, np.ones(4000))
    assert 0.1 < band <= calibration.MAX_HALF_WIDTH


def test_verdict_words():
    assert calibration.verdict(0.9, 0.2) == "FAKE"
    assert calibration.verdict(0.1, 0.2) == "REAL"
    assert calibration.verdict(0.6, 0.2) == "UNSURE"


def test_the_fake_side_widens_until_few_real_pictures_are_called_fake():
    rng = np.random.default_rng(4)
    labels = np.repeat([0, 1], 500)
    # REAL pictures with a long tail towards FAKE: the symmetric band alone brands many of them
    p = np.where(labels == 1, rng.uniform(0.5, 1.0, 1000), rng.beta(2, 3, 1000))
    weights = np.ones(1000)
    half = 0.1
    fake_width = calibration.fake_half_width(p, labels, weights, half)
    assert fake_width > half
    real = labels == 0
    assert (p[real] >= 0.5 + fake_width).mean() <= calibration.TARGET_REAL_CALLED_FAKE
    assert (p[real] >= 0.5 + fake_width - 0.01).mean() > calibration.TARGET_REAL_CALLED_FAKE  # the smallest such
    assert calibration.verdict(0.5 + fake_width - 0.005, (0.5 - half, 0.5 + fake_width)) == "UNSURE"
    assert calibration.verdict(0.5 + fake_width, (0.5 - half, 0.5 + fake_width)) == "FAKE"
    assert calibration.verdict(0.35, (0.5 - half, 0.5 + fake_width)) == "REAL"
    fitted = calibration.fit_from_out_of_fold({"logit": np.log(p / (1 - p)), "label": labels, "source": ["s"] * 1000})
    assert fitted["unsure"]["fake_half_width"] >= fitted["unsure"]["half_width"]
