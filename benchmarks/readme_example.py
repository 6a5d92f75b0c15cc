"""The README's example: what the bot answers for scikit-image's coffee photo sent as a Telegram photo.

    python -m benchmarks.readme_example --out docs/img/why-coffee.jpg

The photo goes through what Telegram does to a photo (JPEG q80, as ``ensemble.views.telegram_view``), then
through the bot's own path: the shipped ensemble on ONNX Runtime, the "Why?" explainer with a JPEG overlay
(``bot.analysis.Analyst`` builds it the same way) and the verdict message of ``bot.texts.verdict_text``. It
writes the overlay to ``--out`` and prints the verdict message in English and Russian as the bot sends it
(HTML tags and all). ``tests/test_docs.py`` checks that the README shows this text.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass(frozen=True)
class Example:
    overlay: bytes  # JPEG
    messages: dict[str, str]  # locale -> the verdict message
    caption: str  # the "Why?" overlay's caption, English


def coffee_photo() -> bytes:
    """scikit-image's coffee photo (600x400) as Telegram delivers a photo: JPEG q80 (no resize under 1280 px)."""
    from PIL import Image
    from skimage import data

    from ensemble.views import TELEGRAM_QUALITY

    buffer = io.BytesIO()
    Image.fromarray(data.coffee()).save(buffer, format="JPEG", quality=TELEGRAM_QUALITY)
    return buffer.getvalue()


def make_example(weights: str = "weights") -> Example:
    from bot import texts
    from bot.i18n import build_i18n
    from ensemble.detector import Detector
    from explain.explainer import Explainer

    explainer = Explainer(Detector.from_dir(weights, shipped_onnx=True), image_format="jpeg")
    explanation = explainer.explain(coffee_photo())
    judgement = explanation.judgement
    entries = texts.evidence_entries(explanation.evidence)
    i18n = build_i18n()
    messages = {}
    for locale in ("en", "ru"):
        with i18n.context(), i18n.use_locale(locale):
            messages[locale] = texts.verdict_text(judgement.verdict, judgement.p_fake, entries, "photo")
    with i18n.context(), i18n.use_locale("en"):
        caption = texts.overlay_caption(judgement.verdict, judgement.p_fake)
    return Example(explanation.overlay, messages, caption)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.readme_example", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img/why-coffee.jpg", help="where the Why? overlay goes (JPEG)")
    parser.add_argument("--weights", default="weights", help="folder with manifest.json (default: weights)")
    args = parser.parse_args(argv)
    if not (Path(args.weights) / "manifest.json").is_file():
        print(f"error: {Path(args.weights) / 'manifest.json'} not found; pass --weights", file=sys.stderr)
        return 2
    example = make_example(args.weights)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(example.overlay)
    for locale, message in example.messages.items():
        print(f"--- verdict message ({locale}) ---\n{message}\n")
    print(f"--- Why? caption (en) ---\n{example.caption}\n\noverlay written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
