"""The README and docs/ stay true by themselves: their commands exist, their links resolve, their example and
accuracy table are what the code makes today, and the layout they describe holds (the model side never imports
the bot)."""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# `python -m module [subcommand]`: a subcommand is a bare word right after the module (not a file or folder name)
COMMAND = re.compile(r"python\s+-m\s+([A-Za-z_][\w.]*)(?:[ \t]+([a-z][a-z0-9-]*)(?=[\s`)\"]|$))?")


def documented_commands() -> dict[tuple[str, str], list[str]]:
    """(module, subcommand or "") -> the files that show it."""
    found: dict[tuple[str, str], list[str]] = {}
    for path in DOCS:
        for module, subcommand in COMMAND.findall(path.read_text()):
            found.setdefault((module, subcommand), []).append(path.name)
    return found


def help_of(module: str, subcommand: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", module, *([subcommand] if subcommand else []), "--help"]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)


def test_the_commands_are_found_in_the_docs():
    commands = documented_commands()
    assert ("ensemble", "predict") in commands and ("bot", "harvest") in commands  # the pattern reads them
    assert ("explain", "") in commands and ("ensemble.lab.selection", "") in commands
    assert COMMAND.findall("`python -m explain photo.jpg --out x`") == [("explain", "")]
    assert COMMAND.findall("`python -m\nbot harvest` reads") == [("bot", "harvest")]


def test_every_documented_command_exists_and_answers_help():
    commands = documented_commands()
    missing = [module for module, _ in commands if importlib.util.find_spec(module.split(".")[0]) is None]
    missing += [module for module, _ in commands if module.startswith(("bot", "dialogs", "ensemble", "explain",
                "benchmarks")) and importlib.util.find_spec(module) is None]  # fmt: skip
    assert not missing, f"documented modules that do not exist: {sorted(set(missing))}"
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(commands, pool.map(lambda key: help_of(*key), commands)))
    failed = {
        f"python -m {module} {subcommand}".strip() + f" (in {', '.join(sorted(set(commands[(module, subcommand)])))})":
        (result.stderr or result.stdout).strip().splitlines()[-1:]
        for (module, subcommand), result in results.items()
        if result.returncode != 0 or "usage" not in result.stdout.lower()
    }  # fmt: skip
    assert not failed, failed


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def test_every_link_between_the_docs_resolves():
    broken = []
    for path in DOCS:
        text = path.read_text()
        # a link target cut by a line break or a space is not a link a reader can follow
        broken += [f"{path.name}: {cut!r} (broken by white space)" for cut in re.findall(r"\]\([^)\s]*\s[^)]*\)", text)]
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # an address outside the repository
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists():
                broken.append(f"{path.name}: {target} (no such file)")
            elif anchor:
                headings = re.findall(r"^#+\s+(.*)$", linked.read_text(), flags=re.MULTILINE)
                if anchor not in {_slug(heading) for heading in headings}:
                    broken.append(f"{path.name}: {target} (no such heading)")
    assert not broken, broken


def test_the_readme_is_short_and_the_docs_hold_the_rest():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
    assert {"detector.md", "experiments.md", "operations.md", "speed.md"} <= {path.name for path in DOCS}


def test_the_readme_accuracy_table_is_the_one_the_reports_give():
    from benchmarks.model_tables import readme_table

    reports = [ROOT / "docs" / "report" / "real-vs-ai", ROOT / "docs" / "report" / "pool"]
    assert readme_table(reports) in (ROOT / "README.md").read_text()


def test_the_readme_example_is_what_the_bot_says_about_the_coffee_photo(tmp_path):
    pytest.importorskip("skimage")
    from benchmarks.readme_example import make_example

    example = make_example(str(ROOT / "weights"))
    readme = (ROOT / "README.md").read_text()
    assert f"```text\n{example.messages['en']}\n```" in readme
    assert "docs/img/why-coffee.jpg" in readme and (ROOT / "docs" / "img" / "why-coffee.jpg").is_file()


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(("package", "forbidden"), [("ensemble", {"bot", "dialogs"}), ("explain", {"bot", "dialogs"})])
def test_the_model_side_never_imports_the_bot(package, forbidden):
    offenders = {
        path.relative_to(ROOT).as_posix(): sorted(_imports(path) & forbidden)
        for path in (ROOT / package).rglob("*.py")
        if _imports(path) & forbidden
    }
    assert not offenders, offenders


def test_no_research_probe_sits_beside_the_shipped_path():
    top_level = {path.stem for path in (ROOT / "ensemble").glob("*.py")}
    assert not top_level & {"selection", "upper_stages", "complementary", "policies", "train", "harvest"}
    assert {"selection", "upper_stages", "complementary"} <= {p.stem for p in (ROOT / "ensemble" / "lab").glob("*.py")}
