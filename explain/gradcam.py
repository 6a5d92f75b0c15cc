"""Class-activation maps of one ensemble member (through tf-keras-vis), and putting them back on the photo.

Every method but ``tap-shares`` looks at the deepest layer the member's head weighs
(``ensemble.classifier.cam_layer``: ``top_activation``, or an earlier tap for a head that leaves the last ones
out, as the shipped ones do); ``tap-shares`` (``EnsembleTapShares``) spreads the logit over every layer the head
reads. All explain the FAKE score, i.e. the member's logit.

tf-keras-vis 0.8.7 under Keras 3, what needed care (all handled here, the
package itself is untouched):

* its modules import ``scipy.ndimage.interpolation``, which SciPy deprecates;
  the DeprecationWarning is silenced for that import only (``_tf_keras_vis``);
* ``seek_penultimate_conv_layer`` must be False, or it walks past
  ``top_activation`` (a ReLU, not a Conv) to ``top_conv``, before batch norm;
* every call rebuilds the member with its extra output (``ModelModifier``)
  and runs it eagerly: 455 ms per member on a 1280 px photo on a 2-core CPU,
  1.4 s for the ensemble. ``EnsembleGradcam`` computes the same maps (a test
  compares them) for all members of one input size in one compiled
  TensorFlow function, and gives their logits from the same pass;
  ``MemberCam`` (tf-keras-vis) stays the reference and serves Grad-CAM++
  and Score-CAM;
* Score-CAM applies a softmax to the model output before scoring it, which
  is 1.0 for a one-logit model (every channel would weigh the same), and calls
  ``model.predict`` with a list, which a Keras 3 single-input functional model
  warns about; it gets a two-logit ``[0, logit]`` view of the member built on
  ``model.inputs`` (softmax of it = [P(REAL), P(FAKE)]), with a silent
  ``predict``.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

MEMBER_METHODS = ("gradcam", "gradcam++", "scorecam")  # through tf-keras-vis (``MemberCam``)
# "tap-shares": every tapped layer's exact share of the logit, cell by cell (``EnsembleTapShares``)
METHODS = (*MEMBER_METHODS, "tap-shares")
TAP_SHARES_STRIDE = 8  # input pixels per cell of the tap-shares map (28 x 28 cells for a 224 px input)
TARGET_LAYER = "top_activation"
DEFAULT_SCORECAM_MAX_N = 16


def _tf_keras_vis():
    """Import the parts of tf-keras-vis in use, without SciPy's deprecation warning about its imports."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*scipy.ndimage.interpolation.*", category=DeprecationWarning)
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import BinaryScore, CategoricalScore
    return Gradcam, GradcamPlusPlus, Scorecam, ReplaceToLinear, BinaryScore, CategoricalScore


def _two_logit_view(model):
    """``[0, logit]`` outputs, so that a softmax over them gives [P(REAL), P(FAKE)] (for Score-CAM)."""
    import keras

    logit = model.outputs[0]
    both = keras.layers.Concatenate(name="real_fake_logits")([keras.ops.zeros_like(logit), logit])
    # model.inputs (a list) as the input structure: Score-CAM calls predict() with a list.
    view = keras.Model(model.inputs, both, name=f"{model.name}_two_logits")
    # Score-CAM calls predict() without verbose=0: Keras would draw a progress bar on stdout.
    view.predict = functools.partial(view.predict, verbose=0)
    return view


