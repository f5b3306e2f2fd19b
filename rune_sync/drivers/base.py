"""The storage driver contract: what every backend implements and what callers may rely on.

This module owns the :class:`Driver` protocol (Rune's ``driver.Driver`` in snake_case,
plus :meth:`Driver.observe` for refresh), the per-call :class:`OpContext`, the small
request values, the handle ``NewType``\\ s, :class:`Observation`, and the checks every
driver runs first (capabilities, access modes). Apply and refresh call drivers through
this protocol only; the registry finds implementations.

It must not do I/O, know any concrete backend, or resolve secrets: the caller puts
resolved parameters into :class:`OpContext` and they never appear in its ``repr``.
Every promise written in a docstring here is checked by :mod:`rune_sync.testing`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar, NewType, Protocol, TypeVar, runtime_checkable

from rune_sync import errors
from rune_sync.spec.model import AccessMode, Capabilities, StorageClass, Volume
from rune_sync.spec.quantity import Quantity

VolumeHandle = NewType("VolumeHandle", str)
"""Opaque, driver-owned id of a volume (``local``: its directory path)."""

SnapshotHandle = NewType("SnapshotHandle", str)
"""Opaque, driver-owned id of a snapshot."""

DevicePath = NewType("DevicePath", str)
"""A node-local block device returned by ``attach``; empty for directory drivers."""

MountTarget = NewType("MountTarget", str)
"""The node-local path through which the volume's data is reachable after ``mount``."""

_NO_PARAMETERS: Mapping[str, str] = MappingProxyType({})


def merge_parameters(
    class_params: Mapping[str, str], volume_params: Mapping[str, str]
) -> Mapping[str, str]:
    """Class parameters with the volume's on top, as a read-only mapping.

    Keys are compared exactly: ``hostPath`` and ``hostpath`` are different keys.
    """
    return MappingProxyType({**class_params, **volume_params})


@dataclass(frozen=True, slots=True, kw_only=True)
class OpContext:
    """What every driver call is about, built by the caller just before the call.

    ``storage_class`` is ``None`` for orphan cleanup (the class is gone; ``parameters``
    then comes from the state's recorded ``driverParameters``). ``parameters`` is the
    merged class + volume map with secret references already resolved, so it is kept
    out of ``repr``. ``node`` is the node's hostname, ``""`` when there is none.
    ``address`` (``volume/NS/NAME``) names the resource in error messages.
    """

    storage_class: StorageClass | None = None
    volume: Volume | None = None
    parameters: Mapping[str, str] = field(default_factory=lambda: _NO_PARAMETERS, repr=False)
    node: str = ""
    address: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProvisionRequest:
    """Create the backing store of volume ``namespace/name``."""

    name: str
    namespace: str
    size: Quantity
    access_mode: AccessMode


@dataclass(frozen=True, slots=True, kw_only=True)
class MountRequest:
    """Make volume ``handle`` usable; ``target`` is the proposed node-local path."""

    handle: VolumeHandle
    target: str
    read_only: bool = False
    device: DevicePath = DevicePath("")


@dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotRequest:
    """Take snapshot ``namespace/name`` of the volume ``source``."""

    name: str
    namespace: str
    source: VolumeHandle


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreRequest:
    """Create the NEW volume ``namespace/name`` holding the data of snapshot ``source``."""

    name: str
    namespace: str
    size: Quantity
    access_mode: AccessMode
    source: SnapshotHandle


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpandRequest:
    """Grow volume ``handle`` to ``size``; ``attached`` says the caller has it attached."""

    handle: VolumeHandle
    size: Quantity
    attached: bool = False


class ObservedKind(enum.StrEnum):
    """What a driver found behind a handle."""

    MISSING = "missing"
    DIRECTORY = "directory"
    NOT_A_DIRECTORY = "not-a-directory"
    SYMLINK = "symlink"
    BLOCK_VOLUME = "block-volume"


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """What exists behind a volume handle right now; the input of refresh and drift.

    ``size_bytes`` is the provisioned size of a block volume; ``None`` for directory
    drivers, where size is informational — refresh runs for every volume on every
    plan, so observing never walks a tree (a host path can hold terabytes).
    ``fingerprint`` identifies the thing cheaply (``"<inode>:<mtime_ns>"`` for a
    directory): another fingerprint with the same kind means it was replaced or touched.
    ``detail`` is a short human explanation (``"symlink to /etc"``).
    """

    kind: ObservedKind
    size_bytes: int | None = None
    fingerprint: str = ""
    detail: str = ""

    @property
    def exists(self) -> bool:
        return self.kind is not ObservedKind.MISSING


