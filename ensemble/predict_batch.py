"""Batched member logits over decoded pictures, for training-time OOF and evaluation."""

from __future__ import annotations

import keras
import numpy as np
from tqdm import tqdm

from ensemble.preprocess import model_inputs

BATCH_SIZE = 32


def member_logits(model: keras.Model, pictures, input_size: int, policy: str, desc: str = "predict") -> np.ndarray:
    """One logit per picture; views of a picture (multicrop) are averaged.

    Args:
        model: a one-logit classifier.
        pictures: decoded RGB pictures.
        input_size: the model's square input side.
        policy: resize policy, see ``ensemble.preprocess.model_inputs``.
        desc: progress-bar label.
    """
    logits = np.zeros(len(pictures))
    run = _compiled(model)
    with tqdm(total=len(pictures), desc=desc, unit="img", leave=False) as progress:
        for start in range(0, len(pictures), BATCH_SIZE):
            chunk = pictures[start : start + BATCH_SIZE]
            views = [model_inputs(picture, input_size, policy) for picture in chunk]
            counts = [len(v) for v in views]
            outputs = np.asarray(run(np.concatenate(views))).reshape(-1)
            offsets = np.cumsum([0] + counts)
            logits[start : start + len(chunk)] = [outputs[a:b].mean() for a, b in zip(offsets[:-1], offsets[1:])]
            progress.update(len(chunk))
    return logits


def _compiled(model: keras.Model):
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def run(batch):
        return model(batch, training=False)

    return run
