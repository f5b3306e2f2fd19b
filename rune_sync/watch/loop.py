"""The watch loop: run a cycle, then one per batch of triggers; back off after failures.

Owned here: coalescing (every trigger that arrived while a cycle ran, or while the loop
slept, is served by one cycle), the retry schedule after a failed cycle (1 s doubling to
5 min; a new trigger runs at once, it may carry the fix), whether a cycle refreshes, and
stopping. What a cycle does is the caller's callable; it must return a
:class:`CycleReport` and may raise — a ``RuneSyncError`` is the cycle's failure, any
other exception is logged as an internal error. Nothing a cycle raises ends the loop.

Refresh: event cycles (a file change, a git poll, a webhook) skip asking the drivers
what exists, so an edit is applied in well under a second on a large source; the first cycle, the
periodic resync, a reload (SIGHUP) and every retry after a failure refresh, and so
catch drift. The clock is injected (a monotonic ``() -> float``).
"""

from __future__ import annotations

import contextlib
import enum
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from rune_sync.errors import RuneSyncError, SpecError

BACKOFF_FIRST_S = 1.0
BACKOFF_CAP_S = 300.0
_IDLE_WAKE_S = 5.0
"""The longest the loop sleeps without looking at the stop flag (signals also wake it)."""


class Trigger(enum.StrEnum):
    START = "start"
    CHANGE = "change"
    """Files of a directory source changed."""
    WEBHOOK = "webhook"
    POLL = "poll"
    """The polled git ref moved (or the remote came back, or went out of reach)."""
    RESYNC = "resync"
    RELOAD = "reload"
    """SIGHUP: read the runefile again."""
    RETRY = "retry"
    """The backoff after a failed cycle ran out."""


REFRESHING = frozenset({Trigger.START, Trigger.RESYNC, Trigger.RELOAD, Trigger.RETRY})
"""Triggers whose cycle asks the drivers what exists."""

TIMED = frozenset({Trigger.CHANGE, Trigger.WEBHOOK, Trigger.POLL})
"""Triggers that stand for a change someone made: their latency is measured."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    trigger: Trigger
    at: float
    """When the trigger was detected (the loop's clock)."""
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleRequest:
    """What one cycle is asked to do: the triggers it serves, and whether to refresh."""

    triggers: tuple[Request, ...]
    refresh: bool
    stop: threading.Event

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted({r.trigger.value for r in self.triggers}))


