"""Helpers shared by the apply tests.

Everything here is real: sources are directories validated with the real rules and
expanded with the real expansion, plans come from the real refresh and planner against
the records of a real SQLite state, and volumes are directories made by the real
:class:`LocalDriver` below ``tmp_path``. The only stand-in is :class:`Flaky`, a driver
that delegates every call to a real driver and can raise chosen errors (or run a hook)
for chosen operations and addresses — that is how failures and timing are injected.
"""

from __future__ import annotations

import itertools
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rune_sync.apply import engine
from rune_sync.apply.events import Event, Phase
from rune_sync.apply.retry import RetryPolicy
from rune_sync.drivers.base import (
    Driver,
    ExpandRequest,
    Observation,
    OpContext,
    ProvisionRequest,
    RestoreRequest,
    SnapshotHandle,
    SnapshotRequest,
    VolumeHandle,
)
from rune_sync.drivers.local import LocalDriver
from rune_sync.drivers.registry import DriverRegistry
from rune_sync.plan import refresh
from rune_sync.plan.model import Action, Options, Plan
from rune_sync.plan.planner import PlanInput, make_plan
from rune_sync.spec.expand import desired_set
from rune_sync.spec.model import Address, Kind, StorageSettings
from rune_sync.state import StateBackend, open_backend
from rune_sync.state.model import SourceInfo, SourceKind, StateRecord
from tests.plan import validate, write_source

START = datetime(2025, 11, 21, 12, 0, tzinfo=UTC)

FAST_RETRY = RetryPolicy(attempts=5, initial=0.001, maximum=0.01, jitter=0)
FAST = engine.ApplySettings(parallelism=4, stall_after=3, retry=FAST_RETRY)
"""Apply settings for tests: real retries, waits of milliseconds."""


# ----------------------------------------------------------------------------- YAML


def volume(
    name: str,
    *,
    namespace: str = "prod",
    size: str = "1Gi",
    storage_class: str | None = None,
    reclaim: str | None = None,
    labels: Mapping[str, str] | None = None,
    restore: str | None = None,
) -> str:
    lines = ["volume:", f"  name: {name}", f"  namespace: {namespace}", f"  size: {size}"]
    lines.append("  accessMode: ReadWriteOnce")
    if storage_class:
        lines.append(f"  storageClassName: {storage_class}")
    if reclaim:
        lines.append(f"  reclaimPolicy: {reclaim}")
    if labels:
        lines.append("  labels:")
        lines.extend(f'    {k}: "{v}"' for k, v in labels.items())
    if restore:
        lines.append(f"  restoreFrom:\n    snapshot: {restore}")
    return "\n".join(lines) + "\n"


def snapshot(
    name: str, source: str, *, namespace: str = "prod", labels: Mapping[str, str] | None = None
) -> str:
    lines = ["snapshot:", f"  name: {name}", f"  namespace: {namespace}", "  source:"]
    lines.append(f"    volume: {source}")
    if labels:
        lines.append("  labels:")
        lines.extend(f'    {k}: "{v}"' for k, v in labels.items())
    return "\n".join(lines) + "\n"


def storage_class(name: str, *, reclaim: str = "delete") -> str:
    return f"storageClass:\n  name: {name}\n  driver: local\n  reclaimPolicy: {reclaim}\n"


def service_claiming(name: str, claim: str, *, namespace: str = "prod") -> str:
    return textwrap.dedent(
        f"""\
        service:
          name: {name}
          namespace: {namespace}
          image: nginx:1.27
          scale: 1
          volumes:
            - name: data
              mountPath: /data
              claim:
                name: {claim}
        """
    )


def docs(*parts: str) -> str:
    return "---\n".join(parts)


# ----------------------------------------------------------------------------- clock


class Ticking:
    """A clock that moves on one second per reading (pre-destroy stamps never collide)."""

    def __init__(self, start: datetime = START, step: timedelta = timedelta(seconds=1)) -> None:
        self._now = start
        self._step = step
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self._now += self._step
            return self._now


# ----------------------------------------------------------------------------- reporter


