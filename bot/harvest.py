"""``python -m bot harvest FEEDBACK.csv DIR``: download the pictures users labelled, into ``DIR/REAL`` and
``DIR/FAKE``, the folder layout that ``evaluate`` and ``train`` read.

The CSV is what ``python -m bot feedback-export`` writes: one row per user per picture. A picture is taken when
at least ``--min-agree`` users gave the same answer and at most ``--max-disagree`` said otherwise (defaults 2 and 0:
two people agreeing, nobody against). One or two users' labels are noisy: people mistake polished photos for AI and
good generations for photos, and a few answer at random or to tease the bot, so the default asks for agreement.

Pictures are fetched with the bot's own token (``BOT_TOKEN``, and ``TELEGRAM_API_URL`` when the bot uses another
server): a file_id works only for the bot that received it. Downloads are retried on 429, 5xx and lost connections;
pictures Telegram no longer has, or over the 20 MB limit, are skipped and listed. A file already in ``DIR`` is not
downloaded again, so a cut run can simply be repeated; a picture whose label changed since, or that lost its
agreement, is removed from where an earlier run put it. ``DIR/harvest.json`` records what was taken, skipped
and removed.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import io
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

ANSWERS = ("REAL", "FAKE")
REQUIRED_COLUMNS = ("file_unique_id", "user_id", "file_id", "answer", "answered_at")
SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif"}


class HarvestError(ValueError):
    """The feedback file cannot be used; the message says where and why."""


@dataclass
class Votes:
    """The answers about one picture."""

    users: dict[str, set[str]] = field(default_factory=lambda: {answer: set() for answer in ANSWERS})
    file_ids: list[tuple[float, str]] = field(default_factory=list)  # (answered_at, file_id), any order

    def label(self, min_agree: int, max_disagree: int) -> tuple[str | None, int, int]:
        """(the label, or None when there is no agreement; agreeing users; disagreeing users)."""
        real, fake = len(self.users["REAL"]), len(self.users["FAKE"])
        label, agree, disagree = ("FAKE", fake, real) if fake >= real else ("REAL", real, fake)
        taken = agree >= min_agree and disagree <= max_disagree and agree > disagree
        return (label if taken else None), agree, disagree

    def newest_file_ids(self) -> list[str]:
        seen, ordered = set(), []
        for _when, file_id in sorted(self.file_ids, reverse=True):
            if file_id not in seen:
                seen.add(file_id)
                ordered.append(file_id)
        return ordered


def read_votes(path: Path) -> dict[str, Votes]:
    """The answers in an export, by picture.

    Raises:
        HarvestError: a missing column, or a row with an unknown answer or a bad number (with its line).
    """
    votes: dict[str, Votes] = defaultdict(Votes)
    try:
        with path.open(newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file)
            missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
            if missing:
                raise HarvestError(f"{path}: not a feedback export, columns {', '.join(missing)} missing")
            for row in reader:
                line = reader.line_num
                answer = (row["answer"] or "").strip().upper()
                if answer not in ANSWERS or not row["file_unique_id"] or not row["file_id"]:
                    raise HarvestError(f"{path}, line {line}: needs file ids and an answer REAL or FAKE")
                try:
                    when = float(row["answered_at"])
                except ValueError:
                    raise HarvestError(f"{path}, line {line}: answered_at is not a number") from None
                entry = votes[row["file_unique_id"]]
                for other in ANSWERS:  # a user counts once per picture: the latest row wins
                    entry.users[other].discard(row["user_id"])
                entry.users[answer].add(row["user_id"])
                entry.file_ids.append((when, row["file_id"]))
    except OSError as error:
        raise HarvestError(f"cannot read {path}: {error.strerror or error}") from None
    return dict(votes)


def _kept_earlier(out: Path, label: str, unique_id: str) -> Path | None:
    folder = out / label
    if not folder.is_dir():
        return None
    return next((path for path in sorted(folder.glob(f"{unique_id}.*")) if path.is_file()), None)


def _safe_name(unique_id: str) -> bool:
    return bool(unique_id) and all(c.isalnum() or c in "-_" for c in unique_id)


async def _download(bot, file_ids: list[str]) -> bytes:
    """The first of the file ids Telegram still serves (raises the last error when none)."""
    from bot.downloads import fetch

    error: Exception | None = None
    for file_id in file_ids:
        try:
            return await fetch(bot, file_id)
        except Exception as failure:  # noqa: BLE001 - try the next id, re-raise the last failure below
            error = failure
    raise error or RuntimeError("no file id")


async def harvest(
    feedback_csv: Path, out: Path, min_agree: int = 2, max_disagree: int = 0, config=None, progress: bool = True
) -> dict:
    """Download the agreed pictures; returns the manifest written to ``out/harvest.json``."""
    from tqdm import tqdm

    from bot.app import build_bot
    from bot.config import Config
    from bot.downloads import Gone, TooBig

    votes = read_votes(feedback_csv)
    config = config or Config.for_bot_api()
    taken, skipped, removed, failed = [], [], [], 0
    wanted = []
    for unique_id, entry in sorted(votes.items()):
        label, agree, disagree = entry.label(min_agree, max_disagree)
        if not _safe_name(unique_id):
            skipped.append({"file_unique_id": unique_id, "reason": "file_unique_id is not a safe file name"})
            continue
        # A picture whose label changed since an earlier run, or that lost its agreement, must not stay behind
        # under the other label (or at all): train would read it with a label the users no longer give it.
        for other in ANSWERS:
            earlier = _kept_earlier(out, other, unique_id) if other != label else None
            if earlier is not None:
                earlier.unlink()
                reason = "no agreement any more" if label is None else f"now labelled {label}"
                removed.append({"file_unique_id": unique_id, "path": earlier.relative_to(out).as_posix(),
                                "reason": reason})  # fmt: skip
        if label is None:
            skipped.append({"file_unique_id": unique_id, "reason": f"no agreement ({agree} against {disagree})"})
        else:
            wanted.append((unique_id, entry, label, agree, disagree))
    bot = build_bot(config)
    try:
        for unique_id, entry, label, agree, disagree in tqdm(
            wanted, desc="harvest", unit="picture", file=sys.stderr, disable=not progress
        ):
            row = {"file_unique_id": unique_id, "label": label, "agree": agree, "disagree": disagree}
            path = _kept_earlier(out, label, unique_id)
            if path is not None:
                data = path.read_bytes()  # taken by an earlier run: hashed, not downloaded again
            else:
                try:
                    data = await _download(bot, entry.newest_file_ids())
                except Gone:
                    skipped.append({**row, "reason": "Telegram no longer has this picture"})
                    continue
                except TooBig:
                    skipped.append({**row, "reason": "over the Bot API's 20 MB download limit"})
                    continue
                except Exception as error:  # noqa: BLE001 - retried already; report it and go on with the rest
                    failed += 1
                    skipped.append({**row, "reason": f"download failed: {type(error).__name__}"})
                    continue
                try:
                    with Image.open(io.BytesIO(data)) as image:
                        suffix = SUFFIXES.get(image.format or "")
                except (UnidentifiedImageError, OSError):
                    suffix = None
                if suffix is None:
                    skipped.append({**row, "reason": "not an image this project reads"})
                    continue
                path = out / label / f"{unique_id}{suffix}"
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(path.suffix + ".part")
                partial.write_bytes(data)
                partial.replace(path)  # never a half-written picture under its final name
            taken.append(
                {**row, "path": path.relative_to(out).as_posix(), "bytes": len(data),
                 "sha256": hashlib.sha256(data).hexdigest()}
            )  # fmt: skip
    finally:
        await bot.session.close()
    manifest = {
        "made_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "feedback_csv": str(feedback_csv),
        "feedback_sha256": hashlib.sha256(feedback_csv.read_bytes()).hexdigest(),
        "min_agree": min_agree,
        "max_disagree": max_disagree,
        "pictures_answered": len(votes),
        "taken": taken,
        "skipped": skipped,
        "removed": removed,
        "failed": failed,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "harvest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot harvest",
        description="download pictures users labelled (python -m bot feedback-export) into DIR/REAL, DIR/FAKE",
    )
    parser.add_argument("feedback_csv", help="the CSV that python -m bot feedback-export wrote")
    parser.add_argument("out", help="folder for REAL/, FAKE/ and harvest.json")
    parser.add_argument("--min-agree", type=int, default=2, help="users who must give the same answer (default 2)")
    parser.add_argument("--max-disagree", type=int, default=0, help="users allowed to say otherwise (default 0)")
    args = parser.parse_args(argv)
    return run_harvest(args.feedback_csv, args.out, args.min_agree, args.max_disagree)


def run_harvest(feedback_csv: str, out: str, min_agree: int, max_disagree: int) -> int:
    from bot.config import ConfigError

    if min_agree < 1 or max_disagree < 0:
        print("error: --min-agree must be at least 1 and --max-disagree at least 0", file=sys.stderr)
        return 2
    try:
        manifest = asyncio.run(harvest(Path(feedback_csv), Path(out), min_agree, max_disagree))
    except (HarvestError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    by_label = {label: sum(row["label"] == label for row in manifest["taken"]) for label in ANSWERS}
    print(
        f"{len(manifest['taken'])} pictures in {out} (REAL {by_label['REAL']}, FAKE {by_label['FAKE']}), "
        f"{len(manifest['skipped'])} skipped; see {Path(out) / 'harvest.json'}",
        file=sys.stderr,
    )
    return 1 if manifest["failed"] else 0
