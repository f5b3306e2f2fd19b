"""One change of a plan, carried out: intent recorded, driver called, result recorded.

Owned here: what each (kind, action) does to the driver and to the state, in which
order, and what a failure leaves behind (DESIGN §7, seed 001's lifecycles):

- before each driver call the record gets its new status and ``intent`` (Provisioning,
  Released + delete, Creating, Deleting…), after it the result (Available/Bound/Released
  with the handle, Ready) — each its own transaction, so a kill at any moment leaves a
  state that tells the truth, and the idempotent drivers make a re-run converge;
- a failure is recorded with its message and the run counter: a volume whose
  provisioning failed is Failed; one whose expand, delete or pre-destroy snapshot
  failed keeps its status (its data is as it was) so the next plan tries again; after
  ``stall_after`` failed runs it is Stalled and later plans skip it;
- before a destroy or replace with ``snapshot_first`` the volume is snapshotted as
  ``<volume>-predestroy-<timestamp>``, checked (where the driver can) and recorded as a
  retained snapshot; if any of that fails nothing is destroyed.

Secret references in parameters are resolved just before a call and never recorded.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from rune_sync import errors
from rune_sync.apply import retry
from rune_sync.apply.events import Event, Phase, Reporter
from rune_sync.apply.recorder import Recorder
from rune_sync.drivers.base import (
    Driver,
    ExpandRequest,
    OpContext,
    ProvisionRequest,
    RestoreRequest,
    SnapshotHandle,
    SnapshotRequest,
    SnapshotVerifier,
    VolumeHandle,
)
from rune_sync.plan.model import Action, Change
from rune_sync.spec import quantity
from rune_sync.spec.model import AccessMode, Address, Kind, SnapshotStatus, VolumeStatus
from rune_sync.state.model import CLASS_AVAILABLE, StateRecord

ParameterResolver = Callable[[str, Mapping[str, str]], Mapping[str, str]]
"""``(namespace, parameters)`` → what a driver gets: recorded parameters (secret
references as written) resolved in the consuming volume's ``namespace`` (shorthand
references depend on it). Raises ``DriverConfigError`` for one that does not resolve.
The identity when none is given."""

NoticeTaker = Callable[[], Sequence[str]]
"""The warnings met while resolving parameters since the last call, each returned once
(``secrets.Resolver.notices``, as text); they never hold a value."""

PREDESTROY = "predestroy"
_NAME_MAX = 63
_USABLE = frozenset({VolumeStatus.AVAILABLE, VolumeStatus.BOUND, VolumeStatus.RELEASED})


class StepFailed(errors.RuneSyncError):
    """A change could not be carried out; the state already says so."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    address: Address
    action: Action
    ok: bool
    message: str = ""
    handle: str | None = None
    seconds: float = 0.0
    skipped: bool = False
    """Not run at all: something it depends on failed, or the run stopped first."""


@dataclass(slots=True, kw_only=True)
class StepContext:
    """What every step needs; shared by all worker threads of one run."""

    recorder: Recorder
    drivers: Callable[[str], Driver]
    reporter: Reporter
    policy: retry.RetryPolicy
    stop: threading.Event
    stall_after: int
    resolve: ParameterResolver = field(default=lambda namespace, params: params)
    notices: NoticeTaker = field(default=lambda: ())


def predestroy_name(volume: str, stamp: str) -> str:
    """``<volume>-predestroy-<stamp>``, shortened (with a hash) to fit a DNS label."""
    suffix = f"-{PREDESTROY}-{stamp}"
    if len(volume) + len(suffix) <= _NAME_MAX:
        return volume + suffix
    digest = hashlib.sha256(volume.encode()).hexdigest()[:6]
    keep = _NAME_MAX - len(suffix) - len(digest) - 1
    return f"{volume[:keep].rstrip('-')}-{digest}{suffix}"


def run(change: Change, sc: StepContext) -> Outcome:
    """Carry out ``change``; never raises for a failure of the change itself."""
    step = _Step(change, sc)
    started = time.perf_counter()
    sc.reporter.event(Event(phase=Phase.START, address=change.address, action=change.action))
    handle: str | None = None
    try:
        handle, message = step.run()
        ok = True
    except (errors.DriverError, StepFailed, ValueError) as exc:
        message, ok = step.fail(exc), False
    seconds = time.perf_counter() - started
    sc.reporter.event(
        Event(
            phase=Phase.DONE if ok else Phase.FAILED,
            address=change.address,
            action=change.action,
            message=message,
            handle=handle,
            seconds=seconds,
        )
    )
    return Outcome(
        address=change.address,
        action=change.action,
        ok=ok,
        message=message,
        handle=handle,
        seconds=seconds,
    )


