"""One watch cycle: load the source, plan against the locked state, apply what may run.

Built by ``rune-sync watch`` from the same pipeline pieces ``apply`` uses and handed to
:class:`rune_sync.watch.loop.Loop` as its cycle. Approval is implied; blocked destroys
and replaces and a tripped mass-delete breaker are withheld
(:mod:`rune_sync.watch.withhold`) and reported, the rest runs. The state's lock is held
only from reading the state to the end of apply, so ``plan`` (and, between cycles,
``apply``) can run beside a watcher; the state is read after the lock is taken, never
before. A source that cannot be loaded (invalid, a git remote out of reach) raises
``RuneSyncError``; a failure after it loaded (a git commit refused by the history rules
— a rollback, a missing signature —, a held lock, a lost state connection) is returned
as an error report naming the commit. The loop logs both and retries with backoff.

A git commit is checked against the one the state last applied (in ``make_plan``); a
new commit with nothing to change is still recorded in the state's ``source`` (as
``apply`` does), so the next rollback check starts from it.

A plan that would destroy data (a destroy, a replace, a snapshot deletion — all allowed
by their flags, or they would be withheld) waits ``settle`` seconds and reads the source
again first: if it changed meanwhile (a file still being written, a checkout under way),
nothing runs and the next cycle plans again from the settled source.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from rune_sync import secrets
from rune_sync.apply import engine
from rune_sync.cli import options, pipeline, wiring
from rune_sync.drivers.registry import DriverRegistry
from rune_sync.plan.model import Action, Options, Plan
from rune_sync.spec import validate as validation
from rune_sync.spec.model import Address, StorageSettings
from rune_sync.state.model import LockInfo, StateRecord
from rune_sync.watch import withhold
from rune_sync.watch.logs import Log
from rune_sync.watch.loop import CycleReport, CycleRequest, Result, failure


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The command's choices, fixed for the watcher's life."""

    source: pipeline.SourceArgs
    state: options.StateOption
    secrets_dir: Path | None
    options: Options
    apply: engine.ApplySettings
    lock_timeout: float
    command: str
    settle: float = 0.0
    """Seconds the source must stay unchanged before a plan that destroys data runs."""


