"""How large a difference in logloss between two ensembles the test split can tell from chance.

Both weight folders predict every test picture of a data set (telegram view, as users' photos arrive; ONNX
Runtime where the graphs passed their check, as served), each with its own calibration. The difference in
logloss is then drawn again over the split's source groups (``ensemble.lab.selection.group_bootstrap_gain``: each
drawn group brings all its pictures, both ensembles on the same pictures), so the interval says how far the
figure would move on another set of sources like these. This reads the test split to report, never to choose.

    python -m benchmarks.test_split_noise ../pool weights /tmp/wnew
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ensemble import metrics
from ensemble.data import load_dataset
from ensemble.evaluate import collect_logits, group_name
from ensemble.lab.selection import group_bootstrap_gain


def calibrated_test_predictions(weights: str, samples) -> tuple[np.ndarray, list[int]]:
    from ensemble.detector import Detector

    detector = Detector.from_dir(weights, shipped_onnx=True)
    logits, kept, _ = collect_logits(detector, samples, "telegram", None)
    return detector.calibrate(logits.mean(axis=1)), kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.test_split_noise", description=__doc__.splitlines()[0])
    parser.add_argument("data_dir")
    parser.add_argument("reference", help="weights folder the other is compared with")
    parser.add_argument("other", help="weights folder")
    parser.add_argument("--split", default="test")
    args = parser.parse_args(argv)
    samples = load_dataset(args.data_dir, split=args.split)
    reference, kept = calibrated_test_predictions(args.reference, samples)
    other, kept_other = calibrated_test_predictions(args.other, samples)
    if kept != kept_other:
        print("error: the two ensembles could read different pictures", file=sys.stderr)
        return 2
    labels = np.array([samples[i].label for i in kept])
    groups = np.array([group_name(samples[i]) for i in kept])
    gain = group_bootstrap_gain(other, reference, labels, groups)
    print(f"{len(kept)} pictures, {len(set(groups))} source groups, telegram view")
    print(f"logloss: {args.reference} {metrics.log_loss(reference, labels):.3f}, {args.other} "
          f"{metrics.log_loss(other, labels):.3f}")  # fmt: skip
    print(f"gain of {args.other} over {args.reference}: {gain['gain']:+.3f}; 5th-95th percentiles with the source "
          f"groups drawn again: {gain['low']:+.3f} to {gain['high']:+.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
