"""``python -m bot harvest``: the pictures users agreed on, downloaded from the fake Bot API over HTTP."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from bot.config import Config
from bot.feedback import EXPORT_COLUMNS
from bot.harvest import harvest, read_votes
from ensemble.data import load_dataset
from tests.bot.fake_telegram import DOWNLOAD, FakeTelegram
from tests.bot.helpers import ROOT, jpeg
from tests.images import encode, photo_like


def export(path: Path, rows: list[tuple[str, int, str, str]]) -> Path:
    """A feedback export: (file_unique_id, user_id, file_id, answer) rows, one second apart."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(EXPORT_COLUMNS)
        for second, (unique_id, user, file_id, answer) in enumerate(rows):
            writer.writerow([unique_id, user, -100, file_id, answer, "UNSURE", 0.5, 1_700_000_000 + second])
    return path


async def test_harvest_takes_agreed_pictures_skips_the_rest_and_resumes(tmp_path):
    async with FakeTelegram() as fake:
        fake_id, fake_unique = fake.add_file(jpeg(seed=1))
        real_id, real_unique = fake.add_file(encode(photo_like(200, 150, 2), "PNG"), "png")
        split_id, split_unique = fake.add_file(jpeg(seed=3))
        alone_id, alone_unique = fake.add_file(jpeg(seed=4))
        rows = [
            (fake_unique, 1, fake_id, "FAKE"), (fake_unique, 2, fake_id, "FAKE"),
            (real_unique, 1, real_id, "FAKE"), (real_unique, 1, real_id, "REAL"),  # changed their mind
            (real_unique, 3, real_id, "REAL"),
            (split_unique, 1, split_id, "REAL"), (split_unique, 2, split_id, "REAL"),
            (split_unique, 3, split_id, "FAKE"),
            (alone_unique, 1, alone_id, "REAL"),
            ("gone-unique", 1, "no-such-file", "FAKE"), ("gone-unique", 2, "no-such-file", "FAKE"),
        ]  # fmt: skip
        feedback = export(tmp_path / "feedback.csv", rows)
        assert read_votes(feedback)[real_unique].label(2, 0) == ("REAL", 2, 0), "a user counts once, latest answer"

        config = Config(bot_token=fake.token, api_url=fake.base_url)
        fake.fail_next("getFile", 500)  # a passing failure: retried
        fake.fail_next(DOWNLOAD, 502)
        out = tmp_path / "harvested" / "train"
        manifest = await harvest(feedback, out, config=config, progress=False)

        taken = {row["file_unique_id"]: row for row in manifest["taken"]}
        assert set(taken) == {fake_unique, real_unique}
        assert taken[fake_unique]["path"] == f"FAKE/{fake_unique}.jpg"
        assert taken[real_unique]["path"] == f"REAL/{real_unique}.png"
        assert (out / taken[fake_unique]["path"]).read_bytes() == fake.file_bytes(fake_id)
        reasons = {row["file_unique_id"]: row["reason"] for row in manifest["skipped"]}
        assert reasons[split_unique] == "no agreement (2 against 1)"
        assert reasons[alone_unique] == "no agreement (1 against 0)"
        assert reasons["gone-unique"] == "Telegram no longer has this picture"
        assert manifest["failed"] == 0
        assert json.loads((out / "harvest.json").read_text()) == manifest
        assert not list(out.rglob("*.part"))

        samples = load_dataset(tmp_path / "harvested", split="train")  # the layout train reads
        assert sorted((s.path.name, s.label) for s in samples) == sorted(
            [(f"{fake_unique}.jpg", 1), (f"{real_unique}.png", 0)]
        )

        downloads = len(fake.downloads)
        again = await harvest(feedback, out, max_disagree=1, config=config, progress=False)
        assert {row["file_unique_id"] for row in again["taken"]} == {fake_unique, real_unique, split_unique}
        assert len(fake.downloads) == downloads + 1, "pictures already there are not downloaded again"

        # Later answers flip one picture and break the agreement on another: neither may stay where it was.
        later_rows = [(fake_unique, user, fake_id, "REAL") for user in (5, 6, 7)] + [(real_unique, 8, real_id, "FAKE")]
        flipped = export(tmp_path / "later.csv", rows + later_rows)
        later = await harvest(flipped, out, max_disagree=2, config=config, progress=False)
        assert {(row["file_unique_id"], row["label"]) for row in later["taken"]} >= {(fake_unique, "REAL")}
        assert not (out / "FAKE" / f"{fake_unique}.jpg").exists() and (out / "REAL" / f"{fake_unique}.jpg").exists()
        assert {row["file_unique_id"]: row["reason"] for row in later["removed"]}[fake_unique] == "now labelled REAL"
        assert read_votes(flipped)[real_unique].label(2, 2) == ("REAL", 2, 1)
        none = await harvest(flipped, out, min_agree=4, config=config, progress=False)
        assert none["taken"] == [] and not list(out.rglob("*.jpg")) and not list(out.rglob("*.png"))
        assert {row["reason"] for row in none["removed"]} == {"no agreement any more"}

        environment = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "TELEGRAM_"))}
        environment.update(BOT_TOKEN=fake.token, TELEGRAM_API_URL=fake.base_url)
        command = [sys.executable, "-m", "bot", "harvest", str(feedback), str(tmp_path / "cli")]
        done = await asyncio.to_thread(
            subprocess.run, command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        assert "2 pictures in" in done.stderr and "(REAL 1, FAKE 1), 3 skipped" in done.stderr
        assert fake.token not in done.stderr

        broken = tmp_path / "broken.csv"
        broken.write_text("file_unique_id,user_id\nx,1\n")
        done = await asyncio.to_thread(
            subprocess.run, [*command[:4], str(broken), str(tmp_path / "none")], cwd=ROOT, env=environment,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 2 and "not a feedback export" in done.stderr and "Traceback" not in done.stderr


def test_the_bot_s_command_line_names_its_commands_and_refuses_others():
    def bot(*args):
        command = [sys.executable, "-m", "bot", *args]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)

    helped = bot("--help")
    assert helped.returncode == 0 and "feedback-export" in helped.stdout and "harvest" in helped.stdout
    unknown = bot("harvset")
    assert unknown.returncode == 2 and "unknown command 'harvset'" in unknown.stderr
