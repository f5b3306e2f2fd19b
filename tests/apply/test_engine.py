"""The engine end to end: refusals, the serial, failures and retries, Stalled, the
pre-destroy snapshot as a safety gate, stopping, crash recovery, and a Hypothesis
property that directories and records agree after every apply (DESIGN §5–§7).

Real sources, the real planner and refresh, a real SQLite state and the real local
driver; failures are injected by :class:`tests.apply.Flaky`, which delegates to it.
"""

from __future__ import annotations

import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rune_sync import errors
from rune_sync.apply import engine
from rune_sync.apply.events import Phase, Silent
from rune_sync.drivers.base import OpContext
from rune_sync.errors import UnsafePlanError
from rune_sync.plan.model import Action
from rune_sync.spec.model import Address, Kind
from rune_sync.state import open_backend
from tests.apply import (
    FAST,
    FAST_RETRY,
    START,
    Env,
    Flaky,
    actions,
    docs,
    make_env,
    snapshot,
    snapshot_handles,
    storage_class,
    volume,
    volume_handles,
)

NOW = datetime(2025, 11, 22, 9, 0, tzinfo=UTC)


def transient(message: str = "HTTP 503 from the backend", **kw: Any) -> errors.DriverTransientError:
    return errors.DriverTransientError(message, driver="local", operation="provision", **kw)


def two(*extra: str) -> dict[str, str]:
    return {"v.yaml": docs(volume("a"), volume("b"), *extra)}


def three(*, keep_a: bool = True, a_class: str | None = None) -> dict[str, str]:
    parts = [volume("b"), volume("c")]
    if keep_a:
        parts.insert(0, volume("a", reclaim="delete", storage_class=a_class))
    return {"v.yaml": docs(storage_class("fast"), *parts)}


def write(path: Path, text: str = "precious") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def snapshot_of(env: Env, volume_name: str) -> list[Any]:
    return [
        r
        for r in env.records().values()
        if r.kind is Kind.SNAPSHOT and r.spec.get("preDestroyOf") == f"volume/prod/{volume_name}"
    ]


# ----------------------------------------------------------------------------- refusals


def fingerprint(env: Env) -> tuple[Any, ...]:
    """Everything an apply could change: serial, source, records, directories."""
    meta = env.backend.meta()
    records = {
        a: (r.status, r.retained, r.updated_at, r.spec_json) for a, r in env.records().items()
    }
    return meta.serial, meta.source, records, env.volume_dirs(), env.snapshot_dirs()


def test_a_blocked_destroy_refuses_the_whole_plan_and_writes_nothing(env: Env):
    assert env.apply(three()).result.ok
    write(env.root / "prod" / "a" / "f")
    before = fingerprint(env)
    # The same plan also creates a volume: that must not happen either.
    planned = env.plan(
        {"v.yaml": docs(storage_class("fast"), volume("b"), volume("c"), volume("d"))}
    )
    assert engine.refusals(planned.plan) == [
        "volume/prod/a: destroy needs --allow-destroy "
        "(removed from the source and reclaimPolicy is delete)"
    ]
    with pytest.raises(UnsafePlanError, match="nothing was changed") as caught:
        env.apply(planned)
    assert "--allow-destroy" in str(caught.value)
    assert fingerprint(env) == before
    assert not (env.root / "prod" / "d").exists()
    assert (env.root / "prod" / "a" / "f").read_text() == "precious"


def test_a_blocked_replace_refuses_the_whole_plan_and_writes_nothing(env: Env):
    assert env.apply(three()).result.ok
    before = fingerprint(env)
    planned = env.plan(three(a_class="fast"))
    assert [c.action for c in planned.plan.changes if c.blocked] == [Action.REPLACE]
    with pytest.raises(UnsafePlanError, match="--allow-replace"):
        env.apply(planned)
    assert fingerprint(env) == before


