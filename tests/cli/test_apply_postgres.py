"""Several ``rune-sync apply`` processes on one PostgreSQL state (DESIGN §5, Step 8).

Real ``python -m rune_sync`` children, the local driver into temp dirs, one real
PostgreSQL server (the session's, restarted by one test). A child is made to hold the
lock mid-apply by leaving its stderr unread (see ``test_apply_reliability``), and tests
synchronise on what it prints and records, never on sleeps. What they check: never two
applies at once, no lost record, one serial step per apply (apply moves it as it
starts), a killed holder's lock gone
within seconds, a server restart failing the applier cleanly, and a converging re-run.
"""

from __future__ import annotations

import subprocess
import time

from rune_sync.state import open_backend
from tests.cli.test_apply_reliability import (
    assert_converged,
    assert_truthful_midway,
    held_by_a_blocked_apply,
    lock_holder,
    many,
    reaped,
    records_of,
    rs,
    serial_of,
    spawn,
    wait_for,
    write_volumes,
)
from tests.pgserver import PASSWORD, PgServer

TOTAL = 1000


def test_two_applies_never_run_at_once_and_no_record_is_lost(tmp_path, pg_url):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    src, vols = many(tmp_path, TOTAL)
    other = tmp_path / "other"
    late = [f"x{i}" for i in range(10)]
    write_volumes(other, vols, {"bulk": [f"v{i:04d}" for i in range(TOTAL)], "late": late})
    with open(tmp_path / "out", "w+", encoding="utf-8") as out:
        first = held_by_a_blocked_apply(src, pg_url, cwd, out)
        with reaped(first):
            refused = rs("apply", str(other), "--state", pg_url, "--auto-approve", cwd=cwd)
            assert refused.code == 1
            assert f"pid {first.pid}" in refused.stderr and "force-unlock" in refused.stderr
            assert PASSWORD not in refused.stderr
            assert "Traceback" not in refused.stderr
            assert first.poll() is None, "the first apply must still hold the lock"
            waiter = spawn(
                "apply", str(other), "--state", pg_url, "--auto-approve", "--lock-timeout",
                "60s", cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            with reaped(waiter):
                assert waiter.stderr is not None
                waiting = waiter.stderr.readline()
                assert f"(pid {first.pid})" in waiting and "waiting up to 60s" in waiting
                assert serial_of(pg_url) == 1, "only the holder moved the serial (at its start)"
                _, first_err = first.communicate(timeout=120)
                assert first.returncode == 0, first_err[-2000:]
                waiter_out, waiter_err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, waiter_err[-2000:]
    assert "Apply complete: 10 created, 0 updated" in waiter_out
    assert serial_of(pg_url) == 2, "each apply moves the serial by exactly one"
    expected = {f"bulk/v{i:04d}" for i in range(TOTAL)} | {f"late/{n}" for n in late}
    assert_converged(vols, pg_url, expected, cwd)


def test_a_killed_holder_releases_the_lock_within_seconds_and_a_rerun_converges(
    tmp_path, pg_url
):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    src, vols = many(tmp_path, TOTAL)
    with open(tmp_path / "out", "w+", encoding="utf-8") as out:
        first = held_by_a_blocked_apply(src, pg_url, cwd, out)
        with reaped(first):
            first.kill()
            first.wait(timeout=60)
    wait_for("the server to drop the dead holder's lock", lambda: lock_holder(pg_url) is None,
             timeout=10)  # fmt: skip
    assert_truthful_midway(vols, pg_url)
    started = time.monotonic()
    again = rs("apply", str(src), "--state", pg_url, "--auto-approve", "--lock-timeout", "10s",
               cwd=cwd)  # fmt: skip
    assert again.code == 0, again.stderr[-2000:]
    assert time.monotonic() - started < 120
    assert serial_of(pg_url) == 2, "the killed run and the re-run moved it once each"
    assert_converged(vols, pg_url, {f"bulk/v{i:04d}" for i in range(TOTAL)}, cwd)


def test_a_server_restart_mid_apply_fails_cleanly_and_a_rerun_converges(
    tmp_path, pg_server: PgServer, pg_url
):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    src, vols = many(tmp_path, TOTAL)
    with open(tmp_path / "out", "w+", encoding="utf-8") as out:
        first = held_by_a_blocked_apply(src, pg_url, cwd, out)
        with reaped(first):
            made = len(records_of(pg_url))
            pg_server.restart()
            _, first_err = first.communicate(timeout=120)
    assert first.returncode == 1, first_err[-2000:]
    assert "Traceback" not in first_err, first_err[-3000:]
    assert "connection to the PostgreSQL server was lost" in first_err, first_err[-2000:]
    assert PASSWORD not in first_err
    records = records_of(pg_url)
    assert len(records) >= made, "a committed step was lost"
    assert serial_of(pg_url) == 1, "the interrupted run moved the serial once, at its start"
    assert lock_holder(pg_url) is None
    again = rs("apply", str(src), "--state", pg_url, "--auto-approve", cwd=cwd)
    assert again.code == 0, again.stderr[-2000:]
    assert serial_of(pg_url) == 2
    assert_converged(vols, pg_url, {f"bulk/v{i:04d}" for i in range(TOTAL)}, cwd)


def test_plan_and_apply_take_the_state_name(tmp_path, pg_url):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    src, _ = many(tmp_path, 3)
    named = ("--state", pg_url, "--state-name", "team-a")
    planned = rs("plan", str(src), *named, "--detailed-exitcode", cwd=cwd)
    assert planned.code == 2, planned.stderr
    applied = rs("apply", str(src), *named, "--auto-approve", cwd=cwd)
    assert applied.code == 0, applied.stderr
    again = rs("plan", str(src), *named, "--detailed-exitcode", cwd=cwd)
    assert again.code == 0, again.stderr
    other = rs("plan", str(src), "--state", pg_url, "--detailed-exitcode", cwd=cwd)
    assert other.code == 2, "the default state of the database is another state"
    assert len(records_of_named(pg_url, "team-a")) == 3


def records_of_named(url: str, name: str) -> dict[str, object]:
    with open_backend(url, create=False, name=name) as backend:
        return {str(a): r for a, r in backend.load_all().items()}


def test_the_runefile_can_name_the_database_and_the_state(tmp_path, pg_url):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    src, _ = many(tmp_path, 2)
    runefile = src / "runefile.yaml"
    runefile.write_text(
        runefile.read_text(encoding="utf-8") + f"sync:\n  state: '{pg_url}'\n  stateName: team-b\n",
        encoding="utf-8",
    )
    applied = rs("apply", str(src), "--auto-approve", cwd=cwd)
    assert applied.code == 0, applied.stderr
    assert PASSWORD not in applied.stdout + applied.stderr
    assert len(records_of_named(pg_url, "team-b")) == 2
    assert list(cwd.iterdir()) == [], "nothing is written into the working directory"