class Reconciler:
    """The cycle callable; keeps the parse cache between cycles (one cycle at a time)."""

    def __init__(self, *, settings: Settings, log: Log) -> None:
        self._settings = settings
        self._log = log
        self._cache = validation.SourceCache()
        self._warned: frozenset[str] = frozenset()
        self._registry: tuple[StorageSettings, DriverRegistry] | None = None
        self._last_commit: str | None = None

    @property
    def cache(self) -> validation.SourceCache:
        return self._cache

    @property
    def last_commit(self) -> str | None:
        """The commit the last cycle loaded (None before one did, or for a directory);
        the git poller compares the remote's ref with it."""
        return self._last_commit

    def __call__(self, request: CycleRequest) -> CycleReport:
        phases = _Phases()
        with _paused_gc():
            loaded = pipeline.load_source(self._settings.source, cache=self._cache)
        commit = loaded.snapshot.commit.sha if loaded.snapshot.commit else None
        self._last_commit = commit
        try:
            return self._reconcile(loaded, request, phases, commit)
        except Exception as exc:
            # A refused commit (rollback, signature), a held lock, a lost connection:
            # the cycle fails, and its record still names the commit it was about.
            return failure(exc, commit=commit)

    def _reconcile(
        self, loaded: pipeline.Loaded, request: CycleRequest, phases: _Phases, commit: str | None
    ) -> CycleReport:
        s = self._settings
        resolver = pipeline.secret_resolver(loaded, s.secrets_dir)
        found = pipeline.check_secrets(loaded, resolver)
        self._warn([*loaded.snapshot.notes, *(str(w) for w in (*loaded.warnings, *found))])
        registry = self._drivers(loaded.runefile.storage)
        options = replace(s.options, refresh=s.options.refresh and request.refresh)
        state_at = pipeline.state_target(s.state, loaded.runefile)
        phases.mark("load")
        with pipeline.writable_state(state_at) as backend:
            if s.lock_timeout > 0 and (holder := backend.lock_info()) is not None:
                self._log.record(
                    "lock-wait", level="warning", holder=f"{holder.command} pid {holder.pid}"
                )
            info = LockInfo.for_this_process(command=s.command, now=datetime.now(UTC))
            with backend.lock(info, timeout=s.lock_timeout):
                phases.mark("lock")
                with _paused_gc():
                    view = pipeline.StateView(meta=backend.meta(), records=backend.load_all())
                    phases.mark("state")
                    plan = pipeline.make_plan(loaded, view, options, registry, resolver=resolver)
                    split = withhold.split(plan)
                phases.mark("plan")
                held = Counter(f"{c.action.value}:withheld" for c in split.withheld)
                settled = not _destroys_data(split.runnable) or self._settled(loaded, request)
                if request.stop.is_set():
                    return CycleReport(
                        result=Result.STOPPED,
                        commit=commit,
                        withheld=split.reasons,
                        phases=phases.spent,
                    )
                if not settled:
                    return CycleReport(result=Result.OK, commit=commit, withheld=split.reasons)
                if not split.runnable.has_changes:
                    pipeline.record_new_commit(backend, plan, loaded.validated.digest)
                    return CycleReport(
                        result=Result.OK,
                        commit=commit,
                        actions=dict(held),
                        statuses=_statuses(view.records),
                        withheld=split.reasons,
                        phases=phases.spent,
                    )
                result = engine.execute(
                    split.runnable,
                    backend=backend,
                    drivers=secrets.GuardedDrivers(registry.get, resolver.redactor).get,
                    reporter=self._log,
                    settings=s.apply,
                    stop=request.stop,
                    source=pipeline.source_info(split.runnable, loaded.validated.digest),
                    resolve=resolver,
                    notices=lambda: tuple(str(d) for d in resolver.notices.take()),
                    records=view.records,
                )
                phases.mark("apply")
                statuses = _statuses(backend.load_all())
        return CycleReport(
            phases=phases.spent,
            commit=commit,
            result=_result(result),
            actions=dict(_counts(result) + held),
            statuses=statuses,
            error=None if result.ok else result.summary(),
            withheld=split.reasons,
        )

    def _settled(self, loaded: pipeline.Loaded, request: CycleRequest) -> bool:
        """Whether the source is unchanged ``settle`` seconds later (True at once when
        there is nothing to wait for, False when stopped meanwhile)."""
        settle = self._settings.settle
        if settle <= 0:
            return True
        self._log.record(
            "settle",
            detail=f"the plan destroys data: checking that the source stays unchanged "
            f"for {settle:g}s first",
        )
        if request.stop.wait(settle):
            return False
        again = pipeline.load_source(self._settings.source, cache=self._cache)
        if again.validated.digest == loaded.validated.digest:
            return True
        self._log.record(
            "superseded",
            level="warning",
            detail="the source changed while the plan waited; nothing was destroyed, "
            "the next cycle plans again",
        )
        return False

    def _drivers(self, settings: StorageSettings) -> DriverRegistry:
        """The driver registry, built again only when the runefile's storage settings
        change (drivers are built lazily and keep nothing between calls but clients)."""
        if self._registry is None or self._registry[0] != settings:
            self._registry = (settings, wiring.driver_registry(settings))
        return self._registry[1]

    def _warn(self, warnings: list[str]) -> None:
        """Log the source's warnings when they change (not on every cycle)."""
        now = frozenset(warnings)
        if now != self._warned:
            for text in sorted(now - self._warned):
                self._log.record("diagnostic", level="warning", message=text)
        self._warned = now


@contextmanager
def _paused_gc() -> Iterator[None]:
    """No cyclic garbage collection for the block.

    Loading, reading the state and planning allocate about a million short-lived,
    acyclic objects at 10,000 volumes; reference counting frees them, and the cyclic
    collector's passes over them cost ~0.1 s per cycle (a tenth of an edit's latency).
    Those phases are bounded and CPU-only, so the collector waits until they end;
    apply, which may run for minutes, keeps it on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Phases:
    """Seconds between marks, by the name of the phase that just ended."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self._last = time.perf_counter()

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.spent[name] = now - self._last
        self._last = now


def _result(result: engine.Result) -> Result:
    if result.stopped:
        return Result.STOPPED
    return Result.OK if result.ok else Result.FAILED


def _counts(result: engine.Result) -> Counter[str]:
    counts: Counter[str] = Counter()
    for o in result.outcomes:
        if o.ok:
            if o.action is not Action.NOOP:
                counts[o.action.value] += 1
        else:
            counts[f"{o.action.value}:{'skipped' if o.skipped else 'failed'}"] += 1
    return counts


def _statuses(records: Mapping[Address, StateRecord]) -> dict[tuple[str, str], int]:
    counted = Counter(
        (r.address.kind.value, "retained" if r.retained else r.status) for r in records.values()
    )
    return dict(counted)


def _destroys_data(plan: Plan) -> bool:
    return any(c.destroys_data for c in plan.changes)
