"""Linear heads on cached features: the fit, the sample weights and out-of-fold logits that never leak."""

import numpy as np
import pytest

from ensemble.heads import (
    SIZE_BINS,
    Recipe,
    TrainingSet,
    fit_full,
    fit_head,
    nuisances,
    out_of_fold,
    sample_weights,
    tap_columns,
    used_columns,
)


def synthetic_training_set(n=240, dims=32, seed=0, informative=True, folds=4):
    rng = np.random.default_rng(seed)
    label = np.arange(n) % 2
    features = rng.normal(size=(n, dims))
    if informative:
        features[:, 0] += 2.0 * (label - 0.5)
    sources = np.where(np.arange(n) % 3 == 0, "games", "photos")
    return TrainingSet(
        picture=np.arange(n),
        view=np.full(n, "telegram"),
        label=label,
        source=sources,
        group=sources,
        # mostly big FAKE and small REAL pictures: the pool's size bias
        long_side=np.where((label == 1) == (rng.random(n) < 0.8), 1000, 250),
        fold=rng.permutation(n) % folds,
        features={"f": features},
    )


def test_a_head_learns_the_informative_direction_on_raw_features():
    data = synthetic_training_set()
    raw = data.features["f"] * 50.0 + 300.0  # the head must undo any scale and offset itself
    head = fit_head(raw, data.label, np.ones(len(raw)), l2=1e-3)
    accuracy = ((head.logits(raw) > 0) == data.label).mean()
    assert accuracy > 0.8
    assert np.argmax(np.abs(head.kernel * raw.std(axis=0))) == 0


def test_out_of_fold_logits_never_come_from_a_head_that_saw_the_row():
    # Pure noise with more dimensions than a fold's rows: a head memorises what it saw (in-sample accuracy 1),
    # so out-of-fold accuracy near chance shows that no row was scored by a head trained on it.
    data = synthetic_training_set(n=200, dims=300, informative=False)
    recipe = Recipe("f", l2=1e-6, views=("telegram",), match_sizes=False)
    head = fit_head(data.features["f"], data.label, np.ones(200), l2=1e-6)
    assert ((head.logits(data.features["f"]) > 0) == data.label).mean() == 1.0
    oof = out_of_fold(data, recipe, folds=4)
    assert not np.isnan(oof).any()
    assert abs(((oof > 0) == data.label).mean() - 0.5) < 0.15


def test_weights_balance_the_classes_and_match_their_sizes():
    data = synthetic_training_set()
    everything = np.ones(len(data.label), dtype=bool)
    plain = sample_weights(data, everything, Recipe("f", match_sizes=False))
    assert np.isclose(plain[data.label == 0].sum(), plain[data.label == 1].sum())
    matched = sample_weights(data, everything, Recipe("f"))
    bins = np.digitize(data.long_side, SIZE_BINS[1:-1])
    assert len(np.unique(bins)) == 2
    for weights, matched_sizes in ((plain, False), (matched, True)):
        real = [weights[(data.label == 0) & (bins == b)].sum() for b in np.unique(bins)]
        fake = [weights[(data.label == 1) & (bins == b)].sum() for b in np.unique(bins)]
        # matched: in every size bin REAL and FAKE weigh the same, so size tells the classes nothing
        assert np.allclose(real, fake, rtol=0.05) == matched_sizes
    big_fake = (data.label == 1) & (data.long_side == 1000)
    assert (matched[big_fake] < plain[big_fake]).all()


def test_source_shares_and_rows_outside_the_mask():
    data = synthetic_training_set()
    mask = data.fold != 0
    recipe = Recipe("f", match_sizes=False, shares={"games": 0.75, "photos": 0.25})
    weights = sample_weights(data, mask, recipe)
    assert (weights[~mask] == 0).all()
    games = weights[mask & (data.source == "games")].sum() / weights[mask].sum()
    assert 0.6 < games < 0.9  # shares, then class balance, decide; not the sources' sizes


