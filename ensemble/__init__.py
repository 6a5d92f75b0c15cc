"""The detector: what serves a verdict and what trains the shipped ensemble.

Serving: ``preprocess`` (one decode and view for training and serving) -> ``detector`` (the members, averaged
and calibrated by ``calibration``) on ONNX Runtime (``onnx_runtime``, graphs made by ``onnx_export``), or on the
Keras members (``classifier`` over ``backbone``) where no checked graph exists. Training (``python -m ensemble
train``): ``features`` caches the frozen backbone's features of each picture's views (``views``), ``heads`` fits
a linear head per member out of fold, ``build`` writes ``weights/``; ``evaluate`` and ``report`` measure it.

Research probes that chose the recipes, and their commands, live apart in ``ensemble.lab``.
"""
