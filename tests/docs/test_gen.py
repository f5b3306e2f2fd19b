"""``docs/cli.md`` and ``docs/codes.md`` are what ``python -m docs.gen`` makes from the code."""

from __future__ import annotations

import subprocess
import sys

from docs import gen
from rune_sync.cli import COMMANDS
from rune_sync.spec import codes
from tests.conftest import REPO


def test_the_generated_pages_are_up_to_date():
    for name, render in gen.PAGES.items():
        on_disk = (REPO / "docs" / name).read_text(encoding="utf-8")
        assert on_disk == render(), f"docs/{name} is out of date: run `python -m docs.gen`"


def test_check_mode_runs_as_a_module_and_writes_nothing():
    before = {p.name: p.read_bytes() for p in (REPO / "docs").glob("*.md")}
    result = subprocess.run(
        [sys.executable, "-m", "docs.gen", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert {p.name: p.read_bytes() for p in (REPO / "docs").glob("*.md")} == before


def test_check_mode_fails_on_a_stale_page(tmp_path, monkeypatch):
    (tmp_path / "cli.md").write_text("# an old reference\n", encoding="utf-8")
    (tmp_path / "codes.md").write_text(gen.codes_page(), encoding="utf-8")
    monkeypatch.setattr(gen, "DOCS", tmp_path)  # the pages' folder, not rune-sync code
    assert gen.main(["--check"]) == 1
    assert (tmp_path / "cli.md").read_text(encoding="utf-8") == "# an old reference\n"
    assert gen.main([]) == 0
    assert (tmp_path / "cli.md").read_text(encoding="utf-8") == gen.cli_page()


def test_the_reference_has_a_section_for_every_command_and_subcommand():
    page = gen.cli_page()
    for name in COMMANDS:
        assert f"## `rune-sync {name}`" in page
    for sub in ("list", "show", "pull", "push", "rm", "retry", "force-unlock", "lock-info"):
        assert f"### `rune-sync state {sub}`" in page


def test_every_code_explain_knows_has_a_troubleshooting_entry():
    page = (REPO / "docs" / "codes.md").read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [
        code
        for code, entry in codes.CODES.items()
        if f"## {code}: {entry.title}" not in page and code not in readme
    ]
    assert missing == []
