"""The plan as a value: changes with field diffs and reasons, the data verdict, a summary.

Built by :mod:`rune_sync.plan.planner`, rendered by the CLI views, saved by
:mod:`rune_sync.plan.planfile` and executed by apply. Frozen, JSON-serialisable
(:meth:`Plan.to_json` / :meth:`Plan.from_json`); renderers never recompute anything.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rune_sync.spec.model import Address

PLAN_FORMAT = "rune-sync-plan"
PLAN_VERSION = 1


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DESTROY = "destroy"
    FORGET = "forget"
    NOOP = "no-op"

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]


_SYMBOLS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.DESTROY: "-",
    Action.FORGET: "⊘",
    Action.NOOP: "",
}


class DiffOp(enum.StrEnum):
    ADD = "add"
    REMOVE = "remove"
    CHANGE = "change"


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldDiff:
    """One changed field: ``path`` like ``labels.app``; old/new are JSON values."""

    op: DiffOp
    path: str
    old: Any = None
    new: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op.value, "path": self.path, "old": self.old, "new": self.new}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FieldDiff:
        return cls(
            op=DiffOp(data["op"]), path=data["path"], old=data.get("old"), new=data.get("new")
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """What happens to one address, and why.

    ``blocked`` says which flag is missing when a destructive action was not allowed
    (the plan shows it; apply refuses it). ``destroys_data`` marks the changes that
    belong in the data verdict. ``snapshot_first`` is the pre-destroy snapshot apply
    will take. ``before``/``after`` are the recorded and desired specs.
    """

    address: Address
    action: Action
    reason: str
    driver: str = ""
    diffs: tuple[FieldDiff, ...] = ()
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    handle: str | None = None
    depends_on: tuple[Address, ...] = ()
    blocked: str | None = None
    destroys_data: bool = False
    snapshot_first: bool = False
    drift: str | None = None
    status: str | None = None
    """The status the record will have after this change (Bound, Released, …)."""
    bound_claim: str | None = None
    owner_service: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "address": str(self.address),
            "action": self.action.value,
            "reason": self.reason,
            "driver": self.driver,
            "diffs": [d.to_json() for d in self.diffs],
            "before": self.before,
            "after": self.after,
            "handle": self.handle,
            "dependsOn": [str(a) for a in self.depends_on],
            "blocked": self.blocked,
            "destroysData": self.destroys_data,
            "snapshotFirst": self.snapshot_first,
            "drift": self.drift,
            "status": self.status,
            "boundClaim": self.bound_claim,
            "ownerService": self.owner_service,
            "parameters": dict(self.parameters),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Change:
        return cls(
            address=Address.parse(data["address"]),
            action=Action(data["action"]),
            reason=data["reason"],
            driver=data.get("driver", ""),
            diffs=tuple(FieldDiff.from_json(d) for d in data.get("diffs", ())),
            before=data.get("before"),
            after=data.get("after"),
            handle=data.get("handle"),
            depends_on=tuple(Address.parse(a) for a in data.get("dependsOn", ())),
            blocked=data.get("blocked"),
            destroys_data=bool(data.get("destroysData", False)),
            snapshot_first=bool(data.get("snapshotFirst", False)),
            drift=data.get("drift"),
            status=data.get("status"),
            bound_claim=data.get("boundClaim"),
            owner_service=data.get("ownerService"),
            parameters=dict(data.get("parameters") or {}),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    create: int = 0
    update: int = 0
    replace: int = 0
    destroy: int = 0
    forget: int = 0

    @property
    def changes(self) -> int:
        return self.create + self.update + self.replace + self.destroy + self.forget

    def line(self) -> str:
        return (
            f"Plan: {self.create} to create, {self.update} to update, {self.replace} to "
            f"replace, {self.destroy} to destroy, {self.forget} to forget."
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Victim:
    """A resource whose data the plan would destroy."""

    address: Address
    handle: str | None
    action: Action
    blocked: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """The choices a plan was made with; saved with it so apply uses the same ones."""

    allow_replace: bool = False
    allow_destroy: bool = False
    allow_mass_delete: bool = False
    snapshot_before_destroy: bool = True
    refresh: bool = True
    targets: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "allowReplace": self.allow_replace,
            "allowDestroy": self.allow_destroy,
            "allowMassDelete": self.allow_mass_delete,
            "snapshotBeforeDestroy": self.snapshot_before_destroy,
            "refresh": self.refresh,
            "targets": list(self.targets),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Options:
        return cls(
            allow_replace=bool(data.get("allowReplace")),
            allow_destroy=bool(data.get("allowDestroy")),
            allow_mass_delete=bool(data.get("allowMassDelete")),
            snapshot_before_destroy=bool(data.get("snapshotBeforeDestroy", True)),
            refresh=bool(data.get("refresh", True)),
            targets=tuple(data.get("targets") or ()),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """A complete plan; ``changes`` are in execution order, no-ops included."""

    changes: tuple[Change, ...]
    options: Options = field(default_factory=Options)
    lineage: str | None = None
    serial: int = 0
    input_digest: str = ""
    source: Mapping[str, Any] | None = None
    tool_version: str = ""
    mass_delete: str | None = None
    """Why the mass-delete breaker tripped, when it did and was not overridden."""

    @property
    def summary(self) -> Summary:
        counts = {a: 0 for a in Action}
        for change in self.changes:
            counts[change.action] += 1
        return Summary(
            create=counts[Action.CREATE],
            update=counts[Action.UPDATE],
            replace=counts[Action.REPLACE],
            destroy=counts[Action.DESTROY],
            forget=counts[Action.FORGET],
        )

    @property
    def victims(self) -> tuple[Victim, ...]:
        return tuple(
            Victim(address=c.address, handle=c.handle, action=c.action, blocked=c.blocked)
            for c in self.changes
            if c.destroys_data
        )

    @property
    def has_changes(self) -> bool:
        return self.summary.changes > 0

    @property
    def blocked(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.blocked)

    def to_json(self) -> dict[str, Any]:
        summary = self.summary
        return {
            "format": PLAN_FORMAT,
            "version": PLAN_VERSION,
            "toolVersion": self.tool_version,
            "lineage": self.lineage,
            "serial": self.serial,
            "inputDigest": self.input_digest,
            "source": dict(self.source) if self.source else None,
            "options": self.options.to_json(),
            "summary": {
                "create": summary.create,
                "update": summary.update,
                "replace": summary.replace,
                "destroy": summary.destroy,
                "forget": summary.forget,
            },
            "massDelete": self.mass_delete,
            "verdict": {
                "destroysData": bool(self.victims),
                "volumes": [
                    {
                        "address": str(v.address),
                        "handle": v.handle,
                        "action": v.action.value,
                        "blocked": v.blocked,
                    }
                    for v in self.victims
                ],
            },
            "changes": [c.to_json() for c in self.changes],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            changes=tuple(Change.from_json(c) for c in data["changes"]),
            options=Options.from_json(data.get("options") or {}),
            lineage=data.get("lineage"),
            serial=int(data.get("serial") or 0),
            input_digest=data.get("inputDigest") or "",
            source=data.get("source"),
            tool_version=data.get("toolVersion") or "",
            mass_delete=data.get("massDelete"),
        )