def test_the_mass_delete_breaker_refuses_and_writes_nothing(env: Env):
    files = {"v.yaml": docs(volume("a", reclaim="delete"), volume("b"), volume("c"))}
    assert env.apply(files).result.ok
    before = fingerprint(env)
    planned = env.plan({"v.yaml": volume("c")}, allow_destroy=True)
    assert planned.plan.mass_delete is not None
    (reason,) = engine.refusals(planned.plan)
    assert "--allow-mass-delete" in reason
    with pytest.raises(UnsafePlanError, match="allow-mass-delete"):
        env.apply(planned)
    assert fingerprint(env) == before
    applied = env.apply({"v.yaml": volume("c")}, allow_destroy=True, allow_mass_delete=True)
    assert applied.result.ok
    assert applied.result.count(Action.DESTROY) == 1
    assert applied.result.count(Action.FORGET) == 1


def test_an_empty_source_trips_the_breaker(env: Env):
    assert env.apply(two()).result.ok
    before = fingerprint(env)
    with pytest.raises(UnsafePlanError, match="all 2 managed volumes"):
        env.apply({})
    assert fingerprint(env) == before


# ----------------------------------------------------------------------------- serial & source


def test_serial_moves_on_once_before_the_first_write_and_the_source_is_recorded(env: Env):
    start = env.serial()
    seen: list[int] = []

    def first_call(ctx: OpContext, _: object) -> None:
        with open_backend(env.state_path, create=False) as other:
            seen.append(other.meta().serial)

    planned = env.plan({"v.yaml": docs(volume("a"), volume("b"), snapshot("s", "a"))})
    applied = env.apply(planned, driver=Flaky(env.driver, before={"provision": first_call}))
    assert applied.result.ok
    assert env.serial() == start + 1
    assert seen == [start + 1, start + 1]  # already moved on during the first driver call
    assert env.backend.meta().source == planned.source
    assert planned.source.url.endswith("src0")


class WriteLog:
    """The real backend, with the names of its write calls logged in order."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self.writes: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._backend, name)
        if name in ("put", "delete", "bump_serial", "replace_all"):

            def logged(*args: Any, **kw: Any) -> Any:
                self.writes.append(name)
                return attr(*args, **kw)

            return logged
        return attr


def test_the_serial_moves_before_any_record_is_written(env: Env):
    planned = env.plan({"v.yaml": docs(volume("a"), volume("b"), snapshot("s", "a"))})
    log = WriteLog(env.backend)
    result = engine.execute(
        planned.plan,
        backend=log,
        drivers=lambda name: env.driver,
        reporter=Silent(),
        settings=FAST,
        source=planned.source,
    )
    assert result.ok
    assert log.writes[0] == "bump_serial"
    assert log.writes.count("bump_serial") == 1
    assert log.writes.count("put") >= 6  # intent and result of each of the three changes


class ReadLog:
    """The real backend, with its whole-state reads (``load_all``, ``records``) logged."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self.reads: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._backend, name)
        if name in ("load_all", "records"):

            def logged(*args: Any, **kw: Any) -> Any:
                self.reads.append(name)
                return attr(*args, **kw)

            return logged
        return attr


def test_records_the_caller_read_under_its_lock_are_used_not_read_again(env: Env):
    assert env.apply(two()).result.ok
    planned = env.plan({"v.yaml": docs(volume("a"), volume("b", size="2Gi"), volume("c"))})
    held = env.backend.load_all()  # under the lock env holds, as the caller planned
    log = ReadLog(env.backend)
    result = engine.execute(
        planned.plan,
        backend=log,
        drivers=lambda name: env.driver,
        reporter=Silent(),
        settings=FAST,
        source=planned.source,
        records=held,
    )
    assert result.ok
    assert log.reads == []
    assert set(env.records()) == {"volume/prod/a", "volume/prod/b", "volume/prod/c"}
    assert env.record("volume/prod/a") == held[Address.parse("volume/prod/a")]
    assert env.record("volume/prod/b").spec["size"] == "2Gi"
    assert not env.plan(
        {"v.yaml": docs(volume("a"), volume("b", size="2Gi"), volume("c"))}
    ).plan.has_changes


