"""Awkward and hostile inputs, made inside the tests (no binary fixtures are committed).

Every case is a file a user could hand to the CLI or send to the bot: a name, the file name to use (the suffix
matters to both), a factory for its bytes, and what must come of it: a verdict (``VERDICT``) or a one-line
refusal containing ``expect``. The CLI test, the bot test and ``python -m benchmarks.hostile_inputs`` all walk
the same list.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tests.images import encode, exif_rotated_jpeg, photo_like, png_claiming

VERDICT = "verdict"

# Over both the CLI's 50 MB (ensemble.preprocess.MAX_FILE_BYTES) and the Bot API's 20 MB download limit, and big
# enough that reading it by mistake would show in the CLI test's memory bound. A sparse file: it costs no disk.
OVERSIZE_BYTES = 2**30


def names_an_exception(text: str) -> bool:
    """Whether a refusal shows a Python exception's name (``SyntaxError``) instead of a reason."""
    return re.search(r"[A-Za-z]+(Error|Exception)\b", text) is not None


@dataclass(frozen=True)
class Case:
    """One input and what must come of it."""

    name: str
    file_name: str
    make: Callable[[], bytes]
    expect: str  # VERDICT, or a substring of the one-line reason
    size: int | None = None  # the file's size when it is bigger than its bytes (written as a sparse tail)

    @property
    def valid(self) -> bool:
        return self.expect == VERDICT

    def write(self, folder: Path) -> Path:
        """Write the case into ``folder`` under its file name; a ``size`` costs no disk (a sparse file)."""
        path = folder / self.file_name
        path.write_bytes(self.make())
        if self.size is not None:
            os.truncate(path, self.size)
        return path


def _frames(count: int = 3) -> list[Image.Image]:
    return [photo_like(96, 72, seed=seed) for seed in range(count)]


def _animated_gif() -> bytes:
    first, *rest = (frame.convert("P") for frame in _frames())
    return encode(first, "GIF", save_all=True, append_images=rest, duration=100, loop=0)


def _animated_webp() -> bytes:
    first, *rest = _frames()
    return encode(first, "WEBP", save_all=True, append_images=rest, duration=100, loop=0)


def _grey16_png() -> bytes:
    y, x = np.mgrid[0:120, 0:160]
    return encode(Image.fromarray(((x * 400 + y * 10) % 65536).astype(np.uint16)), "PNG")


def _palette_png_with_transparency() -> bytes:
    palette = photo_like(160, 120).quantize(64)
    return encode(palette, "PNG", transparency=0)


def _rgba_png() -> bytes:
    picture = photo_like(160, 120).convert("RGBA")
    alpha = np.tile(np.linspace(0, 255, 160, dtype=np.uint8), (120, 1))
    picture.putalpha(Image.fromarray(alpha, "L"))
    return encode(picture, "PNG")


def _truncated_jpeg() -> bytes:
    data = encode(photo_like(400, 300), "JPEG", quality=90)
    return data[: len(data) // 2]


def _damaged_png_header() -> bytes:
    # The IHDR chunk's length field overwritten: Pillow fails inside the header, not in the pixels.
    data = bytearray(encode(photo_like(), "PNG"))
    data[8:12] = struct.pack(">I", 0x9A000D)
    return bytes(data)


def _random_bytes() -> bytes:
    return np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()


HTML = b"<!DOCTYPE html>\n<html><head><title>cat</title></head><body><img src='cat.jpg'></body></html>\n"
SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
    b'<circle cx="50" cy="50" r="40" fill="red"/></svg>\n'
)
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"

CASES: list[Case] = [
    # Awkward but valid: each must get a verdict.
    Case("cmyk-jpeg", "cmyk.jpg", lambda: encode(photo_like().convert("CMYK"), "JPEG", quality=90), VERDICT),
    Case("grey16-png", "grey16.png", _grey16_png, VERDICT),
    Case("palette-transparent-png", "palette.png", _palette_png_with_transparency, VERDICT),
    Case("rgba-png", "rgba.png", _rgba_png, VERDICT),
    Case("animated-gif", "animated.gif", _animated_gif, VERDICT),
    Case("animated-webp", "animated.webp", _animated_webp, VERDICT),
    Case("exif-rotated-jpeg", "rotated.jpg", lambda: exif_rotated_jpeg(photo_like(300, 200)), VERDICT),
    Case("1x1-png", "dot.png", lambda: encode(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG"), VERDICT),
    Case("panorama-8000x60", "panorama.jpg", lambda: encode(photo_like(8000, 60), "JPEG", quality=85), VERDICT),
    # Strips: a 144-byte file whose short side, scaled to the model's, would make gigapixels.
    Case("strip-20000x1", "strip-wide.png", lambda: encode(photo_like(20000, 1), "PNG"), VERDICT),
    Case("strip-1x20000", "strip-tall.png", lambda: encode(photo_like(1, 20000), "PNG"), VERDICT),
    Case("bmp", "picture.bmp", lambda: encode(photo_like(), "BMP"), VERDICT),
    Case("tiff", "picture.tiff", lambda: encode(photo_like(), "TIFF"), VERDICT),
    Case("progressive-jpeg", "progressive.jpg", lambda: encode(photo_like(), "JPEG", progressive=True), VERDICT),
    Case("jpeg-named-png", "really-a-jpeg.png", lambda: encode(photo_like(seed=3), "JPEG", quality=90), VERDICT),
    Case("grey-jpeg", "grey.jpg", lambda: encode(photo_like().convert("L"), "JPEG", quality=90), VERDICT),
    # Broken or hostile: each must get a one-line reason.
    Case("zero-bytes", "empty.jpg", lambda: b"", "empty file"),
    Case("truncated-jpeg", "truncated.jpg", _truncated_jpeg, "truncated or corrupt image"),
    Case("damaged-png-header", "damaged.png", _damaged_png_header, "unreadable image (damaged header)"),
    Case("random-bytes", "random.jpg", _random_bytes, "not an image"),
    Case("html-named-jpg", "page.jpg", lambda: HTML, "not an image"),
    Case("svg-named-jpg", "vector.jpg", lambda: SVG, "not an image"),
    Case("pdf", "paper.pdf", lambda: PDF, "not an image"),
    # Past Pillow's own bomb limit (2 x 89 megapixels): refused while the header is read.
    Case("decompression-bomb", "bomb.png", lambda: png_claiming(40000, 40000), "too many pixels"),
    # Under Pillow's limit but over ours (64 megapixels): refused before any pixel is decoded.
    Case("bomb-81-megapixels", "bomb81.png", lambda: png_claiming(9000, 9000), "too many pixels (9000x9000"),
    Case("over-size-limit", "huge.jpg", lambda: encode(photo_like(), "JPEG"), "file too large", size=OVERSIZE_BYTES),
]

VALID = [case for case in CASES if case.valid]
HOSTILE = [case for case in CASES if not case.valid]