class Result(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    """Apply ran; some changes failed."""
    ERROR = "error"
    """The cycle could not run: bad spec, unreadable file, held lock, driver error…"""
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleReport:
    result: Result
    actions: Mapping[str, int] = field(default_factory=dict)
    """Changes carried out, by action; ``failed``, ``skipped`` and ``withheld`` counted too."""
    statuses: Mapping[tuple[str, str], int] | None = None
    """State records by (kind, status) after the cycle; None when it was not read."""
    commit: str | None = None
    error: str | None = None
    withheld: tuple[str, ...] = ()
    phases: Mapping[str, float] = field(default_factory=dict)
    """Seconds spent per phase (load, lock, state, plan, apply), for the log."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    """A cycle as the loop saw it; handed to every observer."""

    request: CycleRequest
    report: CycleReport
    started: float
    duration: float
    failures: int
    """Consecutive failed cycles, this one included (0 after a success)."""
    retry_in: float | None

    @property
    def latency(self) -> float | None:
        """Seconds from the earliest change detected to the end of a good cycle."""
        if self.report.result is not Result.OK:
            return None
        times = [r.at for r in self.request.triggers if r.trigger in TIMED]
        return self.started + self.duration - min(times) if times else None


def backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` consecutive failed cycles: 1, 2, 4 … 300."""
    if failures < 1:
        return 0.0
    return min(BACKOFF_CAP_S, BACKOFF_FIRST_S * 2.0 ** min(failures - 1, 30))


class Inbox:
    """Where triggers arrive, from any thread or a signal handler."""

    def __init__(self) -> None:
        # A re-entrant lock: a signal handler may push while the main thread holds it.
        self._cond = threading.Condition(threading.RLock())
        self._pending: list[Request] = []
        self._stopping = False

    def push(self, request: Request) -> None:
        with self._cond:
            self._pending.append(request)
            self._cond.notify_all()

    def close(self) -> None:
        """Wake the loop for good: it finishes and returns."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._stopping

    def take(self, *, timeout: float | None) -> list[Request]:
        """Everything pending, waiting up to ``timeout`` seconds for something (None: no
        wait bound other than a periodic wake); empty when closed or timed out."""
        with self._cond:
            if not self._pending and not self._stopping:
                wait = _IDLE_WAKE_S if timeout is None else min(max(timeout, 0.0), _IDLE_WAKE_S)
                self._cond.wait(wait)
            taken, self._pending = self._pending, []
            return taken


Cycle = Callable[[CycleRequest], CycleReport]
Observer = Callable[[Finished], None]


class Loop:
    """Runs ``cycle`` for each batch of triggers until :meth:`stop`."""

    def __init__(
        self,
        *,
        cycle: Cycle,
        inbox: Inbox,
        clock: Callable[[], float],
        observers: tuple[Observer, ...] = (),
        refresh: bool = True,
    ) -> None:
        self._cycle = cycle
        self.inbox = inbox
        self._clock = clock
        self._observers = observers
        self._refresh = refresh
        self.stop_event = threading.Event()
        self.failures = 0
        self.retry_at: float | None = None

    def stop(self) -> None:
        """Stop scheduling: the running cycle finishes its in-flight work, then
        :meth:`run` returns. Safe from a signal handler."""
        self.stop_event.set()
        self.inbox.close()

    def run(self) -> None:
        self.inbox.push(Request(trigger=Trigger.START, at=self._clock()))
        while not self.stop_event.is_set():
            self.step()

    def step(self) -> Finished | None:
        """Wait for triggers (or a due retry) and run one cycle for all of them."""
        timeout = None if self.retry_at is None else self.retry_at - self._clock()
        batch = self.inbox.take(timeout=timeout)
        if self.stop_event.is_set():
            return None
        if not batch:
            if self.retry_at is None or self._clock() < self.retry_at:
                return None
            batch = [Request(trigger=Trigger.RETRY, at=self._clock())]
        return self.run_cycle(batch)

    def run_cycle(self, batch: list[Request]) -> Finished:
        triggers = {r.trigger for r in batch}
        refresh = self._refresh and (self.failures > 0 or bool(triggers & REFRESHING))
        request = CycleRequest(triggers=tuple(batch), refresh=refresh, stop=self.stop_event)
        started = self._clock()
        report = self._guarded(request)
        duration = self._clock() - started
        if report.result in (Result.OK, Result.STOPPED):
            self.failures = 0
            self.retry_at = None
        else:
            self.failures += 1
            self.retry_at = self._clock() + backoff(self.failures)
        retry_in = None if self.retry_at is None else backoff(self.failures)
        done = Finished(
            request=request,
            report=report,
            started=started,
            duration=duration,
            failures=self.failures,
            retry_in=retry_in,
        )
        for observe in self._observers:
            # An observer failing (the log on a closed stderr, a metric) must not end the
            # loop: reconciling goes on even when it cannot be reported.
            with contextlib.suppress(Exception):
                observe(done)
        return done

    def _guarded(self, request: CycleRequest) -> CycleReport:
        try:
            return self._cycle(request)
        except Exception as exc:
            return failure(exc)


def failure(exc: Exception, *, commit: str | None = None) -> CycleReport:
    """The report of a cycle that raised ``exc`` (``commit``: the one it had loaded)."""
    if isinstance(exc, SpecError):
        problems = [str(d) for d in exc.diagnostics if d.is_error] or [str(exc)]
        return CycleReport(result=Result.ERROR, error="; ".join(problems), commit=commit)
    if isinstance(exc, RuneSyncError):
        return CycleReport(result=Result.ERROR, error=str(exc), commit=commit)
    # The loop outlives our own bugs too: the cycle is logged as an internal error and
    # retried with backoff like any other failure.
    return CycleReport(
        result=Result.ERROR,
        error=f"internal error ({type(exc).__name__}): {exc}",
        commit=commit,
    )
