"""What Telegram does to a photo, as a fixed view of a picture.

Telegram re-encodes every photo as JPEG with the long side at most about 1280 px.  The feature cache
(``ensemble.features``) and ``evaluate`` read each picture's "telegram" view (long side <= 1280, JPEG
quality 80); the cache's "small" view re-compresses with ``jpeg_roundtrip`` too.
"""

from __future__ import annotations

import io

from PIL import Image

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
