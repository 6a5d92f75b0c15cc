"""The "Why?" picture: the user's photo with the heatmap blended over what the models analysed, and a legend."""

from __future__ import annotations

import numpy as np
from PIL import Image

MAX_SIDE = 1280  # Telegram shows photos at most this large
MIN_SIDE = 512  # tiny pictures are enlarged so that heat and legend stay readable
LEGEND_MIN_WIDTH = 420
DIM = 0.55  # brightness of the parts no model looked at
ALPHA_LOW, ALPHA_HIGH = 0.15, 0.65  # heat opacity at the coolest and the hottest spots
IMAGE_FORMATS = ("png", "jpeg")


def display_size(width: int, height: int, max_side: int = MAX_SIDE, min_side: int = MIN_SIDE) -> tuple[int, int]:
    """The overlay size for a width x height picture: same aspect, long side in [min_side, max_side]."""
    if width < 1 or height < 1:
        raise ValueError(f"picture has no pixels ({width}x{height})")
    long_side = max(width, height)
    target = min(max(long_side, min_side), max_side)
    scale = target / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def display_picture(picture: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """The picture scaled for display (see ``display_size``)."""
    size = display_size(*picture.size, max_side=max_side)
    if size == picture.size:
        return picture
    return picture.resize(size, Image.BICUBIC, reducing_gap=3.0)


def colourise(heat: np.ndarray) -> np.ndarray:
    """RGB uint8 colours of a [0, 1] heat map (OpenCV's JET: blue = low, red = high)."""
    import cv2

    levels = np.clip(np.asarray(heat, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def blend(picture: Image.Image, heat: np.ndarray, analysed: np.ndarray) -> np.ndarray:
    """Blend a [0, 1] heat map over the analysed part of a picture; dim, but do not tint, the rest.

    Args:
        picture: RGB picture, the same size as ``heat``.
        heat: float (height, width) in [0, 1].
        analysed: bool (height, width), the pixels some model view covered.

    Returns:
        RGB uint8 (height, width, 3).
    """
    import cv2

    photo = np.asarray(picture, np.float32)
    if photo.shape[:2] != heat.shape or heat.shape != analysed.shape:
        raise ValueError(f"picture {photo.shape[:2]}, heat {heat.shape} and mask {analysed.shape} must match")
    heat = np.clip(heat, 0.0, 1.0)
    alpha = np.where(analysed, ALPHA_LOW + (ALPHA_HIGH - ALPHA_LOW) * heat, 0.0)[..., None]
    tinted = photo * (1.0 - alpha) + colourise(heat).astype(np.float32) * alpha
    out = np.where(analysed[..., None], tinted, photo * DIM)
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    if not analysed.all():
        # Outline the analysed area, so that the dimmed rest does not read as "cold".
        contours, _ = cv2.findContours(analysed.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        thickness = max(1, round(max(analysed.shape) / 400))
        cv2.drawContours(out, contours, -1, (255, 255, 255), thickness, lineType=cv2.LINE_AA)
    return out


def _fit_scale(text: str, width: int, font: int, thickness: int, start: float) -> float:
    """The largest font scale up to ``start`` at which ``text`` fits in ``width`` pixels."""
    import cv2

    (text_width, _), _ = cv2.getTextSize(text, font, 1.0, thickness)
    return max(0.3, min(start, width / max(text_width, 1)))


def legend(width: int, note: str | None = None, partial: bool = False) -> np.ndarray:
    """A strip that says what the colours mean, with a colour bar from low to high.

    Args:
        width: strip width in pixels.
        note: an extra ASCII line (e.g. that nothing drove the FAKE score).
        partial: add that the dimmed part was not analysed.

    Returns:
        RGB uint8 (strip height, width, 3).
    """
    import cv2

    font, thickness, margin = cv2.FONT_HERSHEY_SIMPLEX, 1, max(8, width // 60)
    title = "Heat: how much each area drove the FAKE score"
    if partial:
        title += " (dimmed: not analysed)"
    scale = _fit_scale(title, width - 2 * margin, font, thickness, start=width / 1400 + 0.15)
    (_, text_height), baseline = cv2.getTextSize(title, font, scale, thickness)
    line = text_height + baseline + margin // 2
    lines = [title] + ([note] if note else [])
    bar_height = max(10, text_height)
    height = margin + line * len(lines) + bar_height + margin
    strip = np.full((height, width, 3), 32, np.uint8)
    y = margin + text_height
    for text in lines:
        text_scale = min(scale, _fit_scale(text, width - 2 * margin, font, thickness, scale))
        cv2.putText(strip, text, (margin, y), font, text_scale, (240, 240, 240), thickness, cv2.LINE_AA)
        y += line
    (low_width, _), _ = cv2.getTextSize("low", font, scale, thickness)
    (high_width, _), _ = cv2.getTextSize("high", font, scale, thickness)
    bar_top = y - text_height
    bar_left = margin + low_width + margin // 2
    bar_right = width - margin - high_width - margin // 2
    if bar_right > bar_left:
        ramp = np.linspace(0.0, 1.0, bar_right - bar_left, dtype=np.float32)[None, :].repeat(bar_height, axis=0)
        strip[bar_top : bar_top + bar_height, bar_left:bar_right] = colourise(ramp)
    text_y = bar_top + (bar_height + text_height) // 2
    cv2.putText(strip, "low", (margin, text_y), font, scale, (240, 240, 240), thickness, cv2.LINE_AA)
    cv2.putText(strip, "high", (bar_right + margin // 2, text_y), font, scale, (240, 240, 240), thickness, cv2.LINE_AA)
    return strip


def render(
    picture: Image.Image, heat: np.ndarray, analysed: np.ndarray, note: str | None = None, image_format: str = "png"
) -> bytes:
    """The overlay, encoded: the blended picture with the legend strip below it.

    Args:
        picture: RGB picture at display size (``display_picture``).
        heat: float (height, width) in [0, 1], the picture's size.
        analysed: bool (height, width), what the models looked at.
        note: an extra ASCII legend line.
        image_format: ``png`` (lossless, about 2 MB and 0.1-0.2 s to encode for a 1280 px photo) or
            ``jpeg`` (quality 90, about 0.3 MB in a few ms; Telegram re-encodes photos as JPEG anyway).
    """
    import cv2

    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"unknown overlay format {image_format!r}; choose from {', '.join(IMAGE_FORMATS)}")
    blended = blend(picture, heat, analysed)
    height, width = blended.shape[:2]
    canvas_width = max(width, LEGEND_MIN_WIDTH)  # a narrow picture is centred above a readable legend
    top = np.full((height, canvas_width, 3), 32, np.uint8)
    left = (canvas_width - width) // 2
    top[:, left : left + width] = blended
    image = cv2.cvtColor(
        np.concatenate([top, legend(canvas_width, note=note, partial=not analysed.all())]), cv2.COLOR_RGB2BGR
    )
    # PNG level 1: photos barely compress better at higher levels, and encoding takes longer.
    extension, options = (
        (".png", [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if image_format == "png"
        else (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 90])
    )
    ok, encoded = cv2.imencode(extension, image, options)
    if not ok:
        raise ValueError(f"OpenCV could not encode the overlay as {image_format}")
    return encoded.tobytes()