class Collect:
    """A reporter that keeps every event (events come from several worker threads)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def event(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, address: str, phase: Phase | None = None) -> list[Event]:
        return [
            e
            for e in self.events
            if str(e.address) == address and (phase is None or e.phase is phase)
        ]

    def phases(self, phase: Phase) -> list[str]:
        return [str(e.address) for e in self.events if e.phase is phase]


# ----------------------------------------------------------------------------- flaky driver

Hook = Callable[[OpContext, Any], None]


class Flaky:
    """A driver that delegates to ``inner`` and injects failures and hooks.

    ``fail`` maps an operation (``provision``, ``restore_from_snapshot``, ``delete``,
    ``snapshot``, ``delete_snapshot``, ``expand``, ``verify_snapshot``) to
    ``{address or "*": errors}``: a list is raised one item per call (then calls go
    through), a single exception on every call. The address is ``ctx.address``, the
    change being applied (a pre-destroy snapshot is called with its volume's address).
    ``before``/``after`` map an operation to a hook ``(ctx, request)`` run before the
    inner call (after an injected error is chosen) or after it succeeded. Every call is
    kept in ``calls`` as ``(operation, address, monotonic time)``.
    """

    def __init__(
        self,
        inner: Driver,
        *,
        fail: Mapping[str, Mapping[str, Sequence[Exception] | Exception]] | None = None,
        before: Mapping[str, Hook] | None = None,
        after: Mapping[str, Hook] | None = None,
    ) -> None:
        self.inner = inner
        self._fail: dict[str, dict[str, list[Exception] | Exception]] = {
            op: {
                addr: (list(errs) if not isinstance(errs, Exception) else errs)
                for addr, errs in by_address.items()
            }
            for op, by_address in (fail or {}).items()
        }
        self.before = dict(before or {})
        self.after = dict(after or {})
        self.calls: list[tuple[str, str, float]] = []
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def capabilities(self) -> Any:
        return self.inner.capabilities

    def count(self, op: str, address: str | None = None) -> int:
        return sum(1 for o, a, _ in self.calls if o == op and (address is None or a == address))

    def times(self, op: str, address: str) -> list[float]:
        return [t for o, a, t in self.calls if o == op and a == address]

    def _injected(self, op: str, address: str) -> Exception | None:
        by_address = self._fail.get(op, {})
        for key in (address, "*"):
            errs = by_address.get(key)
            if isinstance(errs, Exception):
                return errs
            if errs:
                return errs.pop(0)
        return None

    def _run(self, op: str, ctx: OpContext, request: Any, call: Callable[[], Any]) -> Any:
        with self._lock:
            self.calls.append((op, ctx.address, time.monotonic()))
            error = self._injected(op, ctx.address)
        hook = self.before.get(op)
        if hook is not None:
            hook(ctx, request)
        if error is not None:
            raise error
        result = call()
        hook = self.after.get(op)
        if hook is not None:
            hook(ctx, result)
        return result

    # The driver protocol, each call delegated.

    def provision(self, ctx: OpContext, request: ProvisionRequest) -> VolumeHandle:
        return VolumeHandle(
            self._run("provision", ctx, request, lambda: self.inner.provision(ctx, request))
        )

    def restore_from_snapshot(self, ctx: OpContext, request: RestoreRequest) -> VolumeHandle:
        return VolumeHandle(
            self._run(
                "restore_from_snapshot",
                ctx,
                request,
                lambda: self.inner.restore_from_snapshot(ctx, request),
            )
        )

    def delete(self, ctx: OpContext, handle: VolumeHandle) -> None:
        self._run("delete", ctx, handle, lambda: self.inner.delete(ctx, handle))

    def snapshot(self, ctx: OpContext, request: SnapshotRequest) -> SnapshotHandle:
        return SnapshotHandle(
            self._run("snapshot", ctx, request, lambda: self.inner.snapshot(ctx, request))
        )

    def verify_snapshot(
        self, ctx: OpContext, source: VolumeHandle, snapshot: SnapshotHandle
    ) -> str:
        verify = self.inner.verify_snapshot  # type: ignore[attr-defined]
        return str(
            self._run(
                "verify_snapshot", ctx, (source, snapshot), lambda: verify(ctx, source, snapshot)
            )
        )

    def delete_snapshot(self, ctx: OpContext, handle: SnapshotHandle) -> None:
        self._run("delete_snapshot", ctx, handle, lambda: self.inner.delete_snapshot(ctx, handle))

    def expand(self, ctx: OpContext, request: ExpandRequest) -> None:
        self._run("expand", ctx, request, lambda: self.inner.expand(ctx, request))

    def observe(self, ctx: OpContext, handle: VolumeHandle) -> Observation:
        return self.inner.observe(ctx, handle)

    def attach(self, ctx: OpContext, handle: VolumeHandle) -> Any:
        return self.inner.attach(ctx, handle)

    def detach(self, ctx: OpContext, handle: VolumeHandle) -> None:
        self.inner.detach(ctx, handle)

    def mount(self, ctx: OpContext, request: Any) -> Any:
        return self.inner.mount(ctx, request)

    def unmount(self, ctx: OpContext, target: Any) -> None:
        self.inner.unmount(ctx, target)


# ----------------------------------------------------------------------------- plan & apply


@dataclass(frozen=True, slots=True, kw_only=True)
class Planned:
    plan: Plan
    source: SourceInfo


def plan_for(
    source_dir: Path,
    backend: StateBackend,
    *,
    options: Options | None = None,
    registry: DriverRegistry | None = None,
) -> Planned:
    """The plan for ``source_dir`` against ``backend``'s records, made as ``plan`` makes it:
    validate → expand → refresh (unless switched off) → planner."""
    options = options or Options()
    validated = validate(source_dir)
    desired = desired_set(validated.specs, validated.runefile.storage)
    registry = registry or DriverRegistry.from_entry_points(settings=validated.runefile.storage)
    records = backend.load_all()
    observations = refresh.observe(records, registry) if options.refresh else {}
    plan = make_plan(
        PlanInput(
            desired=desired,
            records=records,
            capabilities=registry.capabilities(),
            observations=observations,
            options=options,
        )
    )
    source = SourceInfo(kind=SourceKind.DIRECTORY, url=str(source_dir), digest=validated.digest)
    return Planned(plan=plan, source=source)


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    result: engine.Result
    events: Collect


def apply_plan(
    planned: Planned | Plan,
    backend: StateBackend,
    driver: Driver,
    *,
    settings: engine.ApplySettings = FAST,
    stop: threading.Event | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Applied:
    """``engine.execute`` with ``driver`` as the only driver (``local``), events collected."""
    plan = planned.plan if isinstance(planned, Planned) else planned
    source = planned.source if isinstance(planned, Planned) else None
    reporter = Collect()
    result = engine.execute(
        plan,
        backend=backend,
        drivers=lambda name: {driver.name: driver}[name],
        reporter=reporter,
        settings=settings,
        stop=stop,
        source=source,
        clock=clock,
    )
    return Applied(result=result, events=reporter)


def actions(plan: Plan) -> dict[str, str]:
    """``{address: action}`` of every change that is not a no-op."""
    return {str(c.address): c.action.value for c in plan.changes if c.action is not Action.NOOP}


@dataclass
class Env:
    """One test's world: a volume root, a state, the real local driver and a clock.

    ``apply(files, ...)`` writes ``files`` (plus the runefile) as a fresh source, plans
    it against the state and applies the plan; ``replan(files)`` says what a new plan of
    the same files would do.
    """

    tmp: Path
    root: Path
    state_path: Path
    backend: StateBackend
    driver: LocalDriver
    clock: Callable[[], datetime] = field(default_factory=Ticking)
    _sources: Iterator[int] = field(default_factory=itertools.count)

    @property
    def snapshots(self) -> Path:
        return self.root / ".snapshots"

    @property
    def runefile(self) -> str:
        return f"storage:\n  localVolumeRoot: {self.root}\n"

    def source(self, files: Mapping[str, str]) -> Path:
        n = next(self._sources)
        return write_source(self.tmp / f"src{n}", {**files, "runefile.yaml": self.runefile})

    def plan(self, files: Mapping[str, str], **options: Any) -> Planned:
        return plan_for(self.source(files), self.backend, options=Options(**options))

    def apply(
        self,
        files: Mapping[str, str] | Planned,
        *,
        driver: Driver | None = None,
        settings: engine.ApplySettings = FAST,
        stop: threading.Event | None = None,
        **options: Any,
    ) -> Applied:
        planned = files if isinstance(files, Planned) else self.plan(files, **options)
        return apply_plan(
            planned,
            self.backend,
            driver or self.driver,
            settings=settings,
            stop=stop,
            clock=self.clock,
        )

    def records(self) -> dict[str, StateRecord]:
        return {str(a): r for a, r in self.backend.load_all().items()}

    def record(self, address: str) -> StateRecord:
        found = self.backend.get(Address.parse(address))
        assert found is not None, f"{address} is not in the state"
        return found

    def serial(self) -> int:
        return self.backend.meta().serial

    def volume_dirs(self) -> set[str]:
        """Every ``<root>/<namespace>/<name>`` directory (the snapshot root left out)."""
        if not self.root.exists():
            return set()
        return {
            str(p)
            for ns in self.root.iterdir()
            if ns.is_dir() and not ns.name.startswith(".")
            for p in ns.iterdir()
        }

    def snapshot_dirs(self) -> set[str]:
        if not self.snapshots.exists():
            return set()
        return {str(p) for ns in self.snapshots.iterdir() for p in ns.iterdir()}

    def assert_converged(self, files: Mapping[str, str], **options: Any) -> None:
        """A fresh plan of ``files`` is a no-op and no record is left with an intent."""
        again = self.plan(files, **options).plan
        assert actions(again) == {}, [(str(c.address), c.action, c.reason) for c in again.changes]
        left = {a: r.intent for a, r in self.records().items() if r.intent is not None}
        assert left == {}


def volume_handles(records: Mapping[str, StateRecord]) -> set[str]:
    return {r.handle for r in records.values() if r.kind is Kind.VOLUME and r.handle}


def snapshot_handles(records: Mapping[str, StateRecord]) -> set[str]:
    return {r.handle for r in records.values() if r.kind is Kind.SNAPSHOT and r.handle}


def make_env(tmp: Path) -> Env:
    root = tmp / "volumes"
    state_path = tmp / "state" / "state.db"
    backend = open_backend(state_path, create=True)
    driver = LocalDriver(settings=StorageSettings(local_volume_root=root))
    return Env(tmp=tmp, root=root, state_path=state_path, backend=backend, driver=driver)


def read_record(state_path: Path, address: str) -> StateRecord | None:
    """The record as another process would see it now (a separate connection)."""
    with open_backend(state_path, create=False) as other:
        return other.get(Address.parse(address))


def phases_of(events: Collect, address: str) -> list[Phase]:
    return [e.phase for e in events.of(address)]
