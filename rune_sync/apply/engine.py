"""Apply: carry out a plan against a locked state (DESIGN §7).

Owned here: the refusals (a blocked destroy or replace, a tripped mass-delete breaker —
nothing runs then), moving the state's serial on before the first write (so any plan
saved earlier is stale from then on, even if this run is killed), and the walk of the
plan's changes through :mod:`rune_sync.apply.steps`. The caller holds the state's lock,
built the plan against it, and decides how events are shown.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rune_sync.apply import executor, steps
from rune_sync.apply.events import Reporter
from rune_sync.apply.recorder import Recorder
from rune_sync.apply.retry import RetryPolicy
from rune_sync.apply.steps import NoticeTaker, Outcome, ParameterResolver
from rune_sync.drivers.base import Driver
from rune_sync.errors import UnsafePlanError
from rune_sync.plan.model import Action, Plan
from rune_sync.spec.model import Address
from rune_sync.state.backend import StateBackend
from rune_sync.state.model import SourceInfo, StateRecord

PAST_TENSE = {
    Action.CREATE: "created",
    Action.UPDATE: "updated",
    Action.REPLACE: "replaced",
    Action.DESTROY: "destroyed",
    Action.FORGET: "forgotten",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplySettings:
    parallelism: int = 10
    stall_after: int = 3
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.parallelism < 1:
            raise ValueError("parallelism must be at least 1")
        if self.stall_after < 1:
            raise ValueError("stall-after must be at least 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """What happened to every change; ``stopped`` when a stop request ended the run."""

    outcomes: tuple[Outcome, ...] = ()
    stopped: bool = False

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if not o.ok)

    @property
    def ok(self) -> bool:
        return not self.stopped and not self.failed

    def count(self, action: Action) -> int:
        return sum(1 for o in self.outcomes if o.ok and o.action is action)

    def summary(self) -> str:
        done = ", ".join(f"{self.count(a)} {word}" for a, word in PAST_TENSE.items())
        if self.ok:
            return f"Apply complete: {done}."
        skipped = sum(1 for o in self.failed if o.skipped)
        failed = len(self.failed) - skipped
        head = "Apply stopped" if self.stopped else "Apply failed"
        return f"{head}: {done}; {failed} failed, {skipped} not run."


def refusals(plan: Plan) -> list[str]:
    """Why ``plan`` must not run at all (empty when it may)."""
    out: list[str] = []
    if plan.mass_delete:
        out.append(f"{plan.mass_delete}; pass --allow-mass-delete if that is what you want")
    for change in plan.changes:
        if change.blocked:
            out.append(
                f"{change.address}: {change.action.value} needs {change.blocked} ({change.reason})"
            )
    return out


def execute(
    plan: Plan,
    *,
    backend: StateBackend,
    drivers: Callable[[str], Driver],
    reporter: Reporter,
    settings: ApplySettings | None = None,
    stop: threading.Event | None = None,
    source: SourceInfo | None = None,
    resolve: ParameterResolver | None = None,
    notices: NoticeTaker | None = None,
    clock: Callable[[], datetime] | None = None,
    records: Mapping[Address, StateRecord] | None = None,
) -> Result:
    """Carry out ``plan``; the caller holds ``backend``'s lock.

    ``resolve`` turns each call's recorded parameters into the driver's, given the
    consuming volume's namespace (secret references resolved); identity when None.
    ``notices`` hands over the warnings that resolving met (each once); they are
    reported as ``note`` events of the change whose call met them.

    ``records`` spares reading the state again when the caller already has every record
    (``backend.load_all()``, usually to plan). Contract: they were read under the lock
    the caller still holds, with nothing written since, so they are the state's records
    now; anything else (records read before the lock was taken, under an earlier lock,
    or only some of them) would have apply work from a view that is not the state's.
    When None, the records are read here.

    Raises :class:`UnsafePlanError` (before anything is written) when the plan holds a
    blocked change or tripped the mass-delete breaker. Failures of single changes do
    not raise: they are in the result, and in the state.
    """
    refused = refusals(plan)
    if refused:
        raise UnsafePlanError("refusing to apply; nothing was changed:\n  " + "\n  ".join(refused))
    if not plan.has_changes:
        return Result()
    settings = settings or ApplySettings()
    stop = stop or threading.Event()
    if records is None:
        records = backend.load_all()
    backend.bump_serial(source=source)
    context = steps.StepContext(
        recorder=Recorder(backend, records, clock or (lambda: datetime.now(UTC))),
        drivers=drivers,
        reporter=reporter,
        policy=settings.retry,
        stop=stop,
        stall_after=settings.stall_after,
    )
    if resolve is not None:
        context.resolve = resolve
    if notices is not None:
        context.notices = notices
    walked = executor.walk(
        plan.changes,
        lambda change: steps.run(change, context),
        parallelism=settings.parallelism,
        stop=stop,
        reporter=reporter,
    )
    return Result(outcomes=walked.outcomes, stopped=walked.stopped)