class MemberCam:
    """One member's class-activation map for the FAKE score, ready to be called many times.

    tf-keras-vis clones the model when a model modifier is given, which costs
    about as much as building it; build one ``MemberCam`` per member, once.
    """

    def __init__(self, model, method: str = "gradcam", scorecam_max_n: int = DEFAULT_SCORECAM_MAX_N) -> None:
        """Wrap a member for one explanation method.

        Args:
            model: a one-logit Keras member (``ensemble.classifier.build_classifier``).
            method: ``gradcam``, ``gradcam++`` or ``scorecam`` (Faster Score-CAM).
            scorecam_max_n: Score-CAM channels kept (those of highest spatial variance).

        Raises:
            ValueError: an unknown method, or a model ``build_classifier`` did not make (``_check_member``).
        """
        if method not in MEMBER_METHODS:
            raise ValueError(f"unknown explanation method {method!r}; choose from {', '.join(MEMBER_METHODS)}")
        _check_member(model)
        from ensemble.classifier import cam_layer

        size = model.inputs[0].shape[1]
        self.layer = cam_layer(model)  # top_activation, or the deepest layer the head weighs
        channels = model.get_layer(self.layer).output.shape[-1]
        if method == "scorecam" and not 1 <= scorecam_max_n <= channels:
            raise ValueError(f"scorecam_max_n must be between 1 and {channels}, got {scorecam_max_n}")
        self.method = method
        self.input_size = int(size)
        self.scorecam_max_n = scorecam_max_n
        gradcam, gradcam_plus_plus, scorecam, replace_to_linear, binary_score, categorical_score = _tf_keras_vis()
        if method == "scorecam":
            # The two-logit view is a new model over the member's own layers: nothing to clone.
            self._visualiser = scorecam(model, model_modifier=_two_logit_view, clone=False)
            self._score = categorical_score(1)
        else:
            # The members already output a logit; ReplaceToLinear is a no-op kept so that a
            # member with a sigmoid head would still be explained on its logit.
            visualiser = gradcam if method == "gradcam" else gradcam_plus_plus
            self._visualiser = visualiser(model, model_modifier=replace_to_linear(), clone=True)
            self._score = binary_score(1.0)

    def __call__(self, views: np.ndarray) -> np.ndarray:
        """Maps for a batch of model inputs.

        Args:
            views: float32 (views, size, size, 3), as ``ensemble.preprocess.model_inputs`` makes them.

        Returns:
            float32 (views, cells, cells), one value per cell of the member's ``cam_layer``.
            Grad-CAM maps are signed and in logit units: their spatial mean is the
            member's logit minus the head's bias, so member maps can be averaged
            like member logits (ReLU comes after combining). Grad-CAM++ and
            Score-CAM maps are their methods' usual non-negative maps.
        """
        views = np.asarray(views, dtype=np.float32)
        if views.ndim != 4 or views.shape[1:] != (self.input_size, self.input_size, 3):
            raise ValueError(
                f"expected views shaped (n, {self.input_size}, {self.input_size}, 3), got {views.shape}; "
                "use ensemble.preprocess.model_inputs with the member's input_size"
            )
        common = dict(
            penultimate_layer=self.layer,
            seek_penultimate_conv_layer=False,
            expand_cam=False,  # we resize onto the photo ourselves (see place_views)
            normalize_cam=False,  # members must stay comparable to be averaged
        )
        if self.method == "gradcam":
            cam = np.asarray(self._visualiser(self._score, views, activation_modifier=None, **common))
            # tf-keras-vis averages the gradients over the cells (1 / cells for a global-average-pool head);
            # times the cell count, the map's mean is the logit contribution whatever the resolution.
            return (cam * cam.shape[1] * cam.shape[2]).astype(np.float32)
        if self.method == "gradcam++":
            return np.asarray(self._visualiser(self._score, views, **common), dtype=np.float32)
        cam = self._visualiser(self._score, views, max_N=self.scorecam_max_n, batch_size=32, **common)
        return np.asarray(cam, dtype=np.float32)


def _check_member(model) -> None:
    """Refuse a model that ``ensemble.classifier.build_classifier`` did not make: it needs the one-logit dense
    layer ``predictions`` and either ``top_activation`` or the tapped layers its head reads (a member whose head
    reads nothing after ``block11_expand_activation`` has no top: its graph ends at its last tap)."""
    names = {layer.name for layer in model.layers}
    if "predictions" not in names or not (TARGET_LAYER in names or any(n.startswith("tap0_") for n in names)):
        raise ValueError(
            f"model {model.name!r} has no layer {TARGET_LAYER!r} and no tapped layers; "
            "build members with ensemble.classifier.build_classifier"
        )


def _activation_and_logit(model):
    """``(two_outputs, kernel)``: the member giving its Grad-CAM layer's activations (``top_activation``, or the
    deepest layer its head weighs: ``ensemble.classifier.cam_layer``) and its logit, and that layer's channel
    weights (``ensemble.classifier.cam_kernel``)."""
    from ensemble.classifier import activation_and_logit, cam_kernel, cam_layer

    _check_member(model)
    layer = cam_layer(model)
    return activation_and_logit(model, layer), cam_kernel(model, layer)