# Feature-cache index rows: one pool group held out as test; real-vs-ai's fixed split shares its sources.
CACHE_ROWS = [
    {"split": "train", "group": "pool:a", "source": "games"},
    {"split": "test", "group": "pool:b", "source": "games"},
    {"split": "test", "group": "", "source": "cifake"},
    {"split": "train", "group": "", "source": "cifake"},
]


def test_held_out_groups_are_the_test_groups_no_training_row_comes_from():
    from ensemble.heads import held_out_groups

    assert held_out_groups(CACHE_ROWS) == ["pool:b"]


def test_remembered_out_of_fold_logits_are_reused_only_for_the_same_rows_and_recipe(tmp_path, monkeypatch):
    import ensemble.heads as heads

    data = synthetic_training_set()
    recipe = Recipe("f", views=("telegram",))
    first = heads.remembered_out_of_fold(data, recipe, tmp_path)
    fits = []
    monkeypatch.setattr(heads, "out_of_fold", lambda d, r: fits.append(r) or out_of_fold(d, r))
    assert np.array_equal(heads.remembered_out_of_fold(data, recipe, tmp_path), first)
    assert fits == []  # read back, not fitted again
    heads.remembered_out_of_fold(data, Recipe("f", views=("telegram",), l2=1.0), tmp_path)
    data.features["f"] = data.features["f"] + 1.0  # the view cached again, with other features
    heads.remembered_out_of_fold(data, recipe, tmp_path)
    data.fold = np.roll(data.fold, 1)  # another fold seed
    heads.remembered_out_of_fold(data, recipe, tmp_path)
    assert len(fits) == 3
    assert len(list(tmp_path.glob("*.npy"))) == 4 and not list(tmp_path.glob("*.tmp.npy"))


def test_a_skipped_tap_gets_no_weight_and_its_signal_is_not_learnt():
    view = "lite0_224_native_highpass_std"  # eight taps, means then deviations: 8,192 features
    used = used_columns(Recipe(view, skip_taps=("top_activation",)))
    assert len(used) == 8192 and used.sum() == 8192 - 2 * 1280
    assert not used[4096 - 1280 : 4096].any() and not used[-1280:].any() and used[:32].all()
    data = synthetic_training_set(n=200, dims=8192, informative=False)
    data.features = {view: data.features["f"]}
    data.features[view][:, 2816:4096] += 0.5 * (data.label[:, None] - 0.5)  # only the top layer's means differ
    telegram = dict(views=("telegram",), match_sizes=False)
    reading, skipping = Recipe(view, **telegram), Recipe(view, skip_taps=("top_activation",), **telegram)
    for recipe, chance in ((reading, False), (skipping, True)):
        accuracy = ((out_of_fold(data, recipe, folds=4) > 0) == data.label).mean()
        assert (abs(accuracy - 0.5) < 0.15) == chance, accuracy
    head = fit_full(data, skipping)
    assert head.kernel.shape == (8192,) and (head.kernel[~used] == 0).all() and (head.kernel[used] != 0).all()
    with pytest.raises(ValueError, match="taps no"):
        used_columns(Recipe(view, skip_taps=("block0_expand_activation",)))


def test_a_per_tap_head_is_the_mean_of_one_head_per_read_tap():
    view = "lite0_224_native_taps_std"
    recipe = Recipe(view, views=("telegram",), match_sizes=False, skip_taps=("top_activation",), per_tap=True)
    columns = tap_columns(recipe)
    assert len(columns) == 7 and [len(c) for c in columns][:2] == [64, 192]  # stem 32 means + 32 deviations
    assert np.array_equal(np.sort(np.concatenate(columns)), np.flatnonzero(used_columns(recipe)))
    data = synthetic_training_set(n=240, dims=8192, informative=False, seed=3)
    data.features = {view: data.features["f"]}
    data.features[view][:, 40] += 2.0 * (data.label - 0.5)  # a block1 mean carries the label
    head = fit_full(data, recipe)
    weights = sample_weights(data, np.ones(240, bool), recipe)
    alone = [fit_head(data.features[view][:, tap], data.label, weights, recipe.l2) for tap in columns]
    expected = np.mean([one.logits(data.features[view][:, tap]) for one, tap in zip(alone, columns)], axis=0)
    np.testing.assert_allclose(head.logits(data.features[view]), expected, atol=1e-8)
    assert (head.kernel[~used_columns(recipe)] == 0).all()
    # the informative layer's head decides most, but every read layer has a say
    assert np.abs(head.kernel[columns[1]]).max() == np.abs(head.kernel).max()
    whole = fit_full(data, Recipe(view, views=("telegram",), match_sizes=False, skip_taps=("top_activation",)))
    assert not np.allclose(whole.kernel, head.kernel)


