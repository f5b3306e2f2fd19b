"""The decisions: desired + recorded + observed → one change per address, and the gates.

Pure (STYLE §1): refresh happened before, and its observations come in as values; the
same inputs always give the same plan. Every change says why it is what it is,
including no-ops. Safety gates (DESIGN §6):

- a replace (immutable field changed) destroys data and is blocked without
  ``allow_replace``; a destroy (gone from the source under ``reclaimPolicy: delete``)
  is blocked without ``allow_destroy``; blocked changes stay in the plan and the
  verdict, and apply refuses them;
- gone under ``retain``: forget — the data stays and the record is kept as retained;
- claim-template volumes that fall out of the desired state (scale down, service
  removed) are Released, never forgotten or destroyed;
- the mass-delete breaker trips when more than half of the managed volumes (or all of
  them) would be forgotten or destroyed;
- shrinking, or growing a volume whose driver cannot expand, is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rune_sync.drivers.base import Observation, ObservedKind
from rune_sync.errors import PlanError
from rune_sync.plan import diff, graph
from rune_sync.plan.model import Action, Change, DiffOp, FieldDiff, Options, Plan
from rune_sync.spec.expand import Desired, DesiredSet
from rune_sync.spec.model import (
    Address,
    Capabilities,
    Kind,
    SnapshotStatus,
    VolumeStatus,
)
from rune_sync.spec.quantity import format_bytes
from rune_sync.state.model import CLASS_AVAILABLE, StateRecord, canonical_json, thaw_json

IMMUTABLE_VOLUME_FIELDS = frozenset({"storageClassName", "driver", "accessMode", "parameters"})
CREATION_ONLY_FIELDS = frozenset({"restoreFrom"})
"""Read when a volume is created; later edits neither replace nor update it."""
DISPLAY_ONLY_FIELDS = frozenset({"size"})
"""Compared through ``sizeBytes``: 10Gi and 10240Mi are the same size."""
IMMUTABLE_SNAPSHOT_FIELDS = frozenset({"sourceVolume", "driver"})
UNFINISHED_VOLUME = frozenset(
    {VolumeStatus.PENDING, VolumeStatus.PROVISIONING, VolumeStatus.FAILED}
)
UNFINISHED_SNAPSHOT = frozenset(
    {
        SnapshotStatus.PENDING,
        SnapshotStatus.CREATING,
        SnapshotStatus.FAILED,
        SnapshotStatus.DELETING,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanInput:
    """Everything a plan is computed from."""

    desired: DesiredSet
    records: Mapping[Address, StateRecord]
    capabilities: Mapping[str, Capabilities]
    observations: Mapping[Address, Observation] = field(default_factory=dict)
    options: Options = field(default_factory=Options)


class _Problems:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, address: Address, message: str) -> None:
        self.messages.append(f"{address}: {message}")


def make_plan(pin: PlanInput) -> Plan:
    """The plan for ``pin``; raises :class:`PlanError` listing every impossible change."""
    problems = _Problems()
    changes: list[Change] = []
    addresses = sorted(set(pin.desired.resources) | set(pin.records))
    for address in addresses:
        want = pin.desired.resources.get(address)
        have = pin.records.get(address)
        change = _decide(pin, address, want, have, problems)
        if change is not None:
            changes.append(change)
    if problems.messages:
        raise PlanError("cannot plan:\n  " + "\n  ".join(problems.messages))
    if pin.options.targets:
        changes = _targeted(changes, pin.options.targets)
    ordered = graph.order(changes)
    return Plan(changes=ordered, options=pin.options, mass_delete=_breaker(pin, ordered))


# ----------------------------------------------------------------------------- decisions


def _decide(
    pin: PlanInput,
    address: Address,
    want: Desired | None,
    have: StateRecord | None,
    problems: _Problems,
) -> Change | None:
    if want is None:
        if have is None or have.retained:
            return None  # retained records belong to the operator
        return _gone(pin, have)
    if have is None:
        return _create(want, "not in the state yet")
    if address.kind is Kind.STORAGE_CLASS:
        return _compare_class(want, have)
    if address.kind is Kind.SNAPSHOT:
        return _compare_snapshot(pin, want, have)
    return _compare_volume(pin, want, have, problems)


_VOLUME_IGNORED = CREATION_ONLY_FIELDS | DISPLAY_ONLY_FIELDS | {"ownerService"}


def _spec_diffs(have: StateRecord, want: Desired) -> tuple[FieldDiff, ...]:
    """Field diffs of the recorded and desired specs.

    Most resources are unchanged: equal canonical JSON settles that without parsing
    the recorded spec (the state keeps specs as canonical text).
    """
    if have.spec_json == canonical_json(want.spec):
        return ()
    return diff.compute(have.spec, want.spec)


def _desired_status(want: Desired) -> str:
    if want.address.kind is Kind.STORAGE_CLASS:
        return CLASS_AVAILABLE
    if want.address.kind is Kind.SNAPSHOT:
        return SnapshotStatus.READY.value
    return (VolumeStatus.BOUND if want.bound_claim else VolumeStatus.AVAILABLE).value


def _base(want: Desired, action: Action, reason: str, **more: Any) -> Change:
    return Change(
        address=want.address,
        action=action,
        reason=reason,
        driver=want.driver,
        after=dict(want.spec),
        depends_on=want.depends_on,
        status=more.pop("status", _desired_status(want)),
        bound_claim=want.bound_claim,
        owner_service=want.owner_service,
        parameters=dict(want.parameters),
        **more,
    )


def _create(want: Desired, reason: str, **more: Any) -> Change:
    return _base(want, Action.CREATE, reason, **more)


def _compare_class(want: Desired, have: StateRecord) -> Change:
    diffs = _spec_diffs(have, want)
    if have.retained:
        return _base(
            want,
            Action.UPDATE,
            "re-adopted from a retained record",
            diffs=diffs,
            before=_plain(have),
        )
    if not diffs:
        return _base(want, Action.NOOP, "matches the state", before=_plain(have))
    return _base(
        want,
        Action.UPDATE,
        "class settings changed (classes hold no data)",
        diffs=diffs,
        before=_plain(have),
    )


def _compare_snapshot(pin: PlanInput, want: Desired, have: StateRecord) -> Change:
    before = _plain(have)
    if have.status in UNFINISHED_SNAPSHOT:
        return _create(
            want,
            f"snapshot is {have.status}: create it again (idempotent)",
            before=before,
            handle=have.handle,
        )
    diffs = _spec_diffs(have, want)
    immutable = [d for d in diffs if diff.top(d.path) in IMMUTABLE_SNAPSHOT_FIELDS]
    if immutable:
        return _replace(pin, want, have, diffs, "the source volume changed")
    prefix = "re-adopted from a retained record; " if have.retained else ""
    if diffs or have.retained:
        return _base(
            want,
            Action.UPDATE,
            prefix + "labels changed",
            diffs=diffs,
            before=before,
            handle=have.handle,
        )
    return _base(want, Action.NOOP, "matches the state", before=before, handle=have.handle)


def _compare_volume(
    pin: PlanInput, want: Desired, have: StateRecord, problems: _Problems
) -> Change:
    if have.status == VolumeStatus.STALLED:
        return _base(
            want,
            Action.NOOP,
            f"Stalled after {have.failed_runs} failed runs "
            f"({have.failure_message or 'no message'}); run `rune-sync state retry "
            f"{want.address}` to try again",
            before=_plain(have),
            handle=have.handle,
            status=have.status,
        )
    observed = pin.observations.get(want.address)
    if observed is not None and observed.kind is ObservedKind.MISSING and have.handle:
        return _create(
            want,
            "provision it again",
            before=_plain(have),
            handle=have.handle,
            drift=f"{have.handle} no longer exists (removed outside rune-sync)",
        )
    if have.intent == "delete" and have.handle:
        return _create(
            want,
            "an interrupted run was deleting it (as --allow-destroy or --allow-replace "
            "asked): the delete is finished and the volume created again",
            before=_plain(have),
            handle=have.handle,
            destroys_data=True,
        )
    if have.status in UNFINISHED_VOLUME or not have.handle:
        return _create(
            want,
            f"volume is {have.status}: provision it again (idempotent)",
            before=_plain(have),
            handle=have.handle,
        )
    unchanged = have.spec_json == canonical_json(want.spec)
    diffs = () if unchanged else diff.compute(have.spec, want.spec, ignore=_VOLUME_IGNORED)
    # An unchanged spec equals ``after``: it is neither parsed nor repeated in plan files.
    before = None if unchanged else _plain(have)
    caps = pin.capabilities.get(want.driver)
    drift = None
    if observed is not None and observed.kind not in (
        ObservedKind.DIRECTORY,
        ObservedKind.BLOCK_VOLUME,
    ):
        drift = f"{have.handle} is now {observed.detail or observed.kind.value}"
        return _replace(
            pin, want, have, diffs, "what stands at the handle is not the volume", drift=drift
        )
    immutable = [d for d in diffs if diff.top(d.path) in IMMUTABLE_VOLUME_FIELDS]
    if immutable:
        fields = ", ".join(sorted({diff.top(d.path) for d in immutable}))
        return _replace(pin, want, have, diffs, f"immutable field changed: {fields}")
    new_bytes = _bytes(want.spec)
    old_bytes = new_bytes if unchanged else _bytes(have.spec)
    observed_size = observed.size_bytes if observed is not None else None
    block = caps is not None and caps.block_device
    if block and observed_size and observed_size != _provisioned(old_bytes):
        drift = (
            f"size is {format_bytes(observed_size)} at the backend, the state "
            f"recorded {format_bytes(old_bytes)}"
        )
        old_bytes = observed_size
    if new_bytes < old_bytes:
        current = format_bytes(old_bytes)
        where = f"{current} at the backend (resized outside rune-sync)" if drift else current
        problems.add(
            want.address,
            f"size {want.spec['size']} is smaller than the current {where}: shrinking a "
            f"volume is not supported; set size to at least {current}",
        )
    elif new_bytes > old_bytes and (caps is None or not caps.expand):
        problems.add(
            want.address,
            f"driver {want.driver!r} cannot expand volumes "
            f"({format_bytes(old_bytes)} → {want.spec['size']})",
        )
    reasons = _update_reasons(diffs, old_bytes, want, new_bytes > old_bytes)
    if have.retained:
        reasons.insert(0, f"re-adopted from a retained record with its data ({have.handle})")
    extra = _binding_diffs(have, want)
    if not reasons and not extra:
        return _base(
            want, Action.NOOP, "matches the state", before=before, handle=have.handle, drift=drift
        )
    return _base(
        want,
        Action.UPDATE,
        "; ".join(reasons) or "binding changed",
        status=_binding_status(have, want),
        diffs=diffs + extra,
        before=before,
        handle=have.handle,
        drift=drift,
    )


def _plain(have: StateRecord) -> dict[str, Any]:
    """The recorded spec as plain dicts and lists (the state keeps it frozen)."""
    value = thaw_json(have.spec)
    assert isinstance(value, dict)  # a record's spec is a JSON object
    return value


def _bytes(spec: Mapping[str, object]) -> int:
    value = spec.get("sizeBytes")
    return value if isinstance(value, int) else 0


def _provisioned(size_bytes: int) -> int:
    """What a block driver provisions for a size: whole GiB, rounded up."""
    gib = 1024**3
    return -(-size_bytes // gib) * gib


def _update_reasons(
    diffs: tuple[FieldDiff, ...], old_bytes: int, want: Desired, grows: bool
) -> list[str]:
    reasons: list[str] = []
    fields = {diff.top(d.path) for d in diffs}
    if grows:
        reasons.append(f"expand {format_bytes(old_bytes)} → {want.spec['size']}")
    for name in sorted(fields - {"sizeBytes"}):
        reasons.append(f"{name} changed")
    return reasons


def _binding_status(have: StateRecord, want: Desired) -> str:
    """Bound while a service claims it; a volume that was bound and no longer is, Released."""
    if not want.bound_claim and have.status in (VolumeStatus.BOUND, VolumeStatus.RELEASED):
        return VolumeStatus.RELEASED.value
    return _desired_status(want)


def _binding_diffs(have: StateRecord, want: Desired) -> tuple[FieldDiff, ...]:
    status = _binding_status(have, want)
    out: list[FieldDiff] = []
    if have.bound_claim != want.bound_claim:
        out.append(
            FieldDiff(
                op=DiffOp.CHANGE, path="boundClaim", old=have.bound_claim, new=want.bound_claim
            )
        )
    if have.status != status:
        out.append(FieldDiff(op=DiffOp.CHANGE, path="status", old=have.status, new=status))
    return tuple(out)


def _replace(
    pin: PlanInput,
    want: Desired,
    have: StateRecord,
    diffs: tuple[FieldDiff, ...],
    why: str,
    drift: str | None = None,
) -> Change:
    caps = pin.capabilities.get(have.driver)
    snapshot_first = bool(
        want.address.kind is Kind.VOLUME
        and caps is not None
        and caps.snapshots
        and pin.options.snapshot_before_destroy
    )
    blocked = None if pin.options.allow_replace else "--allow-replace"
    return _base(
        want,
        Action.REPLACE,
        f"{why}: the old one is destroyed and a new one created",
        diffs=diffs,
        before=_plain(have),
        handle=have.handle,
        blocked=blocked,
        destroys_data=True,
        snapshot_first=snapshot_first,
        drift=drift,
    )


def _recorded_dependencies(have: StateRecord) -> tuple[Address, ...]:
    """What a removed resource depended on, read from its recorded spec (so that
    destroys and forgets run in reverse: snapshot, then volume, then class)."""
    spec = have.spec
    if have.address.kind is Kind.VOLUME:
        out = []
        cls = spec.get("storageClassName")
        if isinstance(cls, str):
            out.append(Address(Kind.STORAGE_CLASS, "", cls))
        restore = spec.get("restoreFrom")
        if isinstance(restore, str):
            out.append(Address(Kind.SNAPSHOT, have.address.namespace, restore))
        return tuple(out)
    if have.address.kind is Kind.SNAPSHOT:
        source = spec.get("sourceVolume")
        if isinstance(source, str):
            return (Address(Kind.VOLUME, have.address.namespace, source),)
    return ()


def _gone(pin: PlanInput, have: StateRecord) -> Change:
    """A record whose resource left the desired state."""
    address = have.address
    common: dict[str, Any] = {
        "address": address,
        "driver": have.driver,
        "before": _plain(have),
        "handle": have.handle,
        "bound_claim": None,
        "owner_service": have.owner_service,
        "parameters": dict(have.driver_parameters),
        "depends_on": _recorded_dependencies(have),
    }
    if address.kind is Kind.STORAGE_CLASS:
        return Change(
            action=Action.DESTROY, reason="removed from the source (classes hold no data)", **common
        )
    if address.kind is Kind.VOLUME and have.owner_service:
        service_left = (address.namespace, have.owner_service) not in pin.desired.template_owners
        why = "its service was removed" if service_left else "its replica is beyond the scale"
        status = VolumeStatus.RELEASED.value
        if have.status == status and not have.bound_claim:
            return Change(
                action=Action.NOOP,
                status=status,
                reason=f"Released: {why}; "
                "claim-template volumes are kept (scaling down never deletes)",
                **common,
            )
        return Change(
            action=Action.UPDATE,
            status=status,
            reason=f"release: {why}; claim-template volumes are kept (scaling down never deletes)",
            diffs=(FieldDiff(op=DiffOp.CHANGE, path="status", old=have.status, new=status),),
            **common,
        )
    if have.status == VolumeStatus.STALLED:
        return Change(
            action=Action.NOOP,
            status=have.status,
            reason=f"removed from the source, but Stalled after {have.failed_runs} failed "
            f"runs ({have.failure_message or 'no message'}); run `rune-sync state retry "
            f"{address}` to try again",
            **common,
        )
    policy = str(have.spec.get("reclaimPolicy", "retain"))
    if address.kind is Kind.SNAPSHOT:
        if pin.options.allow_destroy:
            return Change(
                action=Action.DESTROY,
                reason="removed from the source; --allow-destroy deletes the snapshot",
                destroys_data=True,
                **common,
            )
        return Change(
            action=Action.FORGET,
            reason="removed from the source; the snapshot is "
            "kept as a retained record (--allow-destroy would delete it)",
            **common,
        )
    if policy == "delete":
        caps = pin.capabilities.get(have.driver)
        snapshot_first = bool(
            caps is not None and caps.snapshots and pin.options.snapshot_before_destroy
        )
        return Change(
            action=Action.DESTROY,
            reason="removed from the source and reclaimPolicy is delete",
            destroys_data=True,
            blocked=None if pin.options.allow_destroy else "--allow-destroy",
            snapshot_first=snapshot_first,
            **common,
        )
    return Change(
        action=Action.FORGET,
        reason="removed from the source; reclaimPolicy retain "
        f"keeps the data ({have.handle}); the state keeps a retained record",
        **common,
    )


# ----------------------------------------------------------------------------- gates


def _breaker(pin: PlanInput, changes: tuple[Change, ...]) -> str | None:
    if pin.options.allow_mass_delete:
        return None
    managed = [r for r in pin.records.values() if r.address.kind is Kind.VOLUME and not r.retained]
    leaving = [
        c
        for c in changes
        if c.address.kind is Kind.VOLUME and c.action in (Action.FORGET, Action.DESTROY)
    ]
    if not managed:
        return None
    if len(leaving) == len(managed):
        return (
            f"the plan would forget or destroy all {len(managed)} managed volumes — is the "
            "source empty (a bad checkout, a wrong --path)?"
        )
    if leaving and not pin.desired.resources and not pin.desired.template_owners:
        # Released claim-template volumes are not "leaving", so count the emptiness itself.
        return (
            f"the source declares nothing but the state manages {len(managed)} volumes — "
            "is the source empty (a bad checkout, a wrong --path)?"
        )
    if 2 * len(leaving) > len(managed):
        return (
            f"the plan would forget or destroy {len(leaving)} of {len(managed)} managed "
            "volumes (more than half)"
        )
    return None


def _targeted(changes: list[Change], targets: tuple[str, ...]) -> list[Change]:
    by_address = {c.address: c for c in changes}
    wanted: set[Address] = set()
    stack = [Address.parse(t) for t in targets]
    while stack:
        address = stack.pop()
        if address in wanted:
            continue
        wanted.add(address)
        change = by_address.get(address)
        if change is not None:
            stack.extend(change.depends_on)
    return [c for c in changes if c.address in wanted]
