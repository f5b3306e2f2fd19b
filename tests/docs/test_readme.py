"""The README (and the pages in ``docs/``) say only what is true.

The two commands at the top stay as they are; every ``rune-sync`` command written in a
code block names a real command and real flags; every test the safety section cites
exists; every relative link leads to a file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.examples import cli_flags

README = REPO / "README.md"
QUICK_START = (
    "python3 -m venv .venv && .venv/bin/pip install -q . && .venv/bin/rune-sync validate "
    "examples/quickstart && .venv/bin/rune-sync apply examples/quickstart --auto-approve"
)
TEST_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/ruff check "
    ". && .venv/bin/mypy && .venv/bin/pytest -q"
)
PAGES = [README, *sorted((REPO / "docs").glob("*.md")), *sorted(REPO.glob("examples/*/*.md"))]


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _commands(text: str) -> list[str]:
    """Shell lines of code blocks: all of a ``sh`` block, the ``$`` lines of a console."""
    lines = []
    for kind, block in re.findall(r"```(sh|bash|console)\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if kind != "console":
                lines.append(line)
            elif line.startswith("$ "):
                lines.append(line.removeprefix("$ "))
    return lines


def test_the_two_commands_open_the_readme_unchanged():
    blocks = re.findall(r"```sh\n(.*?)\n```", _text(README), re.S)
    assert blocks[:2] == [QUICK_START, TEST_COMMAND]
    assert _text(README).index(QUICK_START) < _text(README).index("\n## ")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_command_in_a_code_block_uses_real_commands_and_flags(page):
    found = []
    for line in _commands(_text(page)):
        # `.venv/bin/rune-sync` and `rune-sync` alike
        found += cli_flags.invocations(line.replace(".venv/bin/rune-sync", "rune-sync"))
    if page == README:
        assert len(found) > 10
    assert [p for i in found for p in cli_flags.problems(i)] == []


def test_every_test_the_safety_section_cites_exists():
    section = _section(_text(README), "Safety guarantees")
    cited = re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", section)
    assert len(cited) >= 15
    missing = [
        f"{path}::{name}"
        for path, name in cited
        if not re.search(rf"^\s*def {name}\(", _text(REPO / path), re.M)
    ]
    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_lead_to_files(page):
    links = re.findall(r"\]\((?!https?://|#)([^)#\s]+)(?:#[^)]*)?\)", _text(page))
    missing = [link for link in links if not (page.parent / link).exists()]
    assert missing == []


def test_every_exit_code_row_names_a_real_command():
    from rune_sync.cli import COMMANDS

    rows = _section(_text(README), "Exit codes").splitlines()
    named = {
        name
        for row in rows
        if row.startswith("| `")
        for name in re.findall(r"`([a-z]+)(?: …)?`", row.split("|")[1])
    }
    assert named == set(COMMANDS)