def _within_class_covariance(logits, labels, weights, variable, classes=(0, 1)):
    total = 0.0
    for label in classes:
        rows = labels == label
        w = weights[rows] / weights[rows].sum()
        total += np.sum(w * (logits[rows] - w @ logits[rows]) * (variable[rows] - w @ variable[rows]))
    return total


def test_a_size_per_class_invariant_head_follows_size_in_neither_class():
    data = synthetic_training_set(n=600, dims=16)
    size = np.log(data.long_side)
    # size pushes REAL and FAKE features in opposite directions: summed over the classes it could cancel
    data.features["f"][:, 1] += 1.5 * (size - size.mean()) * np.where(data.label == 0, 1.0, -0.5)
    telegram = dict(views=("telegram",), match_sizes=False)
    weights = sample_weights(data, np.ones(600, bool), Recipe("f", **telegram))
    covariances = {}
    for invariant in ((), ("size",), ("size-per-class",)):
        logits = fit_full(data, Recipe("f", invariant=invariant, **telegram)).logits(data.features["f"])
        covariances[invariant] = [_within_class_covariance(logits, data.label, weights, size, (c,)) for c in (0, 1)]
        assert ((logits > 0) == data.label).mean() > 0.75
    assert max(abs(c) for c in covariances[()]) > 0.05
    assert abs(sum(covariances[("size",)])) < 1e-6  # the two classes together only
    assert max(abs(c) for c in covariances[("size",)]) > 1e-3  # each class alone still follows size
    assert max(abs(c) for c in covariances[("size-per-class",)]) < 1e-6
    columns = nuisances(data, np.ones(600, bool), ("size-per-class",))
    assert columns.shape == (600, 2) and not columns[data.label == 1, 0].any() and not columns[data.label == 0, 1].any()


def test_an_invariant_head_does_not_follow_size_or_the_real_source_inside_a_class():
    data = synthetic_training_set(n=600, dims=16)
    size = np.log(data.long_side)
    real_group = np.where(data.label == 0, np.where(np.arange(600) % 4 < 2, "photos_a", "photos_b"), "gallery")
    data.group = real_group
    data.features["f"][:, 1] += 1.5 * (size - size.mean())  # size, which the pool's bias ties to the label
    data.features["f"][:, 2] += 2.0 * (real_group == "photos_a")  # which REAL source a picture is from
    telegram = dict(views=("telegram",), match_sizes=False)
    plain, invariant = Recipe("f", **telegram), Recipe("f", invariant=("size", "real-sources"), **telegram)
    weights = sample_weights(data, np.ones(600, bool), plain)
    real = data.label == 0
    follows = {}
    for recipe in (plain, invariant):
        logits = fit_full(data, recipe).logits(data.features["f"])
        mean = {g: np.average(logits[real_group == g], weights=weights[real_group == g]) for g in set(real_group)}
        in_a = mean["photos_a"] - mean["photos_b"]  # weighed as the head's fit weighs the rows
        follows[recipe.invariant] = (_within_class_covariance(logits, data.label, weights, size), in_a)
        assert ((logits > 0) == data.label).mean() > 0.75  # the label's own direction is still learnt
    assert abs(follows[()][0]) > 0.1 and abs(follows[()][1]) > 0.5
    assert abs(follows[invariant.invariant][0]) < 1e-6 and abs(follows[invariant.invariant][1]) < 1e-6
    data.group = np.where(np.arange(600) % 6 == 1, "photos_a", real_group)  # a sixth of the FAKE rows too
    columns = nuisances(data, np.ones(600, bool), ("size", "real-sources"))
    assert columns.shape == (600, 3) and columns[real, 1:].sum() == 300  # one indicator per REAL group
    assert not columns[~real, 1:].any()  # FAKE rows carry no source indicator, whatever their group
    with pytest.raises(ValueError, match="unknown invariants"):
        nuisances(data, real, ("colour",))


