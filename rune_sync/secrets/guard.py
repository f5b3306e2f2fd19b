"""Drivers wrapped so that their errors never carry a resolved secret value.

:class:`GuardedDrivers` stands between the engine (or refresh) and the registry: each
driver it hands out forwards every call unchanged and cleans any exception the call
raises with :class:`~rune_sync.secrets.redact.Redactor` before it travels on to the
state, the events, the terminal or a debug log. A driver that can verify snapshots
stays one (``isinstance(d, SnapshotVerifier)`` is unchanged).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Literal

from rune_sync.drivers.base import (
    DevicePath,
    Driver,
    ExpandRequest,
    MountRequest,
    MountTarget,
    Observation,
    OpContext,
    ProvisionRequest,
    RestoreRequest,
    SnapshotHandle,
    SnapshotRequest,
    SnapshotVerifier,
    VolumeHandle,
)
from rune_sync.secrets.redact import Redactor
from rune_sync.spec.model import Capabilities


class _cleaned:
    """Clean an exception leaving the block; a class, as refresh enters it per volume."""

    __slots__ = ("_redactor",)

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if not isinstance(exc, Exception):
            return False
        stand_in = self._redactor.clean(exc)
        if stand_in is None:
            return False
        raise stand_in from None


class GuardedDriver:
    """``driver`` with every error cleaned of secret values."""

    def __init__(self, driver: Driver, redactor: Redactor) -> None:
        self._driver = driver
        self._redactor = redactor

    @property
    def name(self) -> str:
        return self._driver.name

    @property
    def capabilities(self) -> Capabilities:
        return self._driver.capabilities

    def provision(self, ctx: OpContext, request: ProvisionRequest) -> VolumeHandle:
        with _cleaned(self._redactor):
            return self._driver.provision(ctx, request)

    def delete(self, ctx: OpContext, handle: VolumeHandle) -> None:
        with _cleaned(self._redactor):
            self._driver.delete(ctx, handle)

    def attach(self, ctx: OpContext, handle: VolumeHandle) -> DevicePath:
        with _cleaned(self._redactor):
            return self._driver.attach(ctx, handle)

    def detach(self, ctx: OpContext, handle: VolumeHandle) -> None:
        with _cleaned(self._redactor):
            self._driver.detach(ctx, handle)

    def mount(self, ctx: OpContext, request: MountRequest) -> MountTarget:
        with _cleaned(self._redactor):
            return self._driver.mount(ctx, request)

    def unmount(self, ctx: OpContext, target: MountTarget) -> None:
        with _cleaned(self._redactor):
            self._driver.unmount(ctx, target)

    def snapshot(self, ctx: OpContext, request: SnapshotRequest) -> SnapshotHandle:
        with _cleaned(self._redactor):
            return self._driver.snapshot(ctx, request)

    def restore_from_snapshot(self, ctx: OpContext, request: RestoreRequest) -> VolumeHandle:
        with _cleaned(self._redactor):
            return self._driver.restore_from_snapshot(ctx, request)

    def delete_snapshot(self, ctx: OpContext, handle: SnapshotHandle) -> None:
        with _cleaned(self._redactor):
            self._driver.delete_snapshot(ctx, handle)

    def expand(self, ctx: OpContext, request: ExpandRequest) -> None:
        with _cleaned(self._redactor):
            self._driver.expand(ctx, request)

    def observe(self, ctx: OpContext, handle: VolumeHandle) -> Observation:
        with _cleaned(self._redactor):
            return self._driver.observe(ctx, handle)


class GuardedVerifier(GuardedDriver):
    """A guarded driver that can also verify snapshots."""

    def __init__(self, driver: Driver, verifier: SnapshotVerifier, redactor: Redactor) -> None:
        super().__init__(driver, redactor)
        self._verifier = verifier

    def verify_snapshot(
        self, ctx: OpContext, source: VolumeHandle, snapshot: SnapshotHandle
    ) -> str:
        with _cleaned(self._redactor):
            return self._verifier.verify_snapshot(ctx, source, snapshot)


def guard(driver: Driver, redactor: Redactor) -> GuardedDriver:
    """``driver`` wrapped; a :class:`SnapshotVerifier` stays one."""
    if isinstance(driver, SnapshotVerifier):
        return GuardedVerifier(driver, driver, redactor)
    return GuardedDriver(driver, redactor)


class GuardedDrivers:
    """A driver lookup (``registry.get``) whose drivers are guarded.

    ``get`` fits both the engine's ``drivers`` callable and refresh's driver source.
    """

    def __init__(self, lookup: Callable[[str], Driver], redactor: Redactor) -> None:
        self._lookup = lookup
        self._redactor = redactor
        self._guarded: dict[str, Driver] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Driver:
        """The guarded driver ``name``, wrapped once (refresh asks once per volume)."""
        with self._lock:
            found = self._guarded.get(name)
            if found is None:
                found = self._guarded[name] = guard(self._lookup(name), self._redactor)
            return found
