"""The DAG walk: bounded parallelism, dependency order (destroys reversed), dependents of
a failure skipped, no-ops never worked on, a stop request ends scheduling.

The first tests drive :func:`executor.walk` with real plan changes and a plain work
function (the executor knows nothing of drivers); the rest run whole applies through
the engine on the real local driver and read the order from the events.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from rune_sync.apply import engine, executor
from rune_sync.apply.events import Phase, Silent
from rune_sync.apply.steps import Outcome
from rune_sync.drivers.base import OpContext
from rune_sync.plan.model import Action, Change
from rune_sync.spec.model import Address
from tests.apply import (
    FAST,
    FAST_RETRY,
    Collect,
    Env,
    Flaky,
    docs,
    snapshot,
    storage_class,
    volume,
)


def change(address: str, action: Action = Action.CREATE, *deps: str) -> Change:
    return Change(
        address=Address.parse(address),
        action=action,
        reason="test",
        depends_on=tuple(Address.parse(d) for d in deps),
    )


class Work:
    """Records which changes were worked on; fails the ones named in ``fail``."""

    def __init__(self, fail: frozenset[str] = frozenset()) -> None:
        self.fail = fail
        self.done: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, c: Change) -> Outcome:
        with self._lock:
            self.done.append(str(c.address))
        ok = str(c.address) not in self.fail
        return Outcome(address=c.address, action=c.action, ok=ok, message="" if ok else "boom")


def walk(changes: list[Change], work: Callable[[Change], Outcome], **kw: Any) -> executor.Walk:
    kw.setdefault("parallelism", 4)
    kw.setdefault("stop", threading.Event())
    kw.setdefault("reporter", Silent())
    return executor.walk(changes, work, **kw)


# ----------------------------------------------------------------------------- walk alone


def test_a_noop_is_never_worked_on_and_its_dependents_still_run():
    changes = [
        change("storageclass/fast", Action.NOOP),
        change("volume/prod/a", Action.CREATE, "storageclass/fast"),
        change("volume/prod/b", Action.NOOP, "storageclass/fast"),
    ]
    work = Work()
    walked = walk(changes, work)
    assert work.done == ["volume/prod/a"]
    assert [o.ok for o in walked.outcomes] == [True, True, True]
    assert [str(o.address) for o in walked.outcomes] == [str(c.address) for c in changes]
    assert walked.stopped is False


def test_dependents_of_a_failure_are_skipped_transitively_and_the_rest_runs():
    changes = [
        change("volume/prod/a"),
        change("volume/prod/b"),
        change("snapshot/prod/s", Action.CREATE, "volume/prod/b"),
        change("volume/prod/r", Action.CREATE, "snapshot/prod/s", "volume/prod/a"),
        change("volume/prod/c"),
    ]
    reporter = Collect()
    work = Work(fail=frozenset({"volume/prod/b"}))
    walked = walk(changes, work, reporter=reporter)
    assert sorted(work.done) == ["volume/prod/a", "volume/prod/b", "volume/prod/c"]
    by = {str(o.address): o for o in walked.outcomes}
    assert by["volume/prod/a"].ok and by["volume/prod/c"].ok
    assert not by["volume/prod/b"].ok
    for skipped in ("snapshot/prod/s", "volume/prod/r"):
        assert not by[skipped].ok
        assert by[skipped].message == "skipped: it depends on volume/prod/b, which failed"
    assert sorted(reporter.phases(Phase.SKIPPED)) == ["snapshot/prod/s", "volume/prod/r"]


def test_a_set_stop_event_starts_nothing():
    stop = threading.Event()
    stop.set()
    changes = [change("volume/prod/a"), change("volume/prod/b", Action.NOOP)]
    reporter = Collect()
    work = Work()
    walked = walk(changes, work, stop=stop, reporter=reporter)
    assert work.done == []
    assert walked.stopped is True
    a, b = walked.outcomes
    assert (a.ok, a.message) == (False, "not started: the run was stopped")
    assert b.ok  # a no-op is not a change left undone
    assert reporter.phases(Phase.SKIPPED) == ["volume/prod/a"]


def test_creates_wait_for_what_they_depend_on():
    changes = [
        change("storageclass/fast"),
        change("volume/prod/a", Action.CREATE, "storageclass/fast"),
        change("snapshot/prod/s", Action.CREATE, "volume/prod/a"),
        change("volume/prod/r", Action.CREATE, "snapshot/prod/s"),
    ]
    order: list[str] = []

    def work(c: Change) -> Outcome:
        time.sleep(0.005)
        order.append(str(c.address))
        return Outcome(address=c.address, action=c.action, ok=True)

    walk(changes, work, parallelism=8)
    assert order == [str(c.address) for c in changes]


@pytest.mark.parametrize("parallelism", [0, -3])
def test_parallelism_must_be_positive(parallelism: int):
    with pytest.raises(ValueError, match="parallelism"):
        walk([change("volume/prod/a")], Work(), parallelism=parallelism)
    with pytest.raises(ValueError, match="parallelism"):
        engine.ApplySettings(parallelism=parallelism)


def test_stall_after_must_be_positive():
    with pytest.raises(ValueError, match="stall-after"):
        engine.ApplySettings(stall_after=0)


# ----------------------------------------------------------------------------- whole applies


class Concurrency:
    """A driver hook that measures how many calls are in flight at once.

    The first ``expected`` calls meet at a barrier (so they provably overlap); every
    call then holds on a little so that any call beyond the bound would be counted.
    """

    def __init__(self, expected: int, hold: float = 0.02) -> None:
        self.hold = hold
        self.now = 0
        self.peak = 0
        self.started = 0
        self._barrier = threading.Barrier(expected, timeout=10)
        self._expected = expected
        self._lock = threading.Lock()

    def __call__(self, ctx: OpContext, _: object) -> None:
        with self._lock:
            self.now += 1
            self.started += 1
            first = self.started <= self._expected
            self.peak = max(self.peak, self.now)
        if first:
            self._barrier.wait()
        time.sleep(self.hold)
        with self._lock:
            self.now -= 1


@pytest.mark.parametrize("parallelism", [1, 3])
def test_parallelism_bounds_the_driver_calls_in_flight(env: Env, parallelism: int):
    gauge = Concurrency(parallelism)
    driver = Flaky(env.driver, before={"provision": gauge})
    names = [f"v{n}" for n in range(9)]
    files = {"v.yaml": docs(*(volume(n) for n in names))}
    settings = engine.ApplySettings(parallelism=parallelism, retry=FAST_RETRY)
    applied = env.apply(files, driver=driver, settings=settings)
    assert applied.result.ok
    assert gauge.peak == parallelism
    assert gauge.started == len(names)
    assert env.volume_dirs() == {str(env.root / "prod" / n) for n in names}


def position(events: Collect, address: str, phase: Phase) -> int:
    (index,) = [
        i for i, e in enumerate(events.events) if str(e.address) == address and e.phase is phase
    ]
    return index


def assert_before(events: Collect, first: str, then: str) -> None:
    assert position(events, first, Phase.DONE) < position(events, then, Phase.START), (
        f"{first} did not finish before {then} started"
    )


FULL = {
    "v.yaml": docs(
        storage_class("fast"),
        volume("a", storage_class="fast"),
        snapshot("s", "a"),
        volume("r", storage_class="fast", restore="s"),
        volume("x"),
        volume("y"),
        volume("z"),
    )
}
REST = {"v.yaml": docs(volume("x"), volume("y"), volume("z"))}


def test_order_class_volume_snapshot_restore_and_destroys_in_reverse(env: Env):
    settings = engine.ApplySettings(parallelism=8, retry=FAST_RETRY)
    created = env.apply(FULL, settings=settings)
    assert created.result.ok, created.result.summary()
    chain = ["storageclass/fast", "volume/prod/a", "snapshot/prod/s", "volume/prod/r"]
    for first, then in itertools.pairwise(chain):
        assert_before(created.events, first, then)

    destroyed = env.apply(REST, settings=settings, allow_destroy=True)
    assert destroyed.result.ok, destroyed.result.summary()
    for first, then in itertools.pairwise(chain[::-1]):
        assert_before(destroyed.events, first, then)
    assert destroyed.result.count(Action.DESTROY) == 4
    assert env.volume_dirs() == {str(env.root / "prod" / n) for n in ("x", "y", "z")}
    env.assert_converged(REST)


def test_a_plan_of_only_noops_calls_no_driver(env: Env):
    files = {"v.yaml": docs(volume("a"), volume("b"))}
    assert env.apply(files).result.ok
    driver = Flaky(env.driver)
    planned = env.plan(files)
    assert {c.action for c in planned.plan.changes} == {Action.NOOP}
    applied = env.apply(planned, driver=driver)
    assert applied.result.ok and applied.result.outcomes == ()
    assert driver.calls == []
    assert applied.events.events == []


def test_noops_in_a_plan_with_changes_are_not_worked_on(env: Env):
    assert env.apply({"v.yaml": docs(volume("a"), volume("b"))}).result.ok
    driver = Flaky(env.driver)
    applied = env.apply({"v.yaml": docs(volume("a"), volume("b"), volume("c"))}, driver=driver)
    assert applied.result.ok
    assert [(op, address) for op, address, _ in driver.calls] == [("provision", "volume/prod/c")]
    assert {str(e.address) for e in applied.events.events} == {"volume/prod/c"}
    noops = [o for o in applied.result.outcomes if o.action is Action.NOOP]
    assert len(noops) == 2 and all(o.ok for o in noops)


def test_default_settings_run_ten_at_once():
    assert engine.ApplySettings().parallelism == 10
    assert FAST.parallelism == 4