def test_weighting_up_the_worst_fitted_group_lowers_its_loss_and_keeps_each_class_weight():
    from ensemble.heads import worst_group_factors

    data = synthetic_training_set(n=600, dims=16, informative=False)
    small = np.arange(600) % 10 == 0  # a tenth of the rows, whose label shows in another feature
    data.group = np.where(small, "small", "big")
    sign = 2.0 * (data.label - 0.5)
    data.features["f"][~small, 0] += 1.5 * sign[~small]
    data.features["f"][small, 1] += 1.5 * sign[small]
    base = dict(views=("telegram",), match_sizes=False, l2=0.5, shares={}, group_power=1.0)
    weights = sample_weights(data, np.ones(600, bool), Recipe("f", **base))

    def small_loss(recipe):
        logits = fit_full(data, recipe).logits(data.features["f"])
        loss = np.logaddexp(0.0, logits) - data.label * logits
        return loss[small].mean(), loss[~small].mean()

    plain, worst = small_loss(Recipe("f", **base)), small_loss(Recipe("f", worst_group_step=3.0, **base))
    assert plain[0] > plain[1] + 0.05  # the small group is fitted worse
    assert worst[0] < plain[0] - 0.02 and worst[1] > plain[1]  # weighted up, it is fitted better, the big one worse
    cells = np.char.add(data.group, np.where(data.label == 1, "/FAKE", "/REAL"))
    logits = np.where(small, 0.0, 3.0 * sign)  # the small group's rows are all at p = 0.5
    factor = worst_group_factors(logits, data.label, weights, cells, 1.0, np.ones(600))
    assert factor[small].min() > factor[~small].max()
    for label in (0, 1):
        rows = data.label == label
        assert np.isclose((weights * factor)[rows].sum(), weights[rows].sum())
    steep = worst_group_factors(logits, data.label, weights, cells, 50.0, np.ones(600))
    for label in (0, 1):  # clipped to 1/4 .. 4 before each class is rescaled
        assert steep[data.label == label].max() / steep[data.label == label].min() <= 16.0 + 1e-9


def test_a_head_refitted_from_a_start_reaches_the_same_optimum():
    data = synthetic_training_set(n=400, dims=12)
    raw = data.features["f"] * 7.0 - 2.0
    weights = np.linspace(0.5, 1.5, 400)
    cold = fit_head(raw, data.label, weights, l2=1e-2)
    other = fit_head(raw, data.label, np.ones(400), l2=1e-2)
    warm = fit_head(raw, data.label, weights, l2=1e-2, start=other)
    assert not np.allclose(other.kernel, cold.kernel, atol=1e-3)
    assert np.allclose(warm.logits(raw), cold.logits(raw), atol=1e-3)


def test_a_picture_s_logit_is_mixed_with_its_own_small_view_only():
    from benchmarks.small_view_average import mixed_with_small
    from ensemble.heads import TrainingSet

    # pictures 7 and 9 have a telegram view; only 9 has a small view, listed before the telegram rows
    data = TrainingSet(
        picture=np.array([9, 7, 9]),
        view=np.array(["small", "telegram", "telegram"]),
        label=np.zeros(3),
        source=np.array(["games"] * 3),
        group=np.array(["g"] * 3),
        long_side=np.array([400, 1280, 1280]),
        fold=np.zeros(3, int),
        features={},
    )
    logits = np.array([-2.0, 1.0, 2.0])
    assert mixed_with_small(logits, data, 0.0).tolist() == [1.0, 2.0]
    assert mixed_with_small(logits, data, 0.25).tolist() == [1.0, 1.0]  # 0.75 * 2 + 0.25 * -2