class EnsembleGradcam:
    """Grad-CAM of several members of one input size, and their logits, in one compiled TensorFlow function.

    The maps are ``MemberCam(model, "gradcam")``'s (tf-keras-vis), computed
    without rebuilding the model per call and without eager execution. The
    head is linear in the averaged activations, so the gradient of the logit
    with respect to ``top_activation`` (or the deepest layer the head weighs,
    ``ensemble.classifier.cam_layer``) is the head's kernel over the cell
    count, and the map is a forward pass: the activations times that kernel.
    """

    def __init__(self, models) -> None:
        """Compile the maps for ``models`` (one-logit members of one input size).

        Raises:
            ValueError: no models, input sizes that differ, or a model ``build_classifier`` did not make.
        """
        import tensorflow as tf

        sizes = {int(model.inputs[0].shape[1]) for model in models}
        if len(sizes) != 1:
            raise ValueError(f"members of one input size expected, got sizes {sorted(sizes)}")
        self.input_size = sizes.pop()
        parts = [_activation_and_logit(model) for model in models]
        grids = {tuple(both.outputs[0].shape[1:3]) for both, _kernel in parts}
        if len(grids) != 1:
            raise ValueError(f"members of one view group must have maps of one size, got {sorted(grids)}")

        @tf.function(reduce_retracing=True)
        def run(views):
            maps, logits = [], []
            for both, kernel in parts:
                acts, logit = both(views, training=False)
                # gradient x cells = kernel: the map in logit units, as MemberCam's
                maps.append(tf.tensordot(acts, tf.constant(kernel, acts.dtype), axes=[[3], [0]]))
                logits.append(logit[:, 0])
            return tf.stack(maps), tf.stack(logits, axis=1)

        self._run = run

    def __call__(self, views: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Maps and logits for a batch of model inputs.

        Args:
            views: float32 (views, size, size, 3), as ``ensemble.preprocess.model_inputs`` makes them.

        Returns:
            ``(maps, logits)``: float32 (members, views, cells, cells), signed and in
            logit units like ``MemberCam``'s Grad-CAM, and (views, members) logits.
        """
        views = np.asarray(views, dtype=np.float32)
        if views.ndim != 4 or views.shape[1:] != (self.input_size, self.input_size, 3):
            raise ValueError(
                f"expected views shaped (n, {self.input_size}, {self.input_size}, 3), got {views.shape}; "
                "use ensemble.preprocess.model_inputs with the members' input_size"
            )
        maps, logits = self._run(views)
        return np.asarray(maps, np.float32), np.asarray(logits, np.float32)


def _tap_share_cells(acts, means, spreads, grid: int):
    """One tapped layer's share of the logit per cell, as a (views, grid, grid) map whose mean over the cells is
    that layer's part of the head's sum: a mean's share of a cell is the cell's activation, a deviation's is
    the cell's squared distance from the channel mean over the deviation (those average to the deviation)."""
    import tensorflow as tf

    cells = tf.tensordot(acts, tf.constant(means, acts.dtype), axes=[[3], [0]])
    if spreads is not None:
        squares = tf.square(acts - tf.reduce_mean(acts, axis=[1, 2], keepdims=True))
        deviation = tf.sqrt(tf.reduce_mean(squares, axis=[1, 2]) + 1e-6)  # as ``classifier.pooled_taps``
        cells += tf.einsum("nhwc,nc->nhw", squares + 1e-6, tf.constant(spreads, acts.dtype)[None] / deviation)
    size = int(cells.shape[1])
    if size > grid and size % grid == 0:  # averaging blocks keeps the mean
        return tf.nn.avg_pool2d(cells[..., None], size // grid, size // grid, "VALID")[..., 0]
    if size < grid and grid % size == 0:  # so does repeating cells
        return tf.repeat(tf.repeat(cells, grid // size, axis=1), grid // size, axis=2)
    if size != grid:
        return tf.image.resize(cells[..., None], (grid, grid), method="area")[..., 0]
    return cells


class EnsembleTapShares:
    """Every tapped layer's share of each member's logit, cell by cell, summed on one grid: ``EnsembleGradcam``'s
    contract (``(maps, logits)``), in one compiled TensorFlow function.

    Grad-CAM shows the deepest layer the head weighs; the earlier layers' part of the logit (their means and
    spatial deviations, where texture statistics live) is not drawn. The head is one dense layer over those
    statistics, so the logit splits exactly over the cells of each layer (``_tap_share_cells``); the layers'
    maps, brought to ``input_size / TAP_SHARES_STRIDE`` cells a side, add up to a map whose mean is the logit
    minus the head's bias (exactly where each layer's grid divides that grid or is divided by it, as for the
    Lite0 members at 224 and 96 px; an area resize, nearly, elsewhere). A method for ``python -m explain
    --method tap-shares`` and for comparing heatmaps (``benchmarks.why_latency``); the bot serves Grad-CAM.
    """

    def __init__(self, models) -> None:
        import keras
        import tensorflow as tf

        from ensemble.classifier import tap_shares_kernels

        sizes = {int(model.inputs[0].shape[1]) for model in models}
        if len(sizes) != 1:
            raise ValueError(f"members of one input size expected, got sizes {sorted(sizes)}")
        self.input_size = sizes.pop()
        grid = max(1, self.input_size // TAP_SHARES_STRIDE)
        parts = []
        for model in models:
            kernels = tap_shares_kernels(model)
            outputs = [model.get_layer(tap).output for tap in kernels] + [model.output]
            parts.append((keras.Model(model.input, outputs, name=f"{model.name}_taps"), list(kernels.values())))

        @tf.function(reduce_retracing=True)
        def run(views):
            maps, logits = [], []
            for both, kernels in parts:
                *acts, logit = both(views, training=False)
                total = tf.zeros((tf.shape(views)[0], grid, grid), views.dtype)
                for layer, (means, spreads) in zip(acts, kernels):
                    total += _tap_share_cells(layer, means, spreads, grid)
                maps.append(total)
                logits.append(logit[:, 0])
            return tf.stack(maps), tf.stack(logits, axis=1)

        self._run = run

    def __call__(self, views: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(maps, logits)``: float32 (members, views, cells, cells) in logit units, and (views, members)."""
        views = np.asarray(views, dtype=np.float32)
        if views.ndim != 4 or views.shape[1:] != (self.input_size, self.input_size, 3):
            raise ValueError(
                f"expected views shaped (n, {self.input_size}, {self.input_size}, 3), got {views.shape}; "
                "use ensemble.preprocess.model_inputs with the members' input_size"
            )
        maps, logits = self._run(views)
        return np.asarray(maps, np.float32), np.asarray(logits, np.float32)


def box_pixels(box: tuple[float, ...], width: int, height: int) -> tuple[int, int, int, int]:
    """A (left, top, right, bottom) box in fractions as whole pixels of a width x height picture (never empty)."""
    left, top, right, bottom = box
    x0, y0 = min(round(left * width), width - 1), min(round(top * height), height - 1)
    x1, y1 = max(round(right * width), x0 + 1), max(round(bottom * height), y0 + 1)
    return x0, y0, min(x1, width), min(y1, height)


def place_views(
    maps: np.ndarray, boxes: list[tuple[float, ...]], width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Put each view's map on its box of a width x height picture, averaging where boxes overlap.

    Args:
        maps: (views, cells, cells) maps of the square model inputs.
        boxes: the views' boxes as fractions (``ensemble.preprocess.crop_geometry``).
        width: picture width in pixels.
        height: picture height in pixels.

    Returns:
        ``(heat, coverage)``: float32 (height, width) maps, zero outside every
        box, and how many views cover each pixel.

    Raises:
        ValueError: when the numbers of maps and boxes differ.
    """
    import cv2

    if len(maps) != len(boxes):
        raise ValueError(f"{len(maps)} maps for {len(boxes)} boxes; pass crop_geometry() of the same picture")
    total = np.zeros((height, width), np.float32)
    coverage = np.zeros((height, width), np.float32)
    for cam, box in zip(maps, boxes):
        x0, y0, x1, y1 = box_pixels(box, width, height)
        # Linear interpolation between cell centres, constant beyond them: no heat leaks outside the box.
        total[y0:y1, x0:x1] += cv2.resize(
            np.asarray(cam, np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR
        )
        coverage[y0:y1, x0:x1] += 1.0
    return np.divide(total, coverage, out=np.zeros_like(total), where=coverage > 0), coverage
