"""``python -m explain IMAGE --out heatmap.png [--weights weights]``: the "Why?" answer on the command line.

Prints the verdict, P(FAKE) and the metadata evidence, and writes the heatmap
overlay PNG. Exit status: 0 done, 1 unreadable picture or unwritable output
(one line on stderr), 2 missing or broken weights.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DETAIL_CHARS = 80


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explain", description="Why did the detector say FAKE or REAL?")
    parser.add_argument("image", help="picture to judge and explain")
    parser.add_argument("--out", default="heatmap.png", help="where to write the overlay PNG (default: heatmap.png)")
    parser.add_argument("--weights", default="weights", help="folder with manifest.json (default: weights)")
    parser.add_argument(
        "--method",
        choices=("gradcam", "gradcam++", "scorecam", "tap-shares"),
        default="gradcam",
        help="heatmap method (tap-shares: every tapped layer's share of the FAKE score)",
    )
    return parser


def evidence_lines(evidence) -> list[str]:
    """Human-readable lines about an ``explain.metadata.Evidence``."""
    if evidence.is_empty:
        return ["metadata: nothing found (missing metadata proves nothing: Telegram strips it from photos)"]
    lines = []
    if evidence.ai_signals:
        lines.append(f"metadata says AI: {', '.join(evidence.ai_signals)}")
    for label, value in (("generator", evidence.generator), ("camera", evidence.camera)):
        if value:
            lines.append(f"metadata {label}: {value}")
    if evidence.software:
        lines.append(f"metadata software: {evidence.software}")
    if evidence.c2pa:
        c2pa = evidence.c2pa
        lines.append(
            f"metadata C2PA: claim generator {c2pa.get('claim_generator') or '?'}, "
            f"signer {c2pa.get('signer') or '?'}, validation {c2pa.get('validation_state') or '?'}"
        )
    for key, value in evidence.details.items():
        text = " ".join(str(value).split())
        if len(text) > DETAIL_CHARS:
            text = text[: DETAIL_CHARS - 3] + "..."
        lines.append(f"metadata {key}: {text}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = _parser().parse_args(argv)
    if not (Path(args.weights) / "manifest.json").is_file():
        # Checked before TensorFlow is imported: the quick answer for the commonest mistake.
        print(
            f"error: {Path(args.weights) / 'manifest.json'} not found; pass --weights with the trained ensemble "
            "or run `python -m ensemble train`",
            file=sys.stderr,
        )
        return 2

    from ensemble.detector import Detector
    from ensemble.preprocess import MAX_FILE_BYTES, ImageRejected
    from explain.explainer import Explainer

    image = Path(args.image)
    try:
        if image.stat().st_size > MAX_FILE_BYTES:  # do not read a huge file only to refuse it
            print(f"{image}: file too large (limit {MAX_FILE_BYTES // 2**20} MB)", file=sys.stderr)
            return 1
        data = image.read_bytes()
    except OSError as error:
        print(f"{image}: cannot read file ({error.strerror or error})", file=sys.stderr)
        return 1

    try:
        explainer = Explainer(Detector.from_dir(args.weights), method=args.method)
    except (OSError, ValueError, KeyError) as error:
        print(f"error: cannot load the ensemble from {args.weights}: {error}", file=sys.stderr)
        return 2
    try:
        explanation = explainer.explain(data)
    except ImageRejected as error:
        print(f"{image}: {error}", file=sys.stderr)
        return 1
    try:
        Path(args.out).write_bytes(explanation.overlay)
    except OSError as error:
        print(f"{args.out}: cannot write the heatmap ({error.strerror or error})", file=sys.stderr)
        return 1

    judgement = explanation.judgement
    print(f"verdict: {judgement.verdict}")
    print(f"p_fake: {judgement.p_fake:.4f}")
    members = ", ".join(f"{name} {p:.4f}" for name, p in judgement.member_p_fake.items())
    print(f"members: {members}")
    for line in evidence_lines(explanation.evidence):
        print(line)
    print(f"heatmap ({explanation.method}): {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
