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
    rows = metrics.table([0.9, 0.2, 0.55, 0.1], [1, 0, 1, 1], ["a", "a", "b", "b"], half_width=0.1)
    assert set(rows) == {"a", "b", "overall"}
    assert rows["overall"]["n"] == 4
    assert rows["overall"]["unsure"] == pytest.approx(0.25)
    assert rows["b"]["accuracy"] == pytest.approx(0.5)
    assert "| overall | 4 |" in metrics.format_table(rows)


def test_log_losses_per_prediction_match_the_definition():
    losses = metrics.log_losses(np.array([0.9, 0.9, 0.5]), np.array([1, 0, 1]))
    assert np.allclose(losses, [-np.log(0.9), -np.log(0.1), np.log(2)])
