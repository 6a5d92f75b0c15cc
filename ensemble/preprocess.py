"""The one preprocess shared by training, evaluation and serving.

Reading an image: refuse empty, oversized, non-image and decompression-bomb
inputs before decoding pixels; take the first frame; apply EXIF orientation;
convert any mode to RGB (transparency composited on white, 16-bit scaled).

Turning it into model input, by each member's resize policy (docs/detector.md, "One preprocess"):
"crop" scales the short side to the model's input size and cuts the centre square (the whole-picture
member); "grid" cuts a grid of squares spread evenly over the whole picture at its own pixel scale (the
other two members). "native" (three squares on the diagonal, what the members before the grid read),
"squash" and "multicrop" remain for ``evaluate --policy``, which runs every member with one policy for a
comparison.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# The PyTorch EfficientNet-Lite checkpoints' normalisation: (pixel - 127) / 128.
PIXEL_MEAN = 127.0
PIXEL_STD = 128.0


MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 64_000_000
ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "GIF"})
RESIZE_POLICIES = ("crop", "squash", "multicrop", "native", "grid")
# "native": squares cut at the picture's own pixel scale (no downscaling, where generator traces live).
NATIVE_CROPS = 3
# "grid": at most this many squares along each side, as many as the side holds whole squares (rounded, at
# least one), spread evenly from edge to edge: a 1280x960 photo gets 4x4 = 16 squares of 224 px, a 640x480
# one 3x2, a 256 px one a single square.
GRID_SIDE = 4
# Resizing the whole picture, then cutting squares out of it, is what the members were trained on. A strip
# (20000x1 px, a 144-byte PNG) would become a 5-gigapixel intermediate that way, so past this many pixels each
# square is resized from its own part of the original instead: the same picture up to rounding (a few levels).
MAX_RESIZED_PIXELS = 1 << 24
DEFAULT_POLICY = "crop"


class ImageRejected(ValueError):
    """An input that cannot be judged; the message is a short user-facing reason, in English.

    ``kind`` names the reason and ``details`` fills in its numbers, so that the bot can give the same reason
    in the user's language (``bot.texts.reason``).
    """

    REASONS: dict[str, str] = {
        "cannot_read": "cannot read file ({error})",
        "too_large": "file too large ({size_mb} MB, limit {limit_mb} MB)",
        "empty": "empty file",
        "not_image": "not an image",
        "unreadable": "unreadable image (damaged header)",
        "unsupported_format": "unsupported image format {format}",
        "no_pixels": "image has no pixels",
        "too_many_pixels": "too many pixels ({width}x{height}, limit {limit_mp} megapixels)",
        # Pillow refuses headers past twice its own limit before telling the size.
        "far_too_many_pixels": "too many pixels (limit {limit_mp} megapixels)",
        "corrupt": "truncated or corrupt image",
    }

    def __init__(self, kind: str, **details: object) -> None:
        super().__init__(self.REASONS[kind].format(**details))
        self.kind = kind
        self.details = details


def _too_large(size: int) -> ImageRejected:
    return ImageRejected("too_large", size_mb=round(size / 2**20), limit_mb=MAX_FILE_BYTES // 2**20)


def _read_bytes(source: bytes | str | os.PathLike) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as error:
            raise ImageRejected("cannot_read", error=error.strerror or error) from None
        if size > MAX_FILE_BYTES:
            raise _too_large(size)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise ImageRejected("cannot_read", error=error.strerror or error) from None
    if not data:
        raise ImageRejected("empty")
    if len(data) > MAX_FILE_BYTES:
        raise _too_large(len(data))
    return data


_WARNINGS_LOCK = threading.Lock()


@contextlib.contextmanager
def warnings_ignored() -> Iterator[None]:
    """Ignore warnings inside the block, one thread at a time.

    ``warnings.catch_warnings()`` swaps the process-wide filter list on entry and puts its saved copy back on
    exit. Two threads inside it at once (the bot decodes in a thread pool) put back each other's copies, which
    can leave "ignore everything" installed for good. The lock keeps these blocks from overlapping; decoding
    is a small part of a verdict's time, so serialising it costs little.
    """
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def open_image(source: bytes | str | os.PathLike) -> Image.Image:
    """Decode an untrusted image into an RGB picture the right way up.

    Args:
        source: encoded bytes or a file path.

    Returns:
        A decoded RGB ``PIL.Image``.

    Raises:
        ImageRejected: with a one-line reason ("not an image", "truncated or
            corrupt image", "too many pixels (9000x9000, limit 64 megapixels)", ...).
    """
    data = _read_bytes(source)
    # Pillow warns about broken metadata (and about pictures over its own pixel limit, which the check below
    # refuses with their size); the answer is the reason or the picture, never a warning on stderr.
    with warnings_ignored():
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageRejected("not_image") from None
        except Image.DecompressionBombError:
            raise ImageRejected("far_too_many_pixels", limit_mp=MAX_PIXELS // 1_000_000) from None
        except (OSError, SyntaxError, ValueError, EOFError):
            raise ImageRejected("unreadable") from None
        if image.format not in ACCEPTED_FORMATS:
            raise ImageRejected("unsupported_format", format=image.format)
        width, height = image.size
        if width < 1 or height < 1:
            raise ImageRejected("no_pixels")
        if width * height > MAX_PIXELS:
            raise ImageRejected("too_many_pixels", width=width, height=height, limit_mp=MAX_PIXELS // 1_000_000)
        try:
            image.load()
        except (OSError, SyntaxError, ValueError, EOFError, MemoryError):
            raise ImageRejected("corrupt") from None
        try:
            ImageOps.exif_transpose(image, in_place=True)  # in place: no second copy of a picture the right way up
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
        return _scaled_grey(image).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image if mode == "RGBA" else image.convert("RGBA")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba)  # the same blend as alpha_composite, without two more RGBA copies
        return white
    return image.convert("RGB")


_SCALING_CHUNK = 1 << 22  # pixels scaled at a time: 16 MB of float32, whatever the picture's size


def _scaled_grey(image: Image.Image) -> Image.Image:
    """16- or 32-bit greyscale (or float) scaled to 8 bits, in chunks so that the float copy stays small."""
    values = np.asarray(image)
    brightest = np.fmax.reduce(values, axis=None, initial=0)  # fmax: a NaN in a float picture is not the top
    top = 65535.0 if image.mode.startswith("I;16") or brightest > 255 else 255.0
    flat = values.reshape(-1)
    grey = np.empty(flat.shape, dtype=np.uint8)
    for start in range(0, flat.size, _SCALING_CHUNK):
        chunk = flat[start : start + _SCALING_CHUNK].astype(np.float32)
        np.nan_to_num(chunk, copy=False, nan=0.0, posinf=top, neginf=0.0)
        chunk *= 255.0 / top
        chunk += 0.5
        np.clip(chunk, 0.0, 255.0, out=chunk)
        grey[start : start + _SCALING_CHUNK] = chunk  # truncation after +0.5: rounded
    return Image.fromarray(grey.reshape(values.shape))


def _short_side_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    scale = short_side / min(width, height)
    return max(short_side, round(width * scale)), max(short_side, round(height * scale))


def resize_short_side(image: Image.Image, short_side: int) -> Image.Image:
    """Scale so that the shorter side is ``short_side`` pixels, keeping the aspect."""
    size = _short_side_size(*image.size, short_side)
    if size == image.size:
        return image
    return image.resize(size, Image.BICUBIC, reducing_gap=3.0)


def normalise(pixels: np.ndarray) -> np.ndarray:
    """uint8 RGB pixels to the float range the backbones were trained on."""
    return (np.asarray(pixels, dtype=np.float32) - PIXEL_MEAN) / PIXEL_STD


def grid_starts(length: int, size: int, most: int | None = None) -> list[int]:
    """Where the squares of one side of the grid start: as many as ``length`` holds whole (rounded, at least one,
    at most ``most``, default ``GRID_SIDE``), the first at 0 and the last at ``length - size``, evenly between."""
    count = min(GRID_SIDE if most is None else most, max(1, round(length / size)))
    if count == 1:
        return [(length - size) // 2]
    return [round(i * (length - size) / (count - 1)) for i in range(count)]


def crop_boxes(width: int, height: int, size: int, policy: str) -> list[tuple[int, int, int, int]]:
    """The squares (left, top, right, bottom) cut from a short-side-resized picture."""
    if policy == "grid":  # row by row, top left first
        return [(x, y, x + size, y + size) for y in grid_starts(height, size) for x in grid_starts(width, size)]
    if policy == "crop":
        left, top = (width - size) // 2, (height - size) // 2
        return [(left, top, left + size, top + size)]
    if policy == "native":  # the centre square and the centres of the two halves along the diagonal
        centres = [(width / 2, height / 2), (width / 4, height / 4), (3 * width / 4, 3 * height / 4)]
        boxes = []
        for x, y in centres[:NATIVE_CROPS]:
            left = min(max(0, round(x - size / 2)), width - size)
            top = min(max(0, round(y - size / 2)), height - size)
            if (left, top, left + size, top + size) not in boxes:
                boxes.append((left, top, left + size, top + size))
        return boxes
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
            squares along the long side, to be averaged), ``squash`` (the
            whole picture resized to a square, aspect lost), ``native`` (up
            to three squares at the picture's own pixel scale, to be averaged;
            a picture smaller than ``size`` is scaled up as by ``crop``) or
            ``grid`` (up to ``GRID_SIDE`` x ``GRID_SIDE`` squares spread over
            the whole picture at its own pixel scale, to be averaged; a picture
            whose short side is under ``size`` is first scaled up to it).

    Returns:
        float32 array (views, size, size, 3), normalised.
    """
    if policy == "squash":
        return normalise(np.asarray(image.resize((size, size), Image.BICUBIC, reducing_gap=3.0)))[None]
    width, height = image.size
    if policy in ("native", "grid") and min(width, height) >= size:
        return np.stack([normalise(np.asarray(image.crop(box))) for box in crop_boxes(width, height, size, policy)])
    if policy == "native":  # smaller than the input: scaled up like "crop"
        policy = "crop"
    resized_w, resized_h = _short_side_size(width, height, size)
    boxes = crop_boxes(resized_w, resized_h, size, policy)
    if resized_w * resized_h <= MAX_RESIZED_PIXELS:
        resized = resize_short_side(image, size)
        views = [resized.crop(box) for box in boxes]
    else:
        x_scale, y_scale = width / resized_w, height / resized_h
        views = [
            image.resize((size, size), Image.BICUBIC, box=(x0 * x_scale, y0 * y_scale, x1 * x_scale, y1 * y_scale))
            for x0, y0, x1, y1 in boxes
        ]
    return np.stack([normalise(np.asarray(view)) for view in views])


def crop_geometry(width: int, height: int, size: int, policy: str = DEFAULT_POLICY) -> list[tuple[float, ...]]:
    """Where each model view lies in the original picture, as fractions (left, top, right, bottom).

    Used to put a heatmap back on the right place of the photo.
    """
    if policy == "squash":
        return [(0.0, 0.0, 1.0, 1.0)]
    if policy in ("native", "grid") and min(width, height) >= size:
        resized_w, resized_h = width, height
    else:
        policy = "crop" if policy == "native" else policy
        resized_w, resized_h = _short_side_size(width, height, size)
    return [
        (left / resized_w, top / resized_h, right / resized_w, bottom / resized_h)
        for left, top, right, bottom in crop_boxes(resized_w, resized_h, size, policy)
    ]
