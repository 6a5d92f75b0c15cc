"""The one preprocess shared by training, evaluation and serving.

Reading an image: refuse empty, oversized, non-image and decompression-bomb
inputs before decoding pixels; take the first frame; apply EXIF orientation;
convert any mode to RGB (transparency composited on white, 16-bit scaled).

Turning it into model input (the resize policy, chosen by measurement, see
README): scale the short side to the model's input size and cut the centre
square ("crop").  "squash" and "multicrop" exist so that `evaluate` can
compare them.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# The PyTorch EfficientNet-Lite checkpoints' normalisation: (pixel - 127) / 128.
PIXEL_MEAN = 127.0
PIXEL_STD = 128.0


MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 64_000_000
ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "GIF"})
RESIZE_POLICIES = ("crop", "squash", "multicrop")
DEFAULT_POLICY = "crop"


class ImageRejected(ValueError):
    """An input that cannot be judged; the message is a short user-facing reason."""


def _read_bytes(source: bytes | str | os.PathLike) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as error:
            raise ImageRejected(f"cannot read file ({error.strerror or error})") from None
        if size > MAX_FILE_BYTES:
            raise ImageRejected(f"file too large ({size / 2**20:.0f} MB, limit {MAX_FILE_BYTES // 2**20} MB)")
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ImageRejected(f"cannot read file ({error.strerror or error})") from None
    if not data:
        raise ImageRejected("empty file")
    if len(data) > MAX_FILE_BYTES:
        raise ImageRejected(f"file too large ({len(data) / 2**20:.0f} MB, limit {MAX_FILE_BYTES // 2**20} MB)")
    return data


def open_image(source: bytes | str | os.PathLike) -> Image.Image:
    """Decode an untrusted image into an RGB picture the right way up.

    Args:
        source: encoded bytes or a file path.

    Returns:
        A decoded RGB ``PIL.Image``.

    Raises:
        ImageRejected: with a one-line reason ("not an image", "truncated or
            corrupt image", "too many pixels (40000x40000)", ...).
    """
    data = _read_bytes(source)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageRejected("not an image") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRejected("too many pixels") from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise ImageRejected(f"unreadable image ({type(error).__name__})") from None
        if image.format not in ACCEPTED_FORMATS:
            raise ImageRejected(f"unsupported image format {image.format}")
        width, height = image.size
        if width < 1 or height < 1:
            raise ImageRejected("image has no pixels")
        if width * height > MAX_PIXELS:
            raise ImageRejected(f"too many pixels ({width}x{height}, limit {MAX_PIXELS // 1_000_000} megapixels)")
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRejected("too many pixels") from None
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError):
            raise ImageRejected("truncated or corrupt image") from None
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block must not cost the verdict; keep the stored orientation
        pass
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB.

    Transparency is composited over white; 16- and 32-bit greyscale is scaled
    to 8 bits by its bit depth.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        grey = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def resize_short_side(image: Image.Image, short_side: int) -> Image.Image:
    """Scale so that the shorter side is ``short_side`` pixels, keeping the aspect."""
    width, height = image.size
    scale = short_side / min(width, height)
    size = (max(short_side, round(width * scale)), max(short_side, round(height * scale)))
    if size == image.size:
        return image
    return image.resize(size, Image.BICUBIC, reducing_gap=3.0)


def normalise(pixels: np.ndarray) -> np.ndarray:
    """uint8 RGB pixels to the float range the backbones were trained on."""
    return (np.asarray(pixels, dtype=np.float32) - PIXEL_MEAN) / PIXEL_STD


def crop_boxes(width: int, height: int, size: int, policy: str) -> list[tuple[int, int, int, int]]:
    """The squares (left, top, right, bottom) cut from a short-side-resized picture."""
    if policy == "crop":
        left, top = (width - size) // 2, (height - size) // 2
        return [(left, top, left + size, top + size)]
    if policy == "multicrop":
        if width >= height:
            starts = sorted({0, (width - size) // 2, width - size})
            return [(x, 0, x + size, size) for x in starts]
        starts = sorted({0, (height - size) // 2, height - size})
        return [(0, y, size, y + size) for y in starts]
    raise ValueError(f"unknown resize policy {policy!r}; choose from {RESIZE_POLICIES}")


def model_inputs(image: Image.Image, size: int, policy: str = DEFAULT_POLICY) -> np.ndarray:
    """Model-ready views of one RGB picture.

    Args:
        image: an RGB picture from ``open_image``.
        size: the square input side of the model.
        policy: ``crop`` (one centre square), ``multicrop`` (up to three
            squares along the long side, to be averaged) or ``squash`` (the
            whole picture resized to a square, aspect lost).

    Returns:
        float32 array (views, size, size, 3), normalised.
    """
    if policy == "squash":
        return normalise(np.asarray(image.resize((size, size), Image.BICUBIC, reducing_gap=3.0)))[None]
    resized = resize_short_side(image, size)
    boxes = crop_boxes(*resized.size, size, policy)
    return np.stack([normalise(np.asarray(resized.crop(box))) for box in boxes])


def crop_geometry(width: int, height: int, size: int, policy: str = DEFAULT_POLICY) -> list[tuple[float, ...]]:
    """Where each model view lies in the original picture, as fractions (left, top, right, bottom).

    Used to put a heatmap back on the right place of the photo.
    """
    if policy == "squash":
        return [(0.0, 0.0, 1.0, 1.0)]
    scale = size / min(width, height)
    resized_w, resized_h = max(size, round(width * scale)), max(size, round(height * scale))
    return [
        (left / resized_w, top / resized_h, right / resized_w, bottom / resized_h)
        for left, top, right, bottom in crop_boxes(resized_w, resized_h, size, policy)
    ]
