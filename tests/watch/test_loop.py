"""The loop's scheduling with an injected clock: coalescing, backoff, refresh, survival."""

from __future__ import annotations

import pytest

from rune_sync.errors import StateError
from rune_sync.watch.loop import (
    BACKOFF_CAP_S,
    CycleReport,
    CycleRequest,
    Inbox,
    Loop,
    Request,
    Result,
    Trigger,
    backoff,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Cycles:
    """A cycle that answers from a script of results and remembers what it was asked."""

    def __init__(self, *results: Result | Exception) -> None:
        self.script = list(results)
        self.seen: list[CycleRequest] = []

    def __call__(self, request: CycleRequest) -> CycleReport:
        self.seen.append(request)
        outcome = self.script.pop(0) if self.script else Result.OK
        if isinstance(outcome, Exception):
            raise outcome
        return CycleReport(result=outcome)


def make(*results: Result | Exception, refresh: bool = True):
    clock = Clock()
    cycles = Cycles(*results)
    finished = []
    loop = Loop(
        cycle=cycles,
        inbox=Inbox(),
        clock=clock,
        observers=(finished.append,),
        refresh=refresh,
    )
    return loop, clock, cycles, finished


def push(loop: Loop, clock: Clock, trigger: Trigger) -> None:
    loop.inbox.push(Request(trigger=trigger, at=clock.now))


def test_a_burst_of_triggers_is_served_by_one_cycle():
    loop, clock, cycles, _ = make()
    for trigger in (Trigger.CHANGE, Trigger.CHANGE, Trigger.WEBHOOK, Trigger.CHANGE):
        push(loop, clock, trigger)
    loop.step()
    assert len(cycles.seen) == 1
    assert len(cycles.seen[0].triggers) == 4
    assert cycles.seen[0].names == ("change", "webhook")
    assert loop.inbox.take(timeout=0) == []


def test_backoff_doubles_from_one_second_and_is_capped():
    assert [backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 32, 64]
    assert backoff(9) == 256
    assert backoff(10) == BACKOFF_CAP_S == backoff(10_000)
    assert backoff(0) == 0


def test_a_failed_cycle_is_retried_when_its_backoff_runs_out():
    loop, clock, cycles, finished = make(Result.ERROR, Result.ERROR, Result.OK)
    push(loop, clock, Trigger.CHANGE)
    loop.step()
    assert finished[-1].failures == 1 and finished[-1].retry_in == 1.0
    assert loop.retry_at == clock.now + 1.0
    clock.now += 0.5
    # Not due yet: the step waits (at most until the retry time) and runs nothing.
    assert loop.step() is None
    assert len(cycles.seen) == 1
    clock.now += 0.5
    loop.step()
    assert cycles.seen[-1].names == ("retry",)
    assert finished[-1].failures == 2 and finished[-1].retry_in == 2.0
    clock.now += 2.0
    loop.step()
    assert finished[-1].report.result is Result.OK
    assert finished[-1].failures == 0 and loop.retry_at is None


def test_a_new_trigger_during_backoff_runs_at_once():
    loop, clock, cycles, _ = make(Result.ERROR, Result.OK)
    push(loop, clock, Trigger.CHANGE)
    loop.step()
    push(loop, clock, Trigger.CHANGE)
    loop.step()
    assert len(cycles.seen) == 2
    assert loop.failures == 0


def test_raised_errors_are_failed_cycles_and_the_loop_goes_on():
    loop, clock, _, finished = make(StateError("state is locked"), ValueError("bug"))
    push(loop, clock, Trigger.CHANGE)
    loop.step()
    assert finished[-1].report.result is Result.ERROR
    assert finished[-1].report.error == "state is locked"
    clock.now += 1.0
    loop.step()
    assert finished[-1].report.error == "internal error (ValueError): bug"
    assert finished[-1].failures == 2


def test_event_cycles_skip_refresh_and_resync_start_reload_and_retries_refresh():
    loop, clock, cycles, _ = make(Result.OK, Result.OK, Result.ERROR, Result.OK, Result.OK)
    push(loop, clock, Trigger.START)
    loop.step()
    push(loop, clock, Trigger.CHANGE)
    loop.step()
    push(loop, clock, Trigger.WEBHOOK)
    loop.step()  # fails
    push(loop, clock, Trigger.CHANGE)
    loop.step()  # after a failure: refresh
    push(loop, clock, Trigger.RESYNC)
    loop.step()
    assert [c.refresh for c in cycles.seen] == [True, False, False, True, True]


def test_refresh_switched_off_is_never_done():
    loop, clock, cycles, _ = make(refresh=False)
    push(loop, clock, Trigger.RESYNC)
    loop.step()
    assert cycles.seen[0].refresh is False


def test_latency_runs_from_the_earliest_change_to_the_end_of_a_good_cycle():
    loop, clock, _, finished = make()
    loop.inbox.push(Request(trigger=Trigger.CHANGE, at=clock.now - 2.0))
    loop.inbox.push(Request(trigger=Trigger.CHANGE, at=clock.now - 1.0))
    loop.inbox.push(Request(trigger=Trigger.RESYNC, at=clock.now - 9.0))
    loop.step()
    assert finished[-1].latency == pytest.approx(2.0)


def test_stop_ends_run_and_is_passed_to_the_cycle():
    seen: list[CycleRequest] = []
    loops: list[Loop] = []

    def stopping(request: CycleRequest) -> CycleReport:
        seen.append(request)
        loops[0].stop()
        return CycleReport(result=Result.STOPPED)

    loops.append(Loop(cycle=stopping, inbox=Inbox(), clock=Clock()))
    loops[0].run()
    assert len(seen) == 1 and seen[0].stop.is_set()
    assert seen[0].names == ("start",)
    assert loops[0].failures == 0


def test_a_failing_observer_does_not_end_the_loop():
    clock = Clock()
    cycles = Cycles()

    def broken(done):
        raise BrokenPipeError("stderr is gone")

    loop = Loop(cycle=cycles, inbox=Inbox(), clock=clock, observers=(broken,))
    push(loop, clock, Trigger.CHANGE)
    assert loop.step() is not None
    push(loop, clock, Trigger.CHANGE)
    assert loop.step() is not None
    assert len(cycles.seen) == 2
