"""The last-stage fine-tuning probe: its replay of the backbone's last stage, and that its fine-tuning learns."""

import keras
import numpy as np
import pytest
from PIL import Image

from ensemble.classifier import build_classifier
from ensemble.features import LITE0_TAPS
from ensemble.lab.upper_stages import FineTuned, Tuning, column_order, probe_start, upper_model
from ensemble.preprocess import model_inputs
from tests.images import photo_like


@pytest.mark.parametrize("first_block", [15, 11])
def test_the_upper_blocks_replayed_on_the_block_before_give_the_backbone_s_own_pooled_taps(first_block):
    backbone = build_classifier("lite0", 224, taps=LITE0_TAPS, pooling="mean_std")
    before = backbone.get_layer(f"block{first_block - 1}_add").output
    inner = keras.Model(backbone.input, [before, backbone.get_layer("taps").output])
    pictures = np.random.default_rng(0).uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32)
    spatial, pooled = (np.asarray(a) for a in inner(pictures))
    frozen, learned = column_order(first_block)
    assert len(frozen) + len(learned) == pooled.shape[1] and len(set(frozen) | set(learned)) == pooled.shape[1]

    out = np.asarray(upper_model(len(frozen), first_block)([spatial, pooled[:, frozen]]))

    np.testing.assert_array_equal(out[:, : len(frozen)], pooled[:, frozen])
    np.testing.assert_allclose(out[:, len(frozen) :], pooled[:, learned], rtol=1e-4, atol=1e-4)


def test_starting_earlier_learns_more_taps():
    assert len(column_order(11)[1]) > len(column_order(15)[1])


def _objective(model, spatial, frozen, labels, weights, l2):
    margin = model.predict(spatial, frozen)
    losses = np.logaddexp(0.0, margin) - labels * margin
    return np.sum(weights / weights.sum() * losses) + 0.5 * l2 * float(np.sum(np.asarray(model.kernel) ** 2))


def test_fine_tuning_lowers_the_objective_the_linear_probe_stopped_at():
    backbone = build_classifier("lite0", 224, taps=LITE0_TAPS, pooling="mean_std")
    inner = keras.Model(backbone.input, [backbone.get_layer("block14_add").output, backbone.get_layer("taps").output])
    labels = np.arange(48) % 2
    pictures = []
    for seed, label in enumerate(labels):
        pixels = np.asarray(photo_like(224, 224, seed), np.float32)
        if label:  # FAKE: a faint two-pixel grid, the kind of trace an upsampling layer leaves
            pixels += 6.0 * ((np.indices((224, 224)).sum(axis=0) // 2) % 2)[:, :, None]
        pictures.append(model_inputs(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), 224, "crop"))
    block14, pooled = (np.asarray(a) for a in inner(np.concatenate(pictures)))
    spatial = block14.reshape(len(labels), -1).astype(np.float16)
    frozen_columns, _ = column_order()
    weights = np.ones(len(labels))
    model = FineTuned(len(frozen_columns), *probe_start(pooled, labels, weights, l2=1.0))
    before = _objective(model, spatial, pooled[:, frozen_columns], labels, weights, l2=1.0)

    model.fit(spatial, pooled[:, frozen_columns], labels, weights, Tuning(epochs=4, lr=1e-4, batch=16, l2=1.0))

    assert _objective(model, spatial, pooled[:, frozen_columns], labels, weights, l2=1.0) < 0.8 * before


def test_the_cached_block14_view_replayed_gives_the_cached_pooled_view_s_last_taps():
    from ensemble.features import BACKBONE_VIEWS, feature_runner

    spatial_spec, pooled_spec = (
        next(s for s in BACKBONE_VIEWS if s.name == name)
        for name in ("lite0_224_crop_block14", "lite0_224_crop_taps_std")
    )
    pictures = np.concatenate([model_inputs(photo_like(640, 480, seed), 224, "crop") for seed in (3, 4)])
    spatial, pooled = feature_runner(spatial_spec)(pictures), feature_runner(pooled_spec)(pictures)
    frozen, learned = column_order()
    assert spatial.shape == (2, 7 * 7 * 192)

    out = np.asarray(upper_model(len(frozen))([spatial.reshape(-1, 7, 7, 192), pooled[:, frozen]]))

    np.testing.assert_allclose(out[:, len(frozen) :], pooled[:, learned], rtol=1e-3, atol=1e-3)


def test_a_stopped_run_resumes_from_the_folds_it_saved(tmp_path):
    from ensemble.heads import Recipe, TrainingSet
    from ensemble.lab.upper_stages import POOLED_VIEW, SPATIAL_VIEWS, out_of_fold

    rng = np.random.default_rng(1)
    n, width = 24, sum(len(part) for part in column_order())
    data = TrainingSet(
        picture=np.arange(n),
        view=np.array(["telegram"] * n),
        label=np.arange(n) % 2,
        source=np.array(["a", "b", "c"] * (n // 3)),
        group=np.arange(n).astype(str),
        long_side=np.full(n, 640),
        fold=(np.arange(n) // 2) % 2,
        features={
            POOLED_VIEW: rng.uniform(0, 1, (n, width)).astype(np.float32),
            SPATIAL_VIEWS[15]: rng.normal(0, 1, (n, 7 * 7 * 192)).astype(np.float16),
        },
    )
    recipe, tuning, memo = Recipe(POOLED_VIEW), Tuning(epochs=1, batch=8), tmp_path / "memo.npz"
    first = out_of_fold(data, tuning, recipe, folds=2, keep=memo)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memo.npz"]  # the fold files go once the memo is in
    assert not np.isnan(first[1]).any()

    # a run stopped after fold 0 (saved, marked here) and before the memo: the rerun reads fold 0 as saved and
    # fits fold 1 again, alike
    memo.unlink()
    np.savez(tmp_path / "memo_fold0.npz", probe=np.full(n // 2, 7.0), tuned=np.full(n // 2, 9.0))
    probe, tuned = out_of_fold(data, tuning, recipe, folds=2, keep=memo)

    assert np.all(probe[data.fold == 0] == 7.0) and np.all(tuned[data.fold == 0] == 9.0)
    np.testing.assert_allclose(tuned[data.fold == 1], first[1][data.fold == 1], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(out_of_fold(data, tuning, recipe, folds=2, keep=memo)[1], tuned)  # the memo
