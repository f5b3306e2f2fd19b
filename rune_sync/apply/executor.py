"""Walks a plan's DAG with bounded parallelism.

Owned here: which change may start (all it depends on finished well), how many run at
once, what happens to the dependents of a failure (skipped, with the reason), and how a
stop request ends a run (nothing new starts; running changes finish and are recorded;
the rest is reported as not started). The work of one change is a callable given by
the caller; this module knows nothing of drivers or state.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from rune_sync.apply.events import Event, Phase, Reporter
from rune_sync.apply.steps import Outcome
from rune_sync.plan import graph
from rune_sync.plan.model import Action, Change

_POLL_S = 0.2
"""How often the waiting thread wakes, so signal handlers run promptly."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Walk:
    """Every change's outcome in plan order, and whether the run was stopped early."""

    outcomes: tuple[Outcome, ...]
    stopped: bool


def walk(
    changes: Sequence[Change],
    work: Callable[[Change], Outcome],
    *,
    parallelism: int,
    stop: threading.Event,
    reporter: Reporter,
) -> Walk:
    """Run ``work`` for every change that is not a no-op, respecting dependencies."""
    if parallelism < 1:
        raise ValueError("parallelism must be at least 1")
    before = graph.predecessors(changes)
    after: list[list[int]] = [[] for _ in changes]
    waiting = [0] * len(changes)
    for i, preds in enumerate(before):
        waiting[i] = len(preds)
        for p in preds:
            after[p].append(i)
    outcomes: dict[int, Outcome] = {}
    ready = deque(i for i, n in enumerate(waiting) if n == 0)
    running: dict[Future[Outcome], int] = {}

    def finish(i: int, outcome: Outcome) -> None:
        outcomes[i] = outcome
        if outcome.ok:
            for j in after[i]:
                waiting[j] -= 1
                if waiting[j] == 0:
                    ready.append(j)
        else:
            _skip_dependents(i, after, changes, outcomes, reporter, cause=changes[i])

    with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="apply") as pool:
        while ready or running:
            while ready and not stop.is_set() and len(running) < parallelism:
                i = ready.popleft()
                if i in outcomes:
                    continue  # skipped while it waited
                change = changes[i]
                if change.action is Action.NOOP:
                    finish(i, Outcome(address=change.address, action=change.action, ok=True))
                    continue
                running[pool.submit(work, change)] = i
            if not running:
                break
            done, _ = wait(running, timeout=_POLL_S, return_when=FIRST_COMPLETED)
            for future in done:
                finish(running.pop(future), future.result())
    stopped = stop.is_set()
    for i, change in enumerate(changes):
        if i not in outcomes:
            outcomes[i] = _skipped(change, "not started: the run was stopped", reporter)
    return Walk(outcomes=tuple(outcomes[i] for i in range(len(changes))), stopped=stopped)


def _skip_dependents(
    failed: int,
    after: list[list[int]],
    changes: Sequence[Change],
    outcomes: dict[int, Outcome],
    reporter: Reporter,
    *,
    cause: Change,
) -> None:
    stack = list(after[failed])
    while stack:
        j = stack.pop()
        if j in outcomes:
            continue
        reason = f"skipped: it depends on {cause.address}, which failed"
        outcomes[j] = _skipped(changes[j], reason, reporter)
        stack.extend(after[j])


def _skipped(change: Change, reason: str, reporter: Reporter) -> Outcome:
    if change.action is Action.NOOP:
        return Outcome(address=change.address, action=change.action, ok=True)
    reporter.event(
        Event(phase=Phase.SKIPPED, address=change.address, action=change.action, message=reason)
    )
    return Outcome(
        address=change.address, action=change.action, ok=False, message=reason, skipped=True
    )
