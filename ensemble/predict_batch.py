"""Batched outputs over decoded pictures, shared by the Detector and the feature cache."""

from __future__ import annotations

import numpy as np

from ensemble.preprocess import model_inputs

BATCH_SIZE = 32
# Squares per call at most: a grid gives a picture up to 16, and a call over 32 pictures' grids (512 squares) held
# about 15 GB of activations in ONNX Runtime. ONNX Runtime keeps its largest call's memory, so this also sets the
# bot's peak: the service layer peaked at 848 MiB with all 16 squares of a photo in one call and at 605 MiB with 8
# (2026-12-07, ``python -m benchmarks --serving-only``), at the same speed.
MAX_VIEWS_PER_RUN = 8


def sampled_views(views: np.ndarray, most: int, seed: int) -> np.ndarray:
    """At most ``most`` of a picture's views (0: all), a random choice fixed by ``seed``, in their order."""
    if not most or len(views) <= most:
        return views
    return views[np.sort(np.random.default_rng(seed).choice(len(views), most, replace=False))]


def logits_over_views(run, pictures, input_size: int, policy: str, progress=None, samples=None) -> np.ndarray:
    """Outputs of ``run`` per picture, shape (pictures, outputs); views of a picture (multicrop) are averaged.

    Pictures go through in chunks of ``BATCH_SIZE``, their squares in calls of at most ``MAX_VIEWS_PER_RUN``: one
    call over many pictures would hold all their activations in memory at once.

    Args:
        run: a compiled function from a (views, size, size, 3) batch to (views, outputs).
        pictures: decoded RGB pictures.
        input_size: the model's square input side.
        policy: resize policy, see ``ensemble.preprocess.model_inputs``.
        progress: an optional tqdm bar, advanced per chunk.
        samples: per picture, (most, seed) for ``sampled_views``, or None: every view (what serving reads).
    """
    chunks = []
    for start in range(0, len(pictures), BATCH_SIZE):
        chunk = pictures[start : start + BATCH_SIZE]
        views = [model_inputs(picture, input_size, policy) for picture in chunk]
        if samples is not None:
            views = [sampled_views(v, *samples[start + i]) for i, v in enumerate(views)]
        batch = np.concatenate(views)
        outputs = np.concatenate(
            [np.asarray(run(batch[i : i + MAX_VIEWS_PER_RUN])) for i in range(0, len(batch), MAX_VIEWS_PER_RUN)]
        )
        offsets = np.cumsum([0] + [len(v) for v in views])
        chunks.append(np.stack([outputs[a:b].mean(axis=0) for a, b in zip(offsets[:-1], offsets[1:])]))
        if progress is not None:
            progress.update(len(chunk))
    return np.concatenate(chunks) if chunks else np.zeros((0, 1))
