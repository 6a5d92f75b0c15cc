"""The accuracy tables of docs/detector.md and docs/model-tables.md, and the README's small one, from
``evaluate --report`` outputs and ``weights/manifest.json``.

python -m ensemble evaluate ../shared/datasets/real-vs-ai --report docs/report/real-vs-ai
python -m ensemble evaluate ../pool --report docs/report/pool
python -m benchmarks.model_tables docs/report/real-vs-ai docs/report/pool            # every table
python -m benchmarks.model_tables docs/report/real-vs-ai docs/report/pool --readme   # the README's table
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ensemble.calibration import band_of

COLUMNS = (
    ("n", "n", "{:d}"),
    ("logloss", "logloss", "{:.3f}"),
    ("auc", "AUC", "{:.3f}"),
    ("accuracy", "accuracy", "{:.3f}"),
    ("unsure", "UNSURE", "{:.3f}"),
    ("confident_accuracy", "accuracy when not UNSURE", "{:.3f}"),
    ("real_called_fake", "REAL called FAKE", "{:.3f}"),
)


def _cell(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return fmt.format(value)


def markdown(rows: dict, first: str) -> str:
    lines = [f"| {first} | " + " | ".join(title for _, title, _ in COLUMNS) + " |"]
    lines.append("|---" * (len(COLUMNS) + 1) + "|")
    for name, values in rows.items():
        label = f"**{name}**" if name == "overall" else name
        lines.append(f"| {label} | " + " | ".join(_cell(values.get(key), fmt) for key, _, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def test_tables(report_dir: Path) -> str:
    report = json.loads((report_dir / "metrics.json").read_text())
    name = Path(report["data_dir"]).resolve().name
    parts = []
    for view, result in report["views"].items():
        parts.append(
            f"**{name} `{report['split']}`, {view} view, by source**\n\n" + markdown(result["ensemble"], "source")
        )
        groups = result.get("ensemble_by_group", {})
        if set(groups) - set(result["ensemble"]):
            parts.append(f"**{name}, {view} view, by source group**\n\n" + markdown(groups, "group"))
        if "ensemble_by_size" in result:
            parts.append(f"**{name}, {view} view, by picture size**\n\n" + markdown(result["ensemble_by_size"], "size"))
        members = {member: table["overall"] for member, table in result["members"].items()}
        members["ensemble"] = result["ensemble"]["overall"]
        parts.append(
            f"**{name}, {view} view, members against the ensemble (overall)**\n\n" + markdown(members, "model")
        )
        by_source = {
            f"{member}: {source}": values
            for member, table in result["members"].items()
            for source, values in table.items()
            if source != "overall"
        }
        parts.append(f"**{name}, {view} view, each member by source**\n\n" + markdown(by_source, "model: source"))
    return "\n\n".join(parts)


def band_line(manifest: dict) -> str:
    real_edge, fake_edge = band_of(manifest["unsure"])
    return f"UNSURE band: REAL when p <= {real_edge:.2f}, FAKE when p >= {fake_edge:.2f}."


def oof_tables(manifest: dict) -> str:
    members = {member["name"]: member["oof_metrics"]["overall"] for member in manifest["members"]}
    members["ensemble"] = manifest["oof_metrics"]["overall"]
    return "\n\n".join(
        [
            "**Out of fold (train split, telegram view), by source**\n\n" + markdown(manifest["oof_metrics"], "source"),
            "**Out of fold, by source group**\n\n" + markdown(manifest["oof_groups"], "group"),
            "**Out of fold, members against the ensemble**\n\n" + markdown(members, "model"),
            "**Out of fold, each member by source**\n\n"
            + markdown(
                {
                    f"{member['name']}: {source}": values
                    for member in manifest["members"]
                    for source, values in member["oof_metrics"].items()
                    if source != "overall"
                },
                "model: source",
            ),
        ]
    )


def readme_table(report_dirs: list[Path], view: str = "telegram") -> str:
    """One small table: each test split's sources (or categories) and overall, in one view."""
    rows = {}
    for folder in report_dirs:
        report = json.loads((folder / "metrics.json").read_text())
        name = Path(report["data_dir"]).resolve().name
        for source, values in report["views"][view]["ensemble"].items():
            rows[f"{name} `{report['split']}`: {source}"] = values
    table = markdown(rows, f"split: source ({view} view)")
    return table.replace(": overall |", ": **overall** |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.model_tables", description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="*", help="folders written by `python -m ensemble evaluate --report`")
    parser.add_argument("--weights", default="weights")
    parser.add_argument("--readme", action="store_true", help="print only the README's small table (telegram view)")
    args = parser.parse_args(argv)
    if args.readme:
        print(readme_table([Path(folder) for folder in args.reports]))
        return 0
    manifest = json.loads((Path(args.weights) / "manifest.json").read_text())
    print(band_line(manifest) + "\n")
    print(oof_tables(manifest))
    for folder in args.reports:
        print("\n" + test_tables(Path(folder)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
