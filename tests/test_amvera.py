"""amvera.yml: the keys Amvera's Python environment reads, and its run command really starting the bot."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import yaml

from tests.bot.fake_telegram import FakeTelegram
from tests.bot.helpers import BotProcess

ROOT = Path(__file__).resolve().parents[1]


def amvera() -> dict:
    return yaml.safe_load((ROOT / "amvera.yml").read_text())


def test_amvera_yml_has_what_amvera_reads():
    config = amvera()
    assert set(config) == {"meta", "build", "run"}
    assert config["meta"]["environment"] == "python"
    assert config["meta"]["toolchain"]["name"] == "pip"
    assert str(config["meta"]["toolchain"]["version"]) == "3.11"
    requirements = config["build"]["requirementsPath"]
    assert isinstance(requirements, str) and (ROOT / requirements).is_file()
    run = config["run"]
    assert set(run) == {"command", "persistenceMount", "containerPort"}
    assert isinstance(run["command"], str) and shlex.split(run["command"])[:3] == ["python", "-m", "bot"]
    assert (ROOT / "bot" / "__main__.py").is_file()
    assert run["persistenceMount"] == "/data"
    assert isinstance(run["containerPort"], int) and 0 < run["containerPort"] < 65536


def test_every_deploy_requirement_is_pinned():
    lines = [
        line.split("#")[0].strip() for line in (ROOT / amvera()["build"]["requirementsPath"]).read_text().splitlines()
    ]
    packages = [line for line in lines if line and not line.startswith("-c ")]
    assert packages and all("==" in line for line in packages), packages
    names = {line.split("==")[0].lower() for line in packages}
    assert {"tensorflow-cpu", "keras", "aiogram", "aiogram-dialog", "redis", "babel"} <= names


def test_everything_installed_is_pinned_by_the_constraints_file():
    """requirements.txt reads constraints.txt, which pins every package the install pulls in, to one version."""
    assert "-c constraints.txt" in (ROOT / "requirements.txt").read_text().splitlines()
    lines = [line for line in (ROOT / "constraints.txt").read_text().splitlines() if not line.startswith("#")]
    pins = dict(line.split("==") for line in lines)
    assert len(pins) == len(lines) and all(pins.values())
    lowered = {name.lower().replace("_", "-") for name in pins}
    assert {"aiohttp", "pydantic", "tensorflow-cpu", "urllib3", "cryptography"} <= lowered


def test_the_run_command_answers_start(tmp_path, onnx_dir):
    """Amvera's run command, as written, with Amvera's AMVERA=1, against the fake Bot API server."""
    command = shlex.split(amvera()["run"]["command"])
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])  # this python
    with FakeTelegram() as fake:
        bot = BotProcess(fake, tmp_path / "data", tmp_path / "bot.log", command=command, PATH=path, AMVERA="1",
                         ONNX_DIR=str(onnx_dir))  # fmt: skip
        try:
            seen = len(fake.sent_to(77))
            fake.send_command(77, "/start", language_code="ru")
            greeting = fake.wait_for_sync(lambda: fake.sent_to(77)[seen:], timeout=60, what="the greeting")[0]
            assert "Пришлите картинку" in greeting["text"]
            assert bot.terminate() == 0
        finally:
            bot.kill()
