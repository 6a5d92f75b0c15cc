"""The pooled features a member's head reads: means, and with mean_std the spatial standard deviations."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from ensemble.classifier import build_classifier, channel_correlations, pooled_taps, top_kernel

TAPS = ("stem_activation", "block3_expand_activation", "top_activation")


def test_mean_std_pooling_is_the_taps_means_then_their_standard_deviations():
    model = build_classifier("lite0", 64, imagenet=False, name="plain")
    pooled = keras.Model(model.input, pooled_taps(model, TAPS, "mean_std"))
    maps = keras.Model(model.input, [model.get_layer(tap).output for tap in TAPS])
    pictures = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    features = np.asarray(pooled(pictures))
    activations = [np.asarray(a, np.float64) for a in maps(pictures)]
    means = np.concatenate([a.mean(axis=(1, 2)) for a in activations], axis=1)
    deviations = np.concatenate([a.std(axis=(1, 2)) for a in activations], axis=1)
    assert features.shape == (2, 2 * means.shape[1])
    np.testing.assert_allclose(features[:, : means.shape[1]], means, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(features[:, means.shape[1] :], deviations, rtol=1e-3, atol=2e-3)


def test_channel_correlations_follow_the_means_and_deviations_and_match_numpy():
    model = build_classifier("lite0", 64, imagenet=False, name="gram", input_filter="highpass")
    gram = ("stem_activation", "block1_expand_activation")
    pooled = keras.Model(model.input, pooled_taps(model, TAPS, "mean_std", gram))
    maps = keras.Model(model.input, [model.get_layer(tap).output for tap in gram])
    pictures = np.random.default_rng(1).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    features = np.asarray(pooled(pictures))
    start = 2 * (32 + 144 + 1280)
    assert features.shape == (2, start + 32 * 31 // 2 + 96 * 95 // 2)
    for activation in maps(pictures):
        channels = activation.shape[-1]
        upper = np.triu_indices(channels, 1)
        width = len(upper[0])
        for picture in range(2):
            cells = np.asarray(activation[picture], np.float64).reshape(-1, channels)
            covariance = np.cov(cells.T, bias=True)
            scale = np.sqrt(np.diag(covariance) + 1e-6)  # as in channel_correlations: a flat channel gives 0
            expected = (covariance / np.outer(scale, scale))[upper]
            np.testing.assert_allclose(features[picture, start : start + width], expected, atol=2e-3)
        start += width
    # a correlation's gradient with respect to the cells sums to zero: Grad-CAM's channel weights ignore it
    stem = maps(pictures)[0]
    x = tf.Variable(np.asarray(stem))
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(channel_correlations(tf.convert_to_tensor(x)) * np.linspace(-1, 1, 496))
    gradient = np.asarray(tape.gradient(value, x))
    assert np.abs(gradient.sum(axis=(1, 2))).max() < 1e-3 * np.abs(gradient).sum(axis=(1, 2)).max()


def test_the_grad_cam_kernel_of_a_mean_std_head_is_the_tops_mean_weights():
    member = build_classifier("lite0", 64, imagenet=False, name="std", taps=TAPS, pooling="mean_std")
    width = 2 * (32 + 144 + 1280)
    kernel = np.arange(width, dtype=np.float32).reshape(-1, 1)
    member.get_layer("predictions").set_weights([kernel, np.zeros(1, np.float32)])
    np.testing.assert_array_equal(top_kernel(member), kernel[32 + 144 : width // 2, 0])


def test_the_grad_cam_kernel_of_a_head_with_channel_correlations_is_still_the_tops_mean_weights():
    member = build_classifier(
        "lite0", 64, imagenet=False, name="gram", taps=TAPS, pooling="mean_std", gram_taps=("stem_activation",)
    )
    width = 2 * (32 + 144 + 1280) + 32 * 31 // 2
    kernel = np.arange(width, dtype=np.float32).reshape(-1, 1)
    member.get_layer("predictions").set_weights([kernel, np.zeros(1, np.float32)])
    np.testing.assert_array_equal(top_kernel(member), kernel[32 + 144 : 32 + 144 + 1280, 0])


def test_an_unknown_pooling_is_refused():
    with pytest.raises(ValueError, match="pooling"):
        build_classifier("lite0", 64, imagenet=False, taps=TAPS, pooling="max")


def test_a_member_whose_head_ends_early_computes_nothing_after_its_last_tap():
    from ensemble.classifier import cam_kernel, cam_layer
    from ensemble.features import LITE0_TAPS

    taps = LITE0_TAPS[:-2]  # up to block11_expand_activation, as the grid members read
    member = build_classifier("lite0", 64, imagenet=False, name="cut", taps=taps, pooling="mean_std")
    names = {layer.name for layer in member.layers}
    assert "block11_expand_activation" in names
    assert not {name for name in names if name.startswith(("block11_dw", "block12", "block15", "top"))}
    full = build_classifier("lite0", 64, imagenet=False, name="full", taps=LITE0_TAPS, pooling="mean_std")
    assert member.count_params() < full.count_params() / 3
    width = member.get_layer("predictions").kernel.shape[0]
    kernel = np.linspace(-1, 1, width, dtype=np.float32).reshape(-1, 1)
    member.get_layer("predictions").set_weights([kernel, np.zeros(1, np.float32)])
    assert cam_layer(member) == "block11_expand_activation"
    assert cam_kernel(member).shape == (672,)