def test_a_plan_without_changes_leaves_the_serial_and_source_alone(env: Env):
    first = env.plan(two())
    assert env.apply(first).result.ok
    serial, source = env.serial(), env.backend.meta().source
    again = env.plan(two())
    assert not again.plan.has_changes
    applied = env.apply(again)
    assert applied.result == engine.Result()
    assert applied.result.ok and applied.result.summary().startswith("Apply complete: 0 created")
    assert env.serial() == serial
    assert env.backend.meta().source == source == first.source


def test_a_failed_run_moves_the_serial_on_once_too(env: Env):
    start = env.serial()
    driver = Flaky(env.driver, fail={"provision": {"*": errors.DriverConfigError("bad")}})
    assert not env.apply(two(), driver=driver).result.ok
    assert env.serial() == start + 1


# ----------------------------------------------------------------------------- retries


@pytest.mark.parametrize("failures", [1, 2, 4])
def test_transient_failures_then_success_are_applied(env: Env, failures: int):
    driver = Flaky(env.driver, fail={"provision": {"volume/prod/b": [transient()] * failures}})
    applied = env.apply(two(), driver=driver)
    assert applied.result.ok, applied.result.summary()
    record = env.record("volume/prod/b")
    assert record.status == "Available"
    assert record.attempts == failures + 1
    assert record.failed_runs == 0
    assert record.failure_message is None
    assert driver.count("provision", "volume/prod/b") == failures + 1
    retries = applied.events.of("volume/prod/b", Phase.RETRY)
    assert len(retries) == failures
    assert "HTTP 503 from the backend; attempt 1 of 5" in retries[0].message
    assert env.record("volume/prod/a").attempts == 1
    env.assert_converged(two())


def test_retry_after_is_honoured_between_attempts(env: Env):
    driver = Flaky(env.driver, fail={"provision": {"volume/prod/a": [transient(retry_after=0.05)]}})
    applied = env.apply({"v.yaml": volume("a")}, driver=driver)
    assert applied.result.ok
    first, second = driver.times("provision", "volume/prod/a")
    assert second - first >= 0.05
    (told,) = applied.events.of("volume/prod/a", Phase.RETRY)
    assert told.seconds >= 0.05
    assert env.record("volume/prod/a").attempts == 2