class Driver(Protocol):
    """A storage backend. Every method is idempotent: apply retries after crashes.

    Implementations are classes constructed as ``cls(settings=StorageSettings)`` with
    class attributes ``CAPABILITIES`` (read by the registry without constructing
    them) and equal to :attr:`capabilities`. Errors are the ``DriverError`` tree of
    :mod:`rune_sync.errors`; an operation outside :attr:`capabilities` raises
    ``UnsupportedOperation`` before touching anything.
    """

    @property
    def name(self) -> str:
        """The registered name (``local``); equals the registry key."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """What the driver supports; the same value for the life of the driver."""
        ...

    def provision(self, ctx: OpContext, request: ProvisionRequest) -> VolumeHandle:
        """Create the volume, or find the one a previous call created.

        Calling it again with the same request returns the same handle. Raises
        ``AccessModeUnsupported`` for a mode not in ``capabilities.access_modes``
        and ``DriverConfigError`` for invalid parameters.
        """
        ...

    def delete(self, ctx: OpContext, handle: VolumeHandle) -> None:
        """Destroy the volume's data (drivers may keep it by design, e.g. ``local-host``).

        A handle whose volume is already gone succeeds, so a second call succeeds.
        Afterwards :meth:`observe` reports it missing, unless the driver keeps data
        by design. Other volumes are never touched.
        """
        ...

    def attach(self, ctx: OpContext, handle: VolumeHandle) -> DevicePath:
        """Make the volume available on ``ctx.node``; returns the device (``""`` if none).

        Attaching an attached volume succeeds. A missing volume raises ``ResourceNotFound``.
        """
        ...

    def detach(self, ctx: OpContext, handle: VolumeHandle) -> None:
        """Undo :meth:`attach`. Succeeds when never attached or when the volume is gone."""
        ...

    def mount(self, ctx: OpContext, request: MountRequest) -> MountTarget:
        """Make the data usable; returns the path the runner uses (never empty).

        Directory drivers return the directory the runner bind-mounts at
        ``request.target``. Mounting twice returns the same path. A missing volume
        raises ``ResourceNotFound``.
        """
        ...

    def unmount(self, ctx: OpContext, target: MountTarget) -> None:
        """Undo :meth:`mount`. Idempotent; never removes the volume's data."""
        ...

    def snapshot(self, ctx: OpContext, request: SnapshotRequest) -> SnapshotHandle:
        """Take a point-in-time copy of ``request.source``.

        A snapshot of that name already there is returned as it is, so calling it
        again returns the same handle. Raises ``UnsupportedOperation`` without
        ``capabilities.snapshots`` and ``ResourceNotFound`` when the source volume is
        gone.
        """
        ...

    def restore_from_snapshot(self, ctx: OpContext, request: RestoreRequest) -> VolumeHandle:
        """Create a new volume holding the snapshot's data; ``ctx`` describes the new volume.

        Calling it again returns the same handle and never overwrites an existing
        volume. Raises ``UnsupportedOperation`` without snapshots,
        ``AccessModeUnsupported`` like :meth:`provision`, and ``ResourceNotFound``
        when the snapshot is gone.
        """
        ...

    def delete_snapshot(self, ctx: OpContext, handle: SnapshotHandle) -> None:
        """Destroy a snapshot. A snapshot that is already gone succeeds.

        Raises ``UnsupportedOperation`` without ``capabilities.snapshots``.
        """
        ...

    def expand(self, ctx: OpContext, request: ExpandRequest) -> None:
        """Grow the volume to ``request.size``; growing to the current size succeeds.

        Raises ``UnsupportedOperation`` without ``capabilities.expand``,
        ``OnlineExpandUnsupported`` for an attached volume without
        ``capabilities.online_expand``, and ``ResourceNotFound`` for a missing volume.
        Shrinking is refused by the planner before any driver is called.
        """
        ...

    def observe(self, ctx: OpContext, handle: VolumeHandle) -> Observation:
        """Report what is behind ``handle`` now, without changing anything.

        A missing volume is an :class:`Observation` of kind ``MISSING``, not an error.
        Observing twice with nothing changed in between gives equal observations.
        """
        ...


class Declared:
    """Base of the built-in drivers: :attr:`name` and :attr:`capabilities` are the class
    declarations ``NAME`` and ``CAPABILITIES`` the registry reads without building one."""

    NAME: ClassVar[str]
    CAPABILITIES: ClassVar[Capabilities]

    @property
    def name(self) -> str:
        return self.NAME

    @property
    def capabilities(self) -> Capabilities:
        return self.CAPABILITIES


@runtime_checkable
class SnapshotVerifier(Protocol):
    """Optional: a driver that can check a snapshot against its source volume.

    Apply calls it after a pre-destroy snapshot and destroys nothing unless it passes.
    """

    def verify_snapshot(
        self, ctx: OpContext, source: VolumeHandle, snapshot: SnapshotHandle
    ) -> str:
        """Check that ``snapshot`` holds what ``source`` holds now.

        Returns a short summary of what was compared (``"120 files, 4.5 MB"``); raises
        a ``DriverError`` saying what differs.
        """
        ...


_E = TypeVar("_E", bound=errors.DriverError)


@dataclass(frozen=True, slots=True)
class ErrorScope:
    """Where a driver error happens; builds errors that carry it."""

    driver: str
    operation: str
    address: str

    @classmethod
    def of(cls, driver: str, operation: str, ctx: OpContext) -> ErrorScope:
        return cls(driver, operation, ctx.address)

    def error(self, kind: type[_E], message: str) -> _E:
        return kind(
            f"{self.driver}: {message}",
            driver=self.driver,
            operation=self.operation,
            address=self.address,
        )


def require_access_mode(caps: Capabilities, mode: AccessMode, scope: ErrorScope) -> None:
    """Raise ``AccessModeUnsupported`` unless ``caps`` advertises ``mode``."""
    if mode not in caps.access_modes:
        supported = ", ".join(sorted(m.value for m in caps.access_modes))
        raise scope.error(
            errors.AccessModeUnsupported,
            f"access mode {mode.value} is not supported (supports {supported})",
        )


def require_snapshots(caps: Capabilities, scope: ErrorScope) -> None:
    """Raise ``UnsupportedOperation`` unless ``caps`` advertises snapshots."""
    if not caps.snapshots:
        raise scope.error(errors.UnsupportedOperation, "snapshots are not supported")


def require_expand(caps: Capabilities, request: ExpandRequest, scope: ErrorScope) -> None:
    """Raise ``UnsupportedOperation`` / ``OnlineExpandUnsupported`` as the contract says."""
    if not caps.expand:
        raise scope.error(errors.UnsupportedOperation, "expanding volumes is not supported")
    if request.attached and not caps.online_expand:
        raise scope.error(
            errors.OnlineExpandUnsupported,
            "the volume is attached and online expand is unsupported; detach it first",
        )
