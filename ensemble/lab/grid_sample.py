"""How well the training cache's sample of a picture's grid squares stands in for the whole grid that serving reads.

    python -m ensemble.lab.grid_sample ../pool [--weights weights] [--pictures 300]

A grid view with ``train_squares`` caches a train picture's features averaged over at most that many of its grid
squares (a random choice fixed per picture, ``ensemble.features``); serving averages over all of them. The shipped
grid member is fitted on the whole grid since 2026-12-07 (``ensemble.lab.grid_squares``); for it this measures the
sample of ``GRID_TRAIN_SQUARES`` it was fitted on before. For train pictures
whose telegram view has more squares than that, this runs each shipped grid member on every square and compares
its logit on the cached sample's squares with its logit on all of them: the spread of the difference against the
spread of the logits between pictures, and their correlation. A small difference means heads fitted on sampled
squares see the features they serve.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ensemble.data import load_dataset
from ensemble.features import GRID_TRAIN_SQUARES, VIEW_SEEDS, backbone_view, feature_runner, picture_seed
from ensemble.predict_batch import sampled_views
from ensemble.preprocess import ImageRejected, model_inputs, open_image
from ensemble.views import telegram_view


def compare(data_dir: str, weights: str, pictures: int, seed: int = 0) -> dict:
    manifest = json.loads((Path(weights) / "manifest.json").read_text())
    members = [m for m in manifest["members"] if m.get("policy") == "grid"]
    views = {}
    for member in members:
        view = backbone_view(member["recipe"]["backbone_view"])
        head = np.load(Path(weights) / member["head_file"])
        views[member["name"]] = (view, feature_runner(view), head["kernel"], float(head["bias"]))
    samples = load_dataset(data_dir, "train")
    order = np.random.default_rng(seed).permutation(len(samples))
    full: dict[str, list[float]] = {name: [] for name in views}
    sampled: dict[str, list[float]] = {name: [] for name in views}
    labels, counts = [], []
    for index in order:
        if len(labels) >= pictures:
            break
        sample = samples[index]
        try:
            picture = telegram_view(open_image(sample.path))
        except ImageRejected:
            continue
        first = next(iter(views.values()))[0]
        squares = model_inputs(picture, first.input_size, first.policy)
        most = first.train_squares or GRID_TRAIN_SQUARES  # a member fitted on the whole grid: the old sample's size
        if len(squares) <= most:
            continue
        chosen = sampled_views(squares, most, picture_seed(sample) + VIEW_SEEDS["telegram"])
        for name, (_view, run, kernel, bias) in views.items():
            full[name].append(float(run(squares).mean(axis=0) @ kernel + bias))
            sampled[name].append(float(run(chosen).mean(axis=0) @ kernel + bias))
        labels.append(sample.label)
        counts.append(len(squares))
        print(f"{len(labels)}/{pictures}", end="\r", file=sys.stderr, flush=True)
    result = {"pictures": len(labels), "median_squares": float(np.median(counts)), "members": {}}
    for name in views:
        a, b = np.array(full[name]), np.array(sampled[name])
        result["members"][name] = {
            "logit_sd_between_pictures": float(a.std()),
            "difference_sd": float((b - a).std()),
            "difference_median_abs": float(np.median(np.abs(b - a))),
            "correlation": float(np.corrcoef(a, b)[0, 1]),
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ensemble.lab.grid_sample", description=__doc__.splitlines()[0])
    parser.add_argument("data_dir")
    parser.add_argument("--weights", default="weights")
    parser.add_argument("--pictures", type=int, default=300)
    args = parser.parse_args(argv)
    print(json.dumps(compare(args.data_dir, args.weights, args.pictures), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