@pytest.mark.parametrize(
    "error",
    [
        errors.DriverConfigError("local: parameter 'mode' is invalid"),
        errors.DriverAuthError("do-volume: token rejected"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_permanent_errors_fail_at_once(env: Env, error: Exception):
    driver = Flaky(env.driver, fail={"provision": {"volume/prod/b": [error]}})
    applied = env.apply(two(), driver=driver)
    assert not applied.result.ok
    assert driver.count("provision", "volume/prod/b") == 1
    assert applied.events.of("volume/prod/b", Phase.RETRY) == []
    record = env.record("volume/prod/b")
    assert record.status == "Failed"
    assert record.failure_message == str(error)
    assert record.attempts == 1
    assert record.failed_runs == 1
    assert record.intent is None
    assert record.handle is None
    assert env.record("volume/prod/a").status == "Available"
    (failed,) = applied.events.of("volume/prod/b", Phase.FAILED)
    assert failed.message == str(error)


def test_exhausted_attempts_fail_the_volume_skip_its_dependents_and_spare_the_rest(env: Env):
    files = {
        "v.yaml": docs(
            volume("a"), volume("b"), snapshot("s", "b"), volume("r", restore="s"), volume("c")
        )
    }
    driver = Flaky(env.driver, fail={"provision": {"volume/prod/b": transient("HTTP 500")}})
    applied = env.apply(files, driver=driver)
    result = applied.result
    assert not result.ok and not result.stopped
    assert driver.count("provision", "volume/prod/b") == 5
    record = env.record("volume/prod/b")
    assert (record.status, record.attempts, record.failed_runs) == ("Failed", 5, 1)
    assert record.failure_message == "HTTP 500"
    for name in ("a", "c"):
        assert env.record(f"volume/prod/{name}").status == "Available"
    by = {str(o.address): o for o in result.outcomes}
    for skipped in ("snapshot/prod/s", "volume/prod/r"):
        assert by[skipped].message == "skipped: it depends on volume/prod/b, which failed"
        assert skipped not in env.records()
    assert sorted(applied.events.phases(Phase.SKIPPED)) == ["snapshot/prod/s", "volume/prod/r"]
    assert driver.count("snapshot") == 0 and driver.count("restore_from_snapshot") == 0
    assert result.summary() == (
        "Apply failed: 2 created, 0 updated, 0 replaced, 0 destroyed, 0 forgotten; "
        "1 failed, 2 not run."
    )
    assert env.volume_dirs() == {str(env.root / "prod" / n) for n in ("a", "c")}
    # The next run (the backend is back) finishes the job.
    again = env.plan(files)
    assert actions(again.plan) == {
        "volume/prod/b": "create",
        "snapshot/prod/s": "create",
        "volume/prod/r": "create",
    }
    assert env.apply(again).result.ok
    record = env.record("volume/prod/b")
    assert (record.status, record.attempts, record.failed_runs) == ("Available", 1, 0)
    assert record.failure_message is None
    env.assert_converged(files)


# ----------------------------------------------------------------------------- stall


def test_a_volume_failing_three_runs_is_stalled_until_state_retry(env: Env):
    broken = Flaky(
        env.driver, fail={"provision": {"volume/prod/b": errors.DriverConfigError("no")}}
    )
    for run in (1, 2, 3):
        applied = env.apply(two(), driver=broken)
        assert not applied.result.ok
        record = env.record("volume/prod/b")
        assert record.failed_runs == run
        assert record.status == ("Stalled" if run == 3 else "Failed")
    (failed,) = applied.events.of("volume/prod/b", Phase.FAILED)
    assert "Stalled after 3 failed runs" in failed.message
    assert "rune-sync state retry volume/prod/b" in failed.message
    assert env.record("volume/prod/b").failure_message == "no"

    calls = broken.count("provision")
    later = env.plan(two())
    assert actions(later.plan) == {}
    (stalled,) = [c for c in later.plan.changes if str(c.address) == "volume/prod/b"]
    assert stalled.reason.startswith("Stalled after 3 failed runs (no)")
    assert env.apply(later, driver=broken).result.ok
    assert broken.count("provision") == calls

    # `rune-sync state retry volume/prod/b`
    env.backend.put(env.record("volume/prod/b").unstall(now=NOW))
    assert env.record("volume/prod/b").status == "Failed"
    retried = env.plan(two())
    assert actions(retried.plan) == {"volume/prod/b": "create"}
    assert env.apply(retried).result.ok
    record = env.record("volume/prod/b")
    assert (record.status, record.failed_runs, record.attempts) == ("Available", 0, 1)
    env.assert_converged(two())


def test_success_resets_the_failed_runs(env: Env):
    broken = Flaky(
        env.driver, fail={"provision": {"volume/prod/b": errors.DriverConfigError("no")}}
    )
    for _ in range(2):
        env.apply(two(), driver=broken)
    assert env.record("volume/prod/b").failed_runs == 2
    assert env.apply(two()).result.ok
    record = env.record("volume/prod/b")
    assert (record.status, record.failed_runs, record.failure_message) == ("Available", 0, None)


def test_stall_after_one_stalls_at_the_first_failed_run(env: Env):
    broken = Flaky(
        env.driver, fail={"provision": {"volume/prod/b": errors.DriverConfigError("no")}}
    )
    settings = engine.ApplySettings(parallelism=2, stall_after=1, retry=FAST_RETRY)
    env.apply(two(), driver=broken, settings=settings)
    assert env.record("volume/prod/b").status == "Stalled"


def test_a_failed_expand_keeps_the_volume_and_its_status(env: Env):
    assert env.apply({"v.yaml": volume("a", size="1Gi")}).result.ok
    write(env.root / "prod" / "a" / "f")
    broken = Flaky(env.driver, fail={"expand": {"*": errors.DriverConfigError("cannot grow")}})
    applied = env.apply({"v.yaml": volume("a", size="2Gi")}, driver=broken)
    assert not applied.result.ok
    record = env.record("volume/prod/a")
    assert (record.status, record.intent, record.failed_runs) == ("Available", None, 1)
    assert record.spec["size"] == "1Gi"
    assert (env.root / "prod" / "a" / "f").read_text() == "precious"
    assert env.apply({"v.yaml": volume("a", size="2Gi")}).result.ok
    assert env.record("volume/prod/a").spec["size"] == "2Gi"


def test_a_failed_delete_keeps_the_volume_its_status_and_its_data(env: Env):
    assert env.apply(three()).result.ok
    write(env.root / "prod" / "a" / "f")
    broken = Flaky(env.driver, fail={"delete": {"*": errors.DriverConfigError("busy")}})
    applied = env.apply(three(keep_a=False), driver=broken, allow_destroy=True)
    assert not applied.result.ok
    record = env.record("volume/prod/a")
    assert (record.status, record.intent, record.failed_runs) == ("Available", None, 1)
    assert record.failure_message == "busy"
    assert (env.root / "prod" / "a" / "f").read_text() == "precious"
    assert env.apply(three(keep_a=False), allow_destroy=True).result.ok
    assert not (env.root / "prod" / "a").exists()


def test_a_volume_stalled_while_being_destroyed_is_skipped_by_later_plans(env: Env):
    assert env.apply(three()).result.ok
    broken = Flaky(env.driver, fail={"delete": {"*": errors.DriverConfigError("busy")}})
    for _ in range(3):
        env.apply(three(keep_a=False), driver=broken, allow_destroy=True)
    assert env.record("volume/prod/a").status == "Stalled"
    later = env.plan(three(keep_a=False), allow_destroy=True)
    assert actions(later.plan) == {}


# ----------------------------------------------------------------------------- pre-destroy snapshot


def assert_nothing_destroyed(env: Env, applied: Any) -> None:
    assert not applied.result.ok
    assert (env.root / "prod" / "a" / "f").read_text() == "precious"
    record = env.record("volume/prod/a")
    assert record.status == "Available"
    assert record.handle == str(env.root / "prod" / "a")
    assert record.intent is None
    assert record.failed_runs == 1
    assert record.failure_message is not None
    assert "failed, nothing was destroyed" in record.failure_message
    (snap,) = snapshot_of(env, "a")
    assert (snap.status, snap.retained, snap.intent) == ("Failed", True, None)
    assert snap.failure_message


@pytest.mark.parametrize(
    "error",
    [errors.DriverConfigError("snapshot refused"), transient("snapshot timed out")],
    ids=["permanent", "transient"],
)
def test_a_failed_predestroy_snapshot_destroys_nothing(env: Env, error: Exception):
    assert env.apply(three()).result.ok
    write(env.root / "prod" / "a" / "f")
    driver = Flaky(env.driver, fail={"snapshot": {"volume/prod/a": error}})
    applied = env.apply(three(keep_a=False), driver=driver, allow_destroy=True)
    assert_nothing_destroyed(env, applied)
    assert driver.count("delete") == 0
    assert str(error) in str(env.record("volume/prod/a").failure_message)
    # Once snapshots work again the destroy goes through, with a new snapshot.
    assert env.apply(three(keep_a=False), allow_destroy=True).result.ok
    assert not (env.root / "prod" / "a").exists()
    ready = [s for s in snapshot_of(env, "a") if s.status == "Ready"]
    assert len(ready) == 1
    assert (Path(str(ready[0].handle)) / "f").read_text() == "precious"


def spoil(ctx: OpContext, handle: object) -> None:
    """After the real snapshot: the copy no longer matches the volume."""
    write(Path(str(handle)) / "stray", "not in the volume")


def test_a_predestroy_snapshot_that_does_not_verify_destroys_nothing(env: Env):
    assert env.apply(three()).result.ok
    write(env.root / "prod" / "a" / "f")
    driver = Flaky(env.driver, after={"snapshot": spoil})
    applied = env.apply(three(keep_a=False), driver=driver, allow_destroy=True)
    assert_nothing_destroyed(env, applied)
    assert driver.count("verify_snapshot") == 1 and driver.count("delete") == 0
    assert "does not match" in str(env.record("volume/prod/a").failure_message)


def test_a_failed_verify_on_replace_keeps_the_old_volume_and_spec(env: Env):
    assert env.apply(three()).result.ok
    write(env.root / "prod" / "a" / "f")
    driver = Flaky(env.driver, fail={"verify_snapshot": {"*": errors.DriverError("differs")}})
    applied = env.apply(three(a_class="fast"), driver=driver, allow_replace=True)
    assert_nothing_destroyed(env, applied)
    assert env.record("volume/prod/a").spec["storageClassName"] == "local"


def test_a_predestroy_snapshot_that_was_made_keeps_its_handle_when_verify_fails(env: Env):
    assert env.apply(three()).result.ok
    write(env.root / "prod" / "a" / "f")
    env.apply(
        three(keep_a=False), driver=Flaky(env.driver, after={"snapshot": spoil}), allow_destroy=True
    )
    assert len(env.snapshot_dirs()) == 1
    assert snapshot_handles(env.records()) == env.snapshot_dirs()


def test_two_replaces_in_the_same_second_keep_a_copy_of_each_generation(env: Env):
    env.clock = lambda: START
    assert env.apply(three()).result.ok
    write(env.root / "prod" / "a" / "f", "A")
    assert env.apply(three(a_class="fast"), allow_replace=True).result.ok
    write(env.root / "prod" / "a" / "f", "B")
    env.apply(three(), allow_replace=True)
    kept = {(Path(d) / "f").read_text() for d in env.snapshot_dirs()}
    if (env.root / "prod" / "a" / "f").exists():
        kept.add((env.root / "prod" / "a" / "f").read_text())  # refused: B still in place
    assert kept >= {"A", "B"}


# ----------------------------------------------------------------------------- stop


def test_a_stop_lets_the_running_change_finish_and_starts_nothing_else(env: Env):
    stop = threading.Event()
    calls: list[str] = []

    def second_sets_stop(ctx: OpContext, _: object) -> None:
        calls.append(ctx.address)
        if len(calls) == 2:
            stop.set()

    names = ["a", "b", "c", "d", "e"]
    files = {"v.yaml": docs(*(volume(n) for n in names))}
    driver = Flaky(env.driver, before={"provision": second_sets_stop})
    settings = engine.ApplySettings(parallelism=1, retry=FAST_RETRY)
    applied = env.apply(files, driver=driver, settings=settings, stop=stop)
    result = applied.result
    assert result.stopped and not result.ok
    assert calls == ["volume/prod/a", "volume/prod/b"]
    for name in ("a", "b"):
        record = env.record(f"volume/prod/{name}")
        assert (record.status, record.intent) == ("Available", None)
    records = env.records()
    for name in ("c", "d", "e"):
        assert f"volume/prod/{name}" not in records
    not_started = {str(o.address): o.message for o in result.outcomes if not o.ok}
    assert not_started == {
        f"volume/prod/{n}": "not started: the run was stopped" for n in ("c", "d", "e")
    }
    assert sorted(applied.events.phases(Phase.SKIPPED)) == [f"volume/prod/{n}" for n in "cde"]
    assert result.summary() == (
        "Apply stopped: 2 created, 0 updated, 0 replaced, 0 destroyed, 0 forgotten; "
        "0 failed, 3 not run."
    )
    again = env.apply(files)
    assert again.result.ok and again.result.count(Action.CREATE) == 3
    env.assert_converged(files)


def test_a_stop_cuts_a_retry_wait_short(env: Env):
    stop = threading.Event()
    slow = transient("HTTP 429", retry_after=30)

    def stop_soon(ctx: OpContext, _: object) -> None:
        threading.Timer(0.05, stop.set).start()

    driver = Flaky(
        env.driver, fail={"provision": {"volume/prod/a": [slow]}}, before={"provision": stop_soon}
    )
    started = time.monotonic()
    applied = env.apply({"v.yaml": volume("a")}, driver=driver, stop=stop)
    assert time.monotonic() - started < 5
    assert applied.result.stopped
    record = env.record("volume/prod/a")
    assert record.status == "Failed" and record.intent is None
    assert "stopped while waiting to retry" in str(record.failure_message)
    assert env.apply({"v.yaml": volume("a")}).result.ok
    env.assert_converged({"v.yaml": volume("a")})


# ----------------------------------------------------------------------------- crashes


class Crash(Exception):
    """Stands for the process dying at this point (not a driver error: nothing catches it)."""


def crash(ctx: OpContext, _: object) -> None:
    raise Crash("killed")


@pytest.mark.parametrize(
    ("op", "when", "address", "status", "intent"),
    [
        ("provision", "before", "volume/prod/a", "Provisioning", "provision"),
        ("provision", "after", "volume/prod/a", "Provisioning", "provision"),
        ("snapshot", "after", "snapshot/prod/s", "Creating", "snapshot"),
    ],
)
def test_a_crash_leaves_a_truthful_state_and_a_rerun_converges(
    env: Env, op: str, when: str, address: str, status: str, intent: str
):
    files = {"v.yaml": docs(volume("a"), snapshot("s", "a"))}
    hooks = {op: crash}
    driver = Flaky(env.driver, before=hooks) if when == "before" else Flaky(env.driver, after=hooks)
    with pytest.raises(Crash):
        env.apply(files, driver=driver)
    record = env.record(address)
    assert (record.status, record.intent) == (status, intent)
    assert env.apply(files).result.ok
    env.assert_converged(files)


def test_a_crash_after_deleting_a_snapshot_converges_on_rerun(env: Env):
    assert env.apply({"v.yaml": docs(volume("a"), snapshot("s", "a"))}).result.ok
    with pytest.raises(Crash):
        env.apply(
            {"v.yaml": volume("a")},
            driver=Flaky(env.driver, after={"delete_snapshot": crash}),
            allow_destroy=True,
        )
    record = env.record("snapshot/prod/s")
    assert (record.status, record.intent) == ("Deleting", "delete-snapshot")
    assert env.apply({"v.yaml": volume("a")}, allow_destroy=True).result.ok
    assert "snapshot/prod/s" not in env.records()
    env.assert_converged({"v.yaml": volume("a")}, allow_destroy=True)


def test_a_crash_after_deleting_during_a_replace_converges_on_rerun(env: Env):
    assert env.apply(three()).result.ok
    with pytest.raises(Crash):
        env.apply(
            three(a_class="fast"),
            driver=Flaky(env.driver, after={"delete": crash}),
            allow_replace=True,
        )
    record = env.record("volume/prod/a")
    assert (record.status, record.intent) == ("Released", "delete")
    assert not (env.root / "prod" / "a").exists()
    assert env.apply(three(a_class="fast"), allow_replace=True).result.ok
    assert env.record("volume/prod/a").spec["storageClassName"] == "fast"
    assert (env.root / "prod" / "a").is_dir()
    env.assert_converged(three(a_class="fast"))


def test_a_crash_after_deleting_during_a_destroy_converges_on_rerun(env: Env):
    assert env.apply(three()).result.ok
    with pytest.raises(Crash):
        env.apply(
            three(keep_a=False),
            driver=Flaky(env.driver, after={"delete": crash}),
            allow_destroy=True,
        )
    record = env.record("volume/prod/a")
    assert (record.status, record.intent) == ("Released", "delete")
    applied = env.apply(three(keep_a=False), allow_destroy=True)
    assert applied.result.ok, applied.result.summary()
    assert "volume/prod/a" not in env.records()


# ----------------------------------------------------------------------------- property

NAMES = "abcd"
often = st.sampled_from([True, True, False])


def step(min_size: int = 0) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(
        st.frozensets(st.sampled_from(NAMES), min_size=min_size),  # the volumes in the source
        st.dictionaries(st.sampled_from(NAMES), st.sampled_from(["retain", "delete"])),
        often,  # allow_destroy
        often,  # allow_mass_delete
        often,  # snapshot_before_destroy
    )


runs = st.tuples(step(min_size=2), st.lists(step(), min_size=1, max_size=2)).map(
    lambda first_rest: [first_rest[0], *first_rest[1]]
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(runs)
def test_directories_and_records_agree_after_every_apply(steps: list[Any]):
    with tempfile.TemporaryDirectory() as tmp:
        env = make_env(Path(tmp))
        with env.backend:
            for kept, policies, allow_destroy, allow_mass, snap_first in steps:
                files = (
                    {
                        "v.yaml": docs(
                            *(volume(n, reclaim=policies.get(n, "delete")) for n in sorted(kept))
                        )
                    }
                    if kept
                    else {}
                )
                options = {
                    "allow_destroy": allow_destroy,
                    "allow_mass_delete": allow_mass,
                    "snapshot_before_destroy": snap_first,
                }
                planned = env.plan(files, **options)
                before = (env.serial(), env.records(), env.volume_dirs(), env.snapshot_dirs())
                if engine.refusals(planned.plan):
                    event("refused")
                    with pytest.raises(UnsafePlanError):
                        env.apply(planned)
                    after = (env.serial(), env.records(), env.volume_dirs(), env.snapshot_dirs())
                    assert after == before
                    continue
                applied = env.apply(planned)
                assert applied.result.ok, applied.result.summary()
                for action in (Action.DESTROY, Action.FORGET):
                    if applied.result.count(action):
                        event(f"applied with a {action.value}")
                records = env.records()
                # Every directory is a recorded volume (managed or retained), and back.
                assert env.volume_dirs() == volume_handles(records)
                assert env.snapshot_dirs() == snapshot_handles(records)
                # What the source declares is managed; what left it under retain is kept.
                managed = {
                    a.rsplit("/", 1)[1]
                    for a, r in records.items()
                    if r.kind is Kind.VOLUME and not r.retained
                }
                assert managed == set(kept)
                for r in records.values():
                    assert r.intent is None
                    if r.kind is Kind.VOLUME:
                        assert r.status == "Available"
                        if r.retained:
                            # Its data was written after an earlier apply and is still there.
                            assert (Path(str(r.handle)) / "marker").read_text() == r.address.name
                    elif r.spec.get("preDestroyOf"):
                        assert r.status == "Ready" and r.retained
                        source = str(r.spec["sourceVolume"])
                        assert (Path(str(r.handle)) / "marker").read_text() == source
                for handle in volume_handles(records):
                    marker = Path(handle) / "marker"
                    if not marker.exists():
                        marker.write_text(Path(handle).name)
                env.assert_converged(files, **options)
