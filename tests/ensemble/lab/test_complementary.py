"""A member fitted against what the others miss: the offset in the loss, and others' logits that never leak."""

import numpy as np

from ensemble.heads import Recipe, TrainingSet, fit_head
from ensemble.lab.complementary import nested_offsets, telegram_twin
from tests.ensemble.test_heads import synthetic_training_set


def _data():
    """Two members' views of the same pictures (the first column of "a" carries the label), five folds."""
    data = synthetic_training_set(n=300, dims=6, folds=5)
    features = data.features["f"]
    return TrainingSet(**{**data.__dict__, "features": {"a": features[:, :3], "b": features[:, 3:]}})


def test_a_head_with_an_offset_fits_only_what_the_offset_leaves():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 2))
    truth = 2.0 * x[:, 0] + 1.0 * x[:, 1]
    labels = (rng.random(4000) < 1 / (1 + np.exp(-truth))).astype(int)
    alone = fit_head(x, labels, np.ones(4000), l2=1e-6, standardise=False)
    beside = fit_head(x, labels, np.ones(4000), l2=1e-6, standardise=False, offset=2.0 * x[:, 0])
    assert alone.kernel[0] > 1.5 and abs(beside.kernel[0]) < 0.25  # the offset already says it
    assert abs(beside.kernel[1] - 1.0) < 0.25


def test_the_others_logits_on_training_rows_never_come_from_a_head_that_saw_the_held_fold():
    data = _data()
    others = [Recipe("a", views=("telegram",), match_sizes=False), Recipe("b", views=("telegram",), match_sizes=False)]
    offsets = nested_offsets(data, others)[2]
    assert np.isnan(offsets[data.fold == 2]).all() and not np.isnan(offsets[data.fold != 2]).any()
    # the held fold's labels flipped: no offset moves (no head saw them)
    flipped = TrainingSet(**{**data.__dict__, "label": np.where(data.fold == 2, 1 - data.label, data.label)})
    np.testing.assert_array_equal(nested_offsets(flipped, others)[2], offsets)
    # a training fold's labels flipped: only the other training folds' offsets move, not that fold's own
    moved = TrainingSet(**{**data.__dict__, "label": np.where(data.fold == 0, 1 - data.label, data.label)})
    changed = nested_offsets(moved, others)[2]
    np.testing.assert_array_equal(changed[data.fold == 0], offsets[data.fold == 0])
    assert not np.allclose(changed[data.fold == 1], offsets[data.fold == 1])
    # and the offsets carry the others' signal
    assert ((offsets[data.fold != 2] > 0) == data.label[data.fold != 2]).mean() > 0.7


def test_a_small_view_takes_its_picture_s_telegram_row():
    data = synthetic_training_set(n=6)
    data = TrainingSet(
        **{
            **data.__dict__,
            "picture": np.array([10, 11, 12, 10, 12, 13]),
            "view": np.array(["telegram", "telegram", "telegram", "small", "small", "telegram"]),
        }
    )
    np.testing.assert_array_equal(telegram_twin(data), [0, 1, 2, 0, 2, 5])
