"""How output meets a terminal: colour, narrow widths, shell completion, help, version.

Colour appears only on a terminal (a real pseudo-terminal here), never with ``NO_COLOR``
set to any non-empty value or with ``--no-color``. A narrow ``COLUMNS`` never breaks or
cuts an address, a path or a message in output that goes to a file or a pipe. Shell
completion is click's, driven by ``_RUNE_SYNC_COMPLETE``.
"""

from __future__ import annotations

import importlib.metadata
import os
import pty
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rune_sync.cli import COMMANDS
from tests.conftest import REPO, Result

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LONG_NS = "n" * 63
LONG_NAME = "volume-with-a-name-long-enough-to-wrap-any-narrow-terminal-line"[:63]
ADDRESS = f"volume/{LONG_NS}/{LONG_NAME}"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "FORCE_COLOR"}}
    return {**env, "TERM": "xterm-256color", **extra}


def run(*args: str, env: dict[str, str], cwd: Path | None = None) -> Result:
    """rune-sync with stdout and stderr on pipes (no terminal)."""
    proc = subprocess.run(
        [sys.executable, "-m", "rune_sync", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def run_on_terminal(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """rune-sync with stdout on a pseudo-terminal; returns the exit code and what it showed."""
    main, child = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(main, 4096)
            except OSError:  # EIO: the child side closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "rune_sync", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=child,
            stderr=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )
    finally:
        os.close(child)
        reader.join(timeout=30)
        os.close(main)
    assert not reader.is_alive()
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def long_source(tmp_path) -> Path:
    """A source with one volume whose namespace and name are as long as DNS allows."""
    src = tmp_path / "a-source-folder-with-a-rather-long-name" / "storage"
    src.mkdir(parents=True)
    root = tmp_path / "volumes-root-that-is-itself-quite-a-long-path-for-a-terminal"
    (src / "runefile.yaml").write_text(f"storage:\n  localVolumeRoot: {root}\n", "utf-8")
    (src / "volumes.yaml").write_text(
        f"volume:\n  name: {LONG_NAME}\n  namespace: {LONG_NS}\n"
        "  size: 1Gi\n  accessMode: ReadWriteOnce\n",
        "utf-8",
    )
    return src


# --- colour -------------------------------------------------------------------------


def test_plan_is_coloured_on_a_terminal(long_source, tmp_path):
    code, shown = run_on_terminal(
        "plan", str(long_source), "--state", str(tmp_path / "s.db"), env=_env()
    )
    assert code == 0
    assert ANSI.search(shown)
    assert ADDRESS in ANSI.sub("", shown)  # soft-wrapped by the terminal, never cut


@pytest.mark.parametrize("value", ["1", "0", "false", "yes"])
def test_no_color_with_any_non_empty_value_turns_colour_off(long_source, tmp_path, value):
    code, shown = run_on_terminal(
        "plan", str(long_source), "--state", str(tmp_path / "s.db"), env=_env(NO_COLOR=value)
    )
    assert code == 0 and "Plan: 1 to create" in shown
    assert not ANSI.search(shown)


def test_an_empty_no_color_does_not_turn_colour_off(long_source, tmp_path):
    _code, shown = run_on_terminal(
        "plan", str(long_source), "--state", str(tmp_path / "s.db"), env=_env(NO_COLOR="")
    )
    assert ANSI.search(shown)


@pytest.mark.parametrize("command", ["plan", "validate"])
def test_no_color_flag_turns_colour_off(long_source, tmp_path, command):
    args = [command, str(long_source), "--no-color"]
    if command == "plan":
        args += ["--state", str(tmp_path / "s.db")]
    code, shown = run_on_terminal(*args, env=_env())
    assert code == 0
    assert not ANSI.search(shown)


def test_validate_diagnostics_are_coloured_only_on_a_terminal(tmp_path):
    src = tmp_path / "bad"
    src.mkdir()
    (src / "v.yaml").write_text(
        "volume: {name: a, size: 1Gi, accessMode: ReadWriteMany}\n", encoding="utf-8"
    )
    code, shown = run_on_terminal("validate", str(src), env=_env())
    assert code == 1 and ANSI.search(shown) and "RS204" in shown
    piped = run("validate", str(src), env=_env())
    assert piped.code == 1 and "RS204" in piped.stdout
    assert not ANSI.search(piped.stdout + piped.stderr)


# --- widths -------------------------------------------------------------------------


def _lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_a_narrow_columns_never_breaks_addresses_or_paths_in_piped_output(long_source, tmp_path):
    env = _env(COLUMNS="40")
    state = str(tmp_path / "state.db")
    handle = str(tmp_path / "volumes-root-that-is-itself-quite-a-long-path-for-a-terminal")
    handle += f"/{LONG_NS}/{LONG_NAME}"

    planned = run("plan", str(long_source), "--state", state, "--out", str(tmp_path / "p"), env=env)
    assert planned.code == 0, planned.stderr
    assert _lines_with(planned.stdout, ADDRESS)
    assert _lines_with(planned.stderr, str(tmp_path / "p"))  # "Saved the plan to …"

    shown = run("show", str(tmp_path / "p"), "--format", "markdown", env=env)
    assert _lines_with(shown.stdout, ADDRESS) and _lines_with(shown.stdout, str(long_source))

    applied = run("apply", str(long_source), "--state", state, "--auto-approve", env=env)
    assert applied.code == 0, applied.stderr
    assert _lines_with(applied.stderr, f"{ADDRESS}: created ({handle})")

    listed = run("state", "list", "--state", state, env=env)
    assert [line for line in _lines_with(listed.stdout, ADDRESS) if handle in line]

    record = run("state", "show", ADDRESS, "--state", state, env=env)
    assert _lines_with(record.stdout, handle)

    (long_source / "volumes.yaml").write_text(
        (long_source / "volumes.yaml").read_text("utf-8").replace("ReadWriteOnce", "ReadWriteMany"),
        "utf-8",
    )
    checked = run("validate", str(long_source), env=env)
    assert checked.code == 1
    [line] = _lines_with(checked.stdout, "RS204")
    assert ADDRESS in line and "volumes.yaml:5:3:" in line


# --- completion, help, version ------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_is_produced_for_each_shell(shell):
    result = run(env=_env(_RUNE_SYNC_COMPLETE=f"{shell}_source"))
    assert result.code == 0
    assert "_RUNE_SYNC_COMPLETE" in result.stdout and "rune-sync" in result.stdout


@pytest.mark.parametrize(
    ("words", "cword", "offered"),
    [
        ("rune-sync pl", "1", {"plan"}),
        ("rune-sync state l", "2", {"list", "lock-info"}),
        ("rune-sync plan --detailed", "2", {"--detailed-exitcode"}),
    ],
)
def test_bash_completion_offers_commands_subcommands_and_flags(words, cword, offered):
    env = _env(_RUNE_SYNC_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=cword)
    result = run(env=env)
    assert result.code == 0
    assert {line.split(",", 1)[1] for line in result.stdout.splitlines()} == offered


def test_help_lists_every_command_on_one_line_with_its_description():
    result = run("--help", env=_env(COLUMNS="80"))
    assert result.code == 0
    listing = result.stdout.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listing] == list(COMMANDS)
    for line in listing:
        _name, description = line.split(None, 1)
        assert len(line) <= 80 and description.endswith(".") and "..." not in description


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help(command):
    result = run(command, "--help", env=_env())
    assert result.code == 0 and result.stdout.startswith("Usage: rune-sync " + command)


def test_version_is_the_installed_distributions():
    result = run("--version", env=_env())
    assert result.code == 0
    assert result.stdout == f"rune-sync, version {importlib.metadata.version('rune-sync')}\n"


def test_the_completion_variable_is_the_one_the_readme_documents():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "_RUNE_SYNC_COMPLETE=bash_source rune-sync" in readme