class _Step:
    """The state machine of one change. ``fallback`` is the status a failure records."""

    def __init__(self, change: Change, sc: StepContext) -> None:
        self.change = change
        self.sc = sc
        self.rec = sc.recorder
        self.attempts = retry.Attempts()
        have = self.rec.get(change.address)
        self.fallback: str | None = have.status if have is not None else None

    # ------------------------------------------------------------------ dispatch

    def run(self) -> tuple[str | None, str]:
        kind, action = self.change.address.kind, self.change.action
        if kind is Kind.STORAGE_CLASS:
            return self._class()
        if action is Action.FORGET:
            return self._forget()
        if kind is Kind.VOLUME:
            return {
                Action.CREATE: self._volume_create,
                Action.UPDATE: self._volume_update,
                Action.REPLACE: self._volume_replace,
                Action.DESTROY: self._volume_destroy,
            }[action]()
        return {
            Action.CREATE: self._snapshot_create,
            Action.UPDATE: self._snapshot_update,
            Action.REPLACE: self._snapshot_replace,
            Action.DESTROY: self._snapshot_destroy,
        }[action]()

    # ------------------------------------------------------------------ classes

    def _class(self) -> tuple[str | None, str]:
        change = self.change
        if change.action is Action.DESTROY:
            self.rec.remove(change.address)
            return None, "removed"
        have = self.rec.get(change.address)
        spec = dict(change.after or {})
        if have is None:
            self.rec.create(change.address, spec=spec, driver=change.driver, status=CLASS_AVAILABLE)
            return None, "recorded"
        self.rec.update(have, spec=spec, driver=change.driver, retained=False)
        return None, "updated"

    def _forget(self) -> tuple[str | None, str]:
        have = self._settled() if self.change.address.kind is Kind.VOLUME else self._have()
        self.rec.update(have, retained=True, intent=None)
        return have.handle, f"forgotten; the data stays at {have.handle}"

    # ------------------------------------------------------------------ volumes

    def _volume_create(self) -> tuple[str | None, str]:
        have = self.rec.get(self.change.address)
        if have is not None and have.intent == "delete" and have.handle:
            # An interrupted run was deleting it (with the flag that allowed it): finish
            # that, so the volume is made anew rather than from a half-deleted tree.
            self._delete_volume(have)
            have = self.rec.get(self.change.address)
        handle = self._provision(have)
        verb = "restored" if self._after().get("restoreFrom") else "created"
        return handle, f"{verb} ({handle})"

    def _provision(self, have: StateRecord | None) -> str:
        """Provisioning → driver → Available/Bound; a failure from here on is Failed."""
        change, after = self.change, self._after()
        restore = after.get("restoreFrom")
        fields: dict[str, Any] = {
            "spec": after,
            "driver": change.driver,
            "status": VolumeStatus.PROVISIONING.value,
            "intent": "restore" if restore else "provision",
            "handle": have.handle if have is not None else None,
            "bound_claim": change.bound_claim,
            "owner_service": change.owner_service,
            "driver_parameters": dict(change.parameters),
            "retained": False,
            "failure_message": None,
        }
        record = (
            self.rec.update(have, **fields)
            if have is not None
            else self.rec.create(change.address, **fields)
        )
        self.fallback = VolumeStatus.FAILED.value
        driver = self._driver(change.driver)
        ctx = self._ctx(change.parameters)
        provision = _provision_request(change.address, after)
        size = provision.size
        if isinstance(restore, str):
            address = Address(Kind.SNAPSHOT, change.address.namespace, restore)
            request = RestoreRequest(
                name=provision.name,
                namespace=provision.namespace,
                size=size,
                access_mode=provision.access_mode,
                source=self._ready_snapshot(address),
            )
            handle: str = self._call(lambda: driver.restore_from_snapshot(ctx, request))
        else:
            handle = self._call(lambda: driver.provision(ctx, provision))
        old_bytes = _size_bytes(have.spec) if have is not None and have.handle else None
        if old_bytes is not None and old_bytes < size.bytes and driver.capabilities.expand:
            # Provisioned again over an existing volume (a retry): finish its growth too.
            grow = ExpandRequest(handle=VolumeHandle(handle), size=size)
            self._call(lambda: driver.expand(ctx, grow))
        self.rec.update(
            record,
            status=change.status or VolumeStatus.AVAILABLE.value,
            handle=handle,
            intent=None,
            failed_runs=0,
            attempts=self.attempts.count,
        )
        return handle

    def _volume_update(self) -> tuple[str | None, str]:
        change, have = self.change, self._have()
        after = change.after
        notes: list[str] = []
        handle = have.handle
        if after is not None and handle:
            new = quantity.parse(str(after["size"]))
            if new.bytes > (_size_bytes(have.spec) or 0):
                have = self.rec.update(have, intent="expand")
                driver = self._driver(have.driver)
                ctx = self._ctx(have.driver_parameters)
                grow = ExpandRequest(handle=VolumeHandle(handle), size=new)
                self._call(lambda: driver.expand(ctx, grow))
                notes.append(f"expanded to {after['size']}")
        status = change.status or have.status
        self.rec.update(
            have,
            spec=dict(after) if after is not None else have.spec,
            status=status,
            bound_claim=change.bound_claim,
            owner_service=change.owner_service,
            retained=False,
            intent=None,
            failure_message=None,
            failed_runs=0,
            attempts=self.attempts.count,
        )
        notes.append(status)
        return have.handle, "updated (" + ", ".join(notes) + ")"

    def _settled(self) -> StateRecord:
        """The record, with the handle an interrupted provision never recorded found again.

        A kill between the driver's provision and the recorded result leaves no handle
        although the volume may exist; provisioning is idempotent (it finds what the
        earlier call made), so it tells where the volume is before it is destroyed,
        replaced or forgotten."""
        have = self._have()
        if have.handle or have.intent not in ("provision", "restore"):
            return have
        request = _provision_request(have.address, have.spec)
        driver = self._driver(have.driver)
        ctx = self._ctx(have.driver_parameters)
        handle: str = self._call(lambda: driver.provision(ctx, request))
        return self.rec.update(
            have, handle=handle, status=VolumeStatus.AVAILABLE.value, intent=None
        )

    def _volume_replace(self) -> tuple[str | None, str]:
        have = self._settled()
        taken = self._before_destroy(have)
        self._delete_volume(have)
        handle = self._provision(self.rec.get(self.change.address))
        return handle, f"replaced ({handle}){taken}"

    def _volume_destroy(self) -> tuple[str | None, str]:
        have = self._settled()
        taken = self._before_destroy(have)
        self._delete_volume(have)
        self.rec.remove(have.address)
        return have.handle, f"destroyed ({have.handle}){taken}"

    def _delete_volume(self, have: StateRecord) -> None:
        """Released + intent delete → driver delete → a record without a handle."""
        record = self.rec.update(have, status=VolumeStatus.RELEASED.value, intent="delete")
        if have.handle:
            driver = self._driver(have.driver)
            ctx = self._ctx(have.driver_parameters)
            handle = VolumeHandle(have.handle)
            self._call(lambda: driver.delete(ctx, handle))
        # The data is gone: from here on the record describes a volume to be made.
        self.rec.update(record, handle=None, intent=None)
        self.fallback = VolumeStatus.FAILED.value

    def _before_destroy(self, have: StateRecord) -> str:
        """The pre-destroy snapshot, taken, checked and recorded; '' when not asked for."""
        if not self.change.snapshot_first or not have.handle:
            return ""
        if have.intent == "delete":
            return self._note(
                have,
                f"no snapshot taken: an interrupted run had already begun deleting "
                f"{have.handle}, so what is left of it is not worth keeping",
            )
        address = self._predestroy_address(have)
        record = self.rec.create(
            address,
            spec={
                "sourceVolume": have.address.name,
                "driver": have.driver,
                "labels": {},
                "preDestroyOf": str(have.address),
            },
            driver=have.driver,
            status=SnapshotStatus.CREATING.value,
            intent="predestroy-snapshot",
            retained=True,
            driver_parameters=dict(have.driver_parameters),
        )
        driver = self._driver(have.driver)
        ctx = self._ctx(have.driver_parameters)
        source = VolumeHandle(have.handle)
        request = SnapshotRequest(name=address.name, namespace=address.namespace, source=source)
        try:
            snap = self._call(lambda: driver.snapshot(ctx, request))
        except errors.ResourceNotFound as exc:
            self.rec.remove(address)  # nothing was made
            return self._note(have, f"no snapshot taken: the volume is already gone ({exc})")
        except (errors.DriverError, ValueError) as exc:
            self._predestroy_failed(record, None, exc)
        checked = ""
        if isinstance(driver, SnapshotVerifier):
            try:
                checked = "; checked: " + driver.verify_snapshot(ctx, source, snap)
            except (errors.DriverError, ValueError) as exc:
                self._predestroy_failed(record, snap, exc)
        self.rec.update(record, status=SnapshotStatus.READY.value, handle=snap, intent=None)
        return self._note(have, f"snapshot {address} taken first ({snap}{checked})")

    def _predestroy_address(self, have: StateRecord) -> Address:
        """A name no record uses yet: two destroys in one second must not share a copy.

        A copy a killed run left in flight is taken again under its own name, so its
        record is finished and the driver clears its leftovers."""
        unfinished = self.rec.unfinished_copy(have.address)
        if unfinished is not None:
            record = self.rec.get(unfinished)
            if record is not None and record.intent == "predestroy-snapshot":
                return unfinished
        stamp = self.rec.now().strftime("%Y%m%dt%H%M%Sz")
        namespace, volume = have.address.namespace, have.address.name
        address = Address(Kind.SNAPSHOT, namespace, predestroy_name(volume, stamp))
        n = 1
        while self.rec.get(address) is not None:
            n += 1
            address = Address(Kind.SNAPSHOT, namespace, predestroy_name(volume, f"{stamp}-{n}"))
        return address

    def _predestroy_failed(
        self, record: StateRecord, handle: str | None, exc: Exception
    ) -> NoReturn:
        """Record the failed snapshot (with its handle when something was made) and stop."""
        self.rec.update(
            record,
            status=SnapshotStatus.FAILED.value,
            handle=handle,
            intent=None,
            failure_message=str(exc),
        )
        kept = f"; what was made is kept at {handle}" if handle else ""
        raise StepFailed(
            f"pre-destroy snapshot {record.address} failed, nothing was destroyed: {exc}{kept}"
        ) from exc

    def _note(self, have: StateRecord, note: str) -> str:
        self.sc.reporter.event(
            Event(phase=Phase.NOTE, address=have.address, action=self.change.action, message=note)
        )
        return f"; {note}"

    # ------------------------------------------------------------------ snapshots

    def _snapshot_create(self) -> tuple[str | None, str]:
        handle = self._take_snapshot(self.rec.get(self.change.address))
        return handle, f"created ({handle})"

    def _take_snapshot(self, have: StateRecord | None) -> str:
        change, after = self.change, self._after()
        namespace = change.address.namespace
        source = self._usable_volume(Address(Kind.VOLUME, namespace, str(after["sourceVolume"])))
        fields: dict[str, Any] = {
            "spec": after,
            "driver": change.driver,
            "status": SnapshotStatus.CREATING.value,
            "intent": "snapshot",
            "retained": False,
            "failure_message": None,
            "driver_parameters": dict(source.driver_parameters),
        }
        record = (
            self.rec.update(have, **fields)
            if have is not None
            else self.rec.create(change.address, **fields)
        )
        self.fallback = SnapshotStatus.FAILED.value
        driver = self._driver(change.driver)
        ctx = self._ctx(source.driver_parameters)
        assert source.handle is not None  # _usable_volume checked it
        request = SnapshotRequest(
            name=change.address.name, namespace=namespace, source=VolumeHandle(source.handle)
        )
        handle: str = self._call(lambda: driver.snapshot(ctx, request))
        self.rec.update(
            record,
            status=SnapshotStatus.READY.value,
            handle=handle,
            intent=None,
            failed_runs=0,
            attempts=self.attempts.count,
        )
        return handle

    def _snapshot_update(self) -> tuple[str | None, str]:
        have = self._have()
        self.rec.update(
            have, spec=dict(self._after()), retained=False, intent=None, failure_message=None
        )
        return have.handle, "updated (labels)"

    def _snapshot_replace(self) -> tuple[str | None, str]:
        have = self._have()
        self._delete_snapshot(have)
        handle = self._take_snapshot(self.rec.get(self.change.address))
        return handle, f"replaced ({handle})"

    def _snapshot_destroy(self) -> tuple[str | None, str]:
        have = self._have()
        self._delete_snapshot(have)
        self.rec.remove(have.address)
        return have.handle, f"deleted ({have.handle})"

    def _delete_snapshot(self, have: StateRecord) -> None:
        """Deleting → driver delete_snapshot; the caller removes or reuses the record."""
        record = self.rec.update(
            have, status=SnapshotStatus.DELETING.value, intent="delete-snapshot"
        )
        if have.handle:
            driver = self._driver(have.driver)
            ctx = self._ctx(have.driver_parameters)
            handle = SnapshotHandle(have.handle)
            self._call(lambda: driver.delete_snapshot(ctx, handle))
        self.rec.update(record, handle=None, intent=None)
        self.fallback = SnapshotStatus.FAILED.value

    # ------------------------------------------------------------------ failure

    def fail(self, exc: Exception) -> str:
        """Record the failure of this change; returns the message shown for it."""
        message = str(exc)
        have = self.rec.get(self.change.address)
        if have is None:
            return message
        runs = have.failed_runs + 1
        status = self.fallback or have.status
        stalled = have.kind is Kind.VOLUME and runs >= self.sc.stall_after
        if stalled:
            status = VolumeStatus.STALLED.value
            message += (
                f" — Stalled after {runs} failed runs; `rune-sync state retry "
                f"{self.change.address}` lets the next apply try again"
            )
        try:
            self.rec.update(
                have,
                status=status,
                intent=None,
                failure_message=str(exc),
                failed_runs=runs,
                attempts=self.attempts.count,
            )
        except (errors.StateError, ValueError) as state_exc:
            message += f" (and recording the failure failed: {state_exc})"
        return message

    # ------------------------------------------------------------------ helpers

    def _call(self, fn: Callable[[], Any]) -> Any:
        change = self.change

        def told(error: errors.DriverTransientError, wait: float) -> None:
            self.sc.reporter.event(
                Event(
                    phase=Phase.RETRY,
                    address=change.address,
                    action=change.action,
                    message=f"{error}; attempt {self.attempts.count} of "
                    f"{self.sc.policy.attempts}, retrying in {wait:.1f}s",
                    seconds=wait,
                )
            )

        return retry.call(
            fn, policy=self.sc.policy, attempts=self.attempts, stop=self.sc.stop, on_retry=told
        )

    def _ctx(self, parameters: Mapping[str, str]) -> OpContext:
        # The consuming volume's namespace: the volume's own; a snapshot's (and a
        # pre-destroy snapshot's) is its source volume's, the same namespace.
        namespace = self.change.address.namespace
        try:
            resolved = self.sc.resolve(namespace, parameters)
        finally:
            self._report_notices()
        return OpContext(parameters=resolved, address=str(self.change.address))

    def _report_notices(self) -> None:
        """Warnings the resolution just met (a secrets directory open to others…), as
        notes of this change; each is met once per run, by whichever change met it."""
        for notice in self.sc.notices():
            self.sc.reporter.event(
                Event(
                    phase=Phase.NOTE,
                    address=self.change.address,
                    action=self.change.action,
                    message=notice,
                )
            )

    def _driver(self, name: str) -> Driver:
        return self.sc.drivers(name)

    def _have(self) -> StateRecord:
        have = self.rec.get(self.change.address)
        if have is None:
            raise StepFailed(f"{self.change.address} is not in the state (was it removed?)")
        return have

    def _after(self) -> Mapping[str, Any]:
        if self.change.after is None:
            raise StepFailed(f"the plan has no desired spec for {self.change.address}")
        return self.change.after

    def _ready_snapshot(self, address: Address) -> SnapshotHandle:
        record = self.rec.get(address)
        if record is None or record.status != SnapshotStatus.READY or not record.handle:
            status = record.status if record is not None else "not in the state"
            raise StepFailed(f"cannot restore from {address}: it is {status}, not Ready")
        return SnapshotHandle(record.handle)

    def _usable_volume(self, address: Address) -> StateRecord:
        record = self.rec.get(address)
        if record is None or record.status not in _USABLE or not record.handle:
            status = record.status if record is not None else "not in the state"
            raise StepFailed(f"cannot snapshot {address}: it is {status}")
        return record


def _provision_request(address: Address, spec: Mapping[str, Any]) -> ProvisionRequest:
    """The request that makes the volume ``spec`` describes (a desired or recorded spec)."""
    return ProvisionRequest(
        name=address.name,
        namespace=address.namespace,
        size=quantity.parse(str(spec["size"])),
        access_mode=AccessMode(str(spec["accessMode"])),
    )


def _size_bytes(spec: Mapping[str, Any]) -> int | None:
    value = spec.get("sizeBytes")
    return value if isinstance(value, int) else None
