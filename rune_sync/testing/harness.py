"""Plumbing of the driver conformance suite: one run's volumes, checks and cleanup.

Owned here: :class:`Run`, which provisions volumes for one conformance test through the
hooks of a :class:`~rune_sync.testing.conformance.DriverConformance` subclass,
remembers every handle, and removes them best-effort at the end; and the small
assertion helpers the suite uses. pytest is imported only when a step must be skipped,
so driver packages can import this module without it. Nothing here knows a concrete
driver.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import NoReturn, Protocol, TypeVar

from rune_sync import errors
from rune_sync.drivers.base import (
    Driver,
    MountRequest,
    MountTarget,
    OpContext,
    ProvisionRequest,
    RestoreRequest,
    SnapshotHandle,
    SnapshotRequest,
    VolumeHandle,
)
from rune_sync.spec.model import AccessMode, Volume
from rune_sync.spec.quantity import Quantity

PROBE_NAME = "conformance-probe"
SIZE = Quantity(1 << 20, "1Mi")
_E = TypeVar("_E", bound=BaseException)


class Hooks(Protocol):
    """The parts of a conformance class a run calls back into."""

    @property
    def namespace(self) -> str: ...

    def make_driver(self, tmp_path: Path) -> Driver: ...

    def volume_parameters(
        self, tmp_path: Path, *, namespace: str, name: str
    ) -> Mapping[str, str]: ...

    def op_context(self, driver: Driver, *, volume: Volume) -> OpContext: ...


def expect(condition: bool, message: str) -> None:
    """Fail the test with ``message`` unless ``condition`` (survives ``python -O``)."""
    if not condition:
        raise AssertionError(message)


def expect_raises(kind: type[_E], call: Callable[[], object], what: str) -> _E:
    """Call ``call`` and return the ``kind`` error it must raise."""
    try:
        result = call()
    except kind as exc:
        return exc
    raise AssertionError(f"{what}: expected {kind.__name__}, got result {result!r}")


def skip(reason: str) -> NoReturn:
    import pytest  # only here: importing the suite must not need pytest

    pytest.skip(reason)


def preferred_mode(driver: Driver) -> AccessMode:
    """ReadWriteOnce when advertised (every lifecycle step needs writes), else any."""
    modes = driver.capabilities.access_modes
    if AccessMode.READ_WRITE_ONCE in modes:
        return AccessMode.READ_WRITE_ONCE
    return sorted(modes)[0]


class Run(AbstractContextManager["Run"]):
    """One test's driver and volumes; leaving the ``with`` block cleans up best-effort."""

    def __init__(self, hooks: Hooks, tmp_path: Path) -> None:
        self.hooks = hooks
        self.tmp_path = tmp_path
        self.driver = hooks.make_driver(tmp_path)
        self.volumes: list[tuple[OpContext, VolumeHandle]] = []
        self.snapshots: list[tuple[OpContext, SnapshotHandle]] = []

    def context(self, name: str, mode: AccessMode | None = None) -> OpContext:
        """The context of a fresh volume ``name`` in the suite's namespace."""
        namespace = self.hooks.namespace
        volume = Volume(
            name=name,
            namespace=namespace,
            size=SIZE,
            access_mode=mode or preferred_mode(self.driver),
            parameters=self.hooks.volume_parameters(self.tmp_path, namespace=namespace, name=name),
        )
        return self.hooks.op_context(self.driver, volume=volume)

    def provision(self, ctx: OpContext) -> VolumeHandle:
        volume = _volume(ctx)
        request = ProvisionRequest(
            name=volume.name,
            namespace=volume.namespace,
            size=volume.size,
            access_mode=volume.access_mode,
        )
        handle = self.driver.provision(ctx, request)
        expect(bool(handle), "provision returned an empty handle")
        self.volumes.append((ctx, handle))
        return handle

    def snapshot(self, ctx: OpContext, name: str, source: VolumeHandle) -> SnapshotHandle:
        request = SnapshotRequest(name=name, namespace=_volume(ctx).namespace, source=source)
        handle = self.driver.snapshot(ctx, request)
        expect(bool(handle), "snapshot returned an empty handle")
        self.snapshots.append((ctx, handle))
        return handle

    def restore(self, ctx: OpContext, source: SnapshotHandle) -> VolumeHandle:
        volume = _volume(ctx)
        request = RestoreRequest(
            name=volume.name,
            namespace=volume.namespace,
            size=volume.size,
            access_mode=volume.access_mode,
            source=source,
        )
        handle = self.driver.restore_from_snapshot(ctx, request)
        expect(bool(handle), "restore_from_snapshot returned an empty handle")
        self.volumes.append((ctx, handle))
        return handle

    def mount(self, ctx: OpContext, handle: VolumeHandle) -> MountTarget:
        target = self.tmp_path / "mnt" / _volume(ctx).name
        mounted = self.driver.mount(ctx, MountRequest(handle=handle, target=str(target)))
        expect(bool(mounted), "mount returned an empty target")
        return mounted

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Best effort: a failing cleanup must not hide the test's own outcome.
        for ctx, snap in reversed(self.snapshots):
            with contextlib.suppress(errors.DriverError):
                self.driver.delete_snapshot(ctx, snap)
        for ctx, handle in reversed(self.volumes):
            with contextlib.suppress(errors.DriverError):
                self.driver.delete(ctx, handle)


def write_probe(mounted: MountTarget, content: str) -> bool:
    """Write the probe file through a directory mount; ``False`` for block devices."""
    if not os.path.isdir(mounted):
        return False
    Path(mounted, PROBE_NAME).write_text(content, encoding="utf-8")
    return True


def read_probe(mounted: MountTarget) -> str | None:
    path = Path(mounted, PROBE_NAME)
    return path.read_text(encoding="utf-8") if path.exists() else None


def _volume(ctx: OpContext) -> Volume:
    expect(ctx.volume is not None, "op_context() must set the volume")
    assert ctx.volume is not None  # for the type checker; checked just above
    return ctx.volume
