"""Helpers shared by the plan tests (and the expand and ``plan`` CLI tests).

Sources are real directories validated with the real rules and the installed drivers'
declarations; records are real :class:`StateRecord` values; states are real SQLite
files. Nothing here mocks rune-sync's own code.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rune_sync.cli import wiring
from rune_sync.plan.model import Action, Change, Plan
from rune_sync.spec.expand import Desired, DesiredSet, desired_set
from rune_sync.spec.model import Address, Kind, SpecSet, StorageSettings
from rune_sync.spec.validate import Validated, validate_directory
from rune_sync.state import export, open_backend
from rune_sync.state.model import StateRecord

NOW = datetime(2025, 11, 21, 12, 0, tzinfo=UTC)
LINEAGE = "0b7c3a52-1d4e-4f7a-9a52-4f3b2b1c0d9e"
VOLUME_ROOT = "/var/lib/rune/volumes"
CAPABILITIES, PARAMETER_RULES = wiring.driver_declarations()


def y(text: str) -> str:
    """Dedented YAML."""
    return textwrap.dedent(text).lstrip("\n")


def write_source(root: Path, files: Mapping[str, str]) -> Path:
    """Write ``{relative path: YAML}`` below ``root`` (created) and return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(y(text), encoding="utf-8")
    return root


def validate(root: Path) -> Validated:
    """The source at ``root`` validated with the installed drivers; it must be clean."""
    result = validate_directory(
        root, drivers=CAPABILITIES, parameter_rules=PARAMETER_RULES, cwd=root
    )
    assert result.ok, [str(d) for d in result.diagnostics]
    return result


def desired_from(root: Path, files: Mapping[str, str]) -> DesiredSet:
    """Write a source, validate it and expand it: the desired state of ``files``."""
    result = validate(write_source(root, files))
    return desired_set(result.specs, result.runefile.storage)


def expand(specs: SpecSet, settings: StorageSettings | None = None) -> DesiredSet:
    return desired_set(specs, settings or StorageSettings())


def handle_of(address: Address) -> str | None:
    if address.kind is Kind.VOLUME:
        return f"{VOLUME_ROOT}/{address.namespace}/{address.name}"
    if address.kind is Kind.SNAPSHOT:
        return f"{VOLUME_ROOT}/.snapshots/{address.namespace}/{address.name}"
    return None


def desired_handle(want: Desired) -> str | None:
    """The handle a driver returns for ``want``: local-host's is its host path."""
    if want.driver == "local-host":
        return want.parameters.get("hostPath")
    return handle_of(want.address)


def default_status(want: Desired) -> str:
    if want.address.kind is Kind.SNAPSHOT:
        return "Ready"
    if want.address.kind is Kind.VOLUME and want.bound_claim:
        return "Bound"
    return "Available"


def record_for(want: Desired, **changes: Any) -> StateRecord:
    """The record apply would have written for ``want`` (fields overridable)."""
    fields: dict[str, Any] = {
        "address": want.address,
        "spec": dict(want.spec),
        "driver": want.driver,
        "status": default_status(want),
        "handle": desired_handle(want),
        "bound_claim": want.bound_claim,
        "owner_service": want.owner_service,
        "driver_parameters": dict(want.parameters),
        "created_at": NOW,
        "updated_at": NOW,
    }
    fields.update(changes)
    return StateRecord(**fields)


def records_for(desired: DesiredSet) -> dict[Address, StateRecord]:
    """The state after a clean apply of ``desired``."""
    return {a: record_for(w) for a, w in desired.resources.items()}


def by_address(records: Iterable[StateRecord]) -> dict[Address, StateRecord]:
    return {r.address: r for r in records}


def simulate_apply(
    records: Mapping[Address, StateRecord], plan: Plan
) -> dict[Address, StateRecord]:
    """What the state holds after every change of ``plan`` succeeded.

    Create/update/replace become a record whose spec is the change's ``after`` (a
    release keeps its spec), with the change's status and binding; forget keeps a
    retained record; destroy drops the record; no-ops leave it as it is.
    """
    out = dict(records)
    for change in plan.changes:
        have = out.get(change.address)
        match change.action:
            case Action.CREATE | Action.UPDATE | Action.REPLACE:
                out[change.address] = _applied(change, have)
            case Action.FORGET:
                assert have is not None
                out[change.address] = have.retain(now=NOW)
            case Action.DESTROY:
                out.pop(change.address)
            case Action.NOOP:
                pass
    return out


def _applied(change: Change, have: StateRecord | None) -> StateRecord:
    spec = change.after if change.after is not None else (have.spec if have else {})
    assert change.status is not None, change
    return StateRecord(
        address=change.address,
        spec=dict(spec),
        driver=change.driver or (have.driver if have else ""),
        status=change.status,
        handle=change.handle or handle_of(change.address),
        bound_claim=change.bound_claim,
        owner_service=change.owner_service,
        driver_parameters=dict(change.parameters),
        created_at=NOW,
        updated_at=NOW,
    )


def write_state(
    path: Path, records: Iterable[StateRecord], *, lineage: str = LINEAGE, serial: int = 4
) -> Path:
    """A fresh SQLite state at ``path`` holding ``records`` (through ``state push``)."""
    document = export.to_document(lineage=lineage, serial=serial, source=None, records=records)
    with open_backend(path, create=True) as backend:
        export.push(backend, export.loads(export.dumps(document)))
    return path


def change_at(plan: Plan, address: str) -> Change:
    found = [c for c in plan.changes if str(c.address) == address]
    assert len(found) == 1, [str(c.address) for c in plan.changes]
    return found[0]


def actions(plan: Plan) -> dict[str, str]:
    """``{address: action}`` of every change, for whole-plan assertions."""
    return {str(c.address): c.action.value for c in plan.changes}
