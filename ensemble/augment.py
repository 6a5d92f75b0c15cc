"""Augmentations that imitate what Telegram does to a photo.

Telegram re-encodes every photo as JPEG with the long side at most about
1280 px.  Training sees random JPEG qualities, random down/up-scaling and
random crops; evaluation has a fixed "telegram" view (long side <= 1280,
JPEG quality 80).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ensemble.preprocess import normalise, resize_short_side

TELEGRAM_LONG_SIDE = 1280
TELEGRAM_QUALITY = 80


def jpeg_roundtrip(image: Image.Image, quality: int) -> Image.Image:
    """Encode as JPEG at ``quality`` and decode again."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    decoded = Image.open(buffer)
    decoded.load()
    return decoded.convert("RGB")


def telegram_view(image: Image.Image) -> Image.Image:
    """What a Telegram photo of this picture looks like: long side <= 1280, JPEG q80."""
    width, height = image.size
    long_side = max(width, height)
    if long_side > TELEGRAM_LONG_SIDE:
        scale = TELEGRAM_LONG_SIDE / long_side
        image = image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.BICUBIC)
    return jpeg_roundtrip(image, TELEGRAM_QUALITY)


def random_training_view(image: Image.Image, size: int, rng: np.random.Generator) -> np.ndarray:
    """One augmented, normalised (size, size, 3) training input.

    Args:
        image: decoded RGB picture.
        size: model input side.
        rng: the random generator (seeded by the trainer).
    """
    width, height = image.size
    if rng.random() < 0.5:
        # Down- or up-scale the source, as pictures reach users at many sizes;
        # never below 32 px, the size of the smallest training pictures.
        factor = float(np.exp(rng.uniform(np.log(0.5), np.log(1.6))))
        factor = max(factor, 32 / min(width, height))
        new_size = (max(1, round(width * factor)), max(1, round(height * factor)))
        image = image.resize(new_size, Image.BICUBIC if factor > 1 else Image.LANCZOS)
    if rng.random() < 0.8:
        image = jpeg_roundtrip(image, rng.integers(60, 96))
    short_side = int(round(size * rng.uniform(1.0, 1.4)))
    image = resize_short_side(image, short_side)
    width, height = image.size
    left = int(rng.integers(0, width - size + 1))
    top = int(rng.integers(0, height - size + 1))
    image = image.crop((left, top, left + size, top + size))
    if rng.random() < 0.5:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    return normalise(np.asarray(image))
