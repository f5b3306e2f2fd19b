"""examples/systemd: the unit runs a real ``rune-sync watch`` command line and carries
the lifecycle and hardening settings its README promises."""

from __future__ import annotations

import shlex

import click

from rune_sync.cli.watch import watch
from tests.conftest import REPO

UNIT = REPO / "examples" / "systemd" / "rune-sync.service"


def directives() -> dict[str, list[str]]:
    """``Key=value`` lines of the unit (continuations joined), every value per key."""
    text = UNIT.read_text(encoding="utf-8").replace("\\\n", " ")
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_exec_start_is_a_watch_command_line_that_parses():
    [exec_start] = directives()["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0].endswith("/rune-sync") and argv[1] == "watch"
    ctx = watch.make_context("watch", argv[2:])  # raises on an unknown flag or bad value
    assert ctx.params["source"] == "/srv/rune-storage"
    assert ctx.params["state"] == "/var/lib/rune-sync/state.db"
    assert ctx.params["webhook_listen"] == ("127.0.0.1", 9465)
    assert ctx.params["log_format"] == "json"
    assert isinstance(ctx.command, click.Command)


def test_the_unit_stops_cleanly_reloads_and_restarts_on_failure():
    unit = directives()
    assert unit["KillSignal"] == ["SIGTERM"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["TimeoutStopSec"] == ["5min"]


def test_the_unit_can_write_only_the_volume_root_and_the_state():
    unit = directives()
    assert unit["ProtectSystem"] == ["strict"]
    assert unit["NoNewPrivileges"] == ["yes"]
    writable = unit["ReadWritePaths"][0].split()
    assert writable == ["/var/lib/rune/volumes", "/var/lib/rune-sync"]
    [exec_start] = unit["ExecStart"]
    state = shlex.split(exec_start)[shlex.split(exec_start).index("--state") + 1]
    assert any(state.startswith(path + "/") for path in writable)
