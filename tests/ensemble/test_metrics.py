import math

import numpy as np
import pytest

from ensemble import metrics


def test_auc_matches_hand_counted_pairs():
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    labels = np.array([0, 0, 1, 1])
    assert metrics.roc_auc(scores, labels) == pytest.approx(0.75)
    assert metrics.roc_auc(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)
    assert math.isnan(metrics.roc_auc(np.array([0.2, 0.3]), np.array([1, 1])))


def test_log_loss_of_a_coin_is_ln2():
    assert metrics.log_loss(np.full(10, 0.5), np.arange(10) % 2) == pytest.approx(math.log(2))


def test_table_has_every_source_and_overall():
    rows = metrics.table([0.9, 0.2, 0.55, 0.1], [1, 0, 1, 1], ["a", "a", "b", "b"], band=0.1)
    assert set(rows) == {"a", "b", "overall"}
    assert rows["overall"]["n"] == 4
    assert rows["overall"]["unsure"] == pytest.approx(0.25)
    assert rows["b"]["accuracy"] == pytest.approx(0.5)
    assert "| overall | 4 |" in metrics.format_table(rows)


def test_log_losses_per_prediction_match_the_definition():
    losses = metrics.log_losses(np.array([0.9, 0.9, 0.5]), np.array([1, 0, 1]))
    assert np.allclose(losses, [-np.log(0.9), -np.log(0.1), np.log(2)])


def test_an_asymmetric_band_counts_real_pictures_called_fake_on_its_fake_side():
    p = [0.95, 0.75, 0.65, 0.3, 0.1]
    y = [0, 0, 1, 1, 0]
    symmetric = metrics.row(p, y, 0.2)  # REAL <= 0.3, FAKE >= 0.7
    assert symmetric["real_called_fake"] == pytest.approx(2 / 3)
    assert symmetric["unsure"] == pytest.approx(1 / 5)
    guarded = metrics.row(p, y, (0.3, 0.9))  # FAKE only from 0.9
    assert guarded["real_called_fake"] == pytest.approx(1 / 3)
    assert guarded["unsure"] == pytest.approx(2 / 5)
