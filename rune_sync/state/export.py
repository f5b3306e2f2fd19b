"""The state as one versioned JSON document: ``state pull`` and ``state push``.

Owned here: the document's shape (``schemas/state-export.schema.json``, described by the
TypedDicts below), :func:`pull` (a reader → a document), :func:`parse` (any JSON value →
a checked :class:`StateSnapshot`, or :class:`InvalidStateDocument` listing every
problem) and :func:`push` (a checked document → a backend, in one transaction).
Called by the ``state`` commands and by migration between backends; it works through the
role protocols only, so every backend gets the same checks.

This is the one module of the state layer that sees raw JSON; jsonschema errors never
leave it, and messages quote field names and places, never field values (a document
may have been edited by hand and could hold anything).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal, Protocol, TypedDict

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaViolation

from rune_sync.errors import StateError
from rune_sync.spec.model import Address
from rune_sync.state.backend import StateImporter, StateReader
from rune_sync.state.model import (
    SourceInfo,
    StateMeta,
    StateRecord,
    format_timestamp,
    parse_timestamp,
    thaw_json,
)

FORMAT = "rune-sync-state"
VERSION = 2
"""The version :func:`pull` writes. Version 2 added each record's ``intent``; the schema
refuses unknown fields, so a rune-sync that knows only version 1 refuses a version 2
document by its version instead of by a field it does not know. :func:`parse` reads
both (see :data:`READABLE_VERSIONS`)."""
READABLE_VERSIONS = (1, 2)
"""The versions :func:`parse` accepts; a version 1 record has no ``intent`` (``None``)."""
SCHEMA_FILE = "state-export.schema.json"
_SHOWN_PROBLEMS = 20


class SourceJson(TypedDict):
    kind: str  # "directory" or "git"
    url: str
    commit: str | None
    digest: str


class RecordJson(TypedDict):
    address: str
    kind: str
    status: str
    retained: bool
    driver: str
    handle: str | None
    spec: dict[str, Any]
    specDigest: str
    boundClaim: str | None
    ownerService: str | None
    attempts: int
    failedRuns: int
    failureMessage: str | None
    intent: str | None  # absent from version 1 documents: read as None
    driverParameters: dict[str, str]
    createdAt: str
    updatedAt: str


class StateDocument(TypedDict):
    format: Literal["rune-sync-state"]
    version: int
    lineage: str
    serial: int
    source: SourceJson | None
    records: list[RecordJson]


class InvalidStateDocument(StateError, ValueError):
    """The document is not a valid state export; ``problems`` lists every reason."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        shown = list(self.problems[:_SHOWN_PROBLEMS])
        if len(self.problems) > _SHOWN_PROBLEMS:
            shown.append(f"… and {len(self.problems) - _SHOWN_PROBLEMS} more")
        super().__init__("not a valid rune-sync state document:\n  " + "\n  ".join(shown))


class PushRefusedError(StateError):
    """The document would replace a state it does not descend from; ``--force`` overrides."""


class PushTarget(StateReader, StateImporter, Protocol):
    """What :func:`push` needs of a backend."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StateSnapshot:
    """A checked state document: what :func:`parse` returns and :func:`push` stores."""

    lineage: str
    serial: int
    source: SourceInfo | None
    records: tuple[StateRecord, ...]


# --------------------------------------------------------------------------- out


def record_to_json(record: StateRecord) -> RecordJson:
    spec = thaw_json(record.spec)
    assert isinstance(spec, dict)  # a frozen JSON object thaws to a dict
    return {
        "address": str(record.address),
        "kind": record.kind.value,
        "status": record.status,
        "retained": record.retained,
        "driver": record.driver,
        "handle": record.handle,
        "spec": spec,
        "specDigest": record.spec_digest,
        "boundClaim": record.bound_claim,
        "ownerService": record.owner_service,
        "attempts": record.attempts,
        "failedRuns": record.failed_runs,
        "failureMessage": record.failure_message,
        "intent": record.intent,
        "driverParameters": dict(record.driver_parameters),
        "createdAt": format_timestamp(record.created_at),
        "updatedAt": format_timestamp(record.updated_at),
    }


def _source_json(source: SourceInfo | None) -> SourceJson | None:
    if source is None:
        return None
    return {
        "kind": source.kind.value,
        "url": source.url,
        "commit": source.commit,
        "digest": source.digest,
    }


def to_document(
    *, lineage: str, serial: int, source: SourceInfo | None, records: Iterable[StateRecord]
) -> StateDocument:
    """The export document of a state's parts; records are ordered by address text."""
    ordered = sorted(records, key=lambda r: str(r.address))
    return {
        "format": "rune-sync-state",
        "version": VERSION,
        "lineage": lineage,
        "serial": serial,
        "source": _source_json(source),
        "records": [record_to_json(r) for r in ordered],
    }


def pull(reader: StateReader) -> StateDocument:
    """The whole state as one document.

    Meta and records are separate reads; run it under the state's lock when it must
    match an apply boundary exactly.
    """
    meta = reader.meta()
    return to_document(
        lineage=meta.lineage, serial=meta.serial, source=meta.source, records=reader.records()
    )


def dumps(document: StateDocument) -> str:
    """The document as text: indented, keys in a stable order, ending with a newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- in


def loads(text: str | bytes) -> object:
    """Parse JSON text; raises :class:`InvalidStateDocument` saying where it broke."""
    try:
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise InvalidStateDocument([f"the text is not UTF-8 ({exc.reason})"]) from exc
    except json.JSONDecodeError as exc:
        raise InvalidStateDocument(
            [f"not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"]
        ) from exc


@cache
def _validator() -> Draft202012Validator:
    text = (resources.files("rune_sync") / "schemas" / SCHEMA_FILE).read_text("utf-8")
    return Draft202012Validator(json.loads(text))


def schema() -> Mapping[str, object]:
    """The document's JSON Schema (Draft 2020-12), as shipped in ``schemas/``."""
    loaded = _validator().schema
    assert isinstance(loaded, Mapping)  # the shipped schema is an object
    return loaded


def _place(error: SchemaViolation) -> str:
    return "/" + "/".join(str(p) for p in error.absolute_path)


def _progress(error: SchemaViolation) -> tuple[bool, int]:
    return error.validator != "type", len(error.absolute_path)


def _describe(error: SchemaViolation) -> str:
    if error.context:  # anyOf/oneOf: the branch that got furthest says the most
        return _describe(max(error.context, key=_progress))
    # Messages of these keywords name keys only; others would quote the value.
    if error.validator in ("required", "additionalProperties"):
        return f"{_place(error)}: {error.message}"
    expected = json.dumps(error.validator_value)
    if len(expected) > 120:
        expected = expected[:117] + "..."
    return f"{_place(error)}: does not match the schema ({error.validator} {expected})"


def parse(document: object) -> StateSnapshot:
    """Check ``document`` against the schema, then its meaning, and build the snapshot.

    Every schema problem is reported together; the semantic checks run once the schema
    passes. Semantic checks: the lineage is a UUID, each address parses and starts with its
    kind, each record is a valid :class:`StateRecord`, each ``specDigest`` matches its
    spec, no address appears twice. Raises :class:`InvalidStateDocument` with every
    problem found. Documents of every version in :data:`READABLE_VERSIONS` are accepted;
    a record without ``intent`` (version 1) has nothing in flight.
    """
    violations = sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    if violations:
        raise InvalidStateDocument(_describe(e) for e in violations)
    assert isinstance(document, dict)  # the schema requires an object
    problems: list[str] = []
    try:
        uuid.UUID(document["lineage"])
    except ValueError:
        problems.append("/lineage: not a UUID")
    source = None
    if document["source"] is not None:
        try:
            source = SourceInfo.from_json(document["source"])
        except ValueError as exc:
            problems.append(f"/source: {exc}")
    records: list[StateRecord] = []
    seen: set[Address] = set()
    for i, raw in enumerate(document["records"]):
        record = _record(raw, where=f"/records/{i}", problems=problems)
        if record is None:
            continue
        if record.address in seen:
            problems.append(f"/records/{i}: {record.address} appears more than once")
        seen.add(record.address)
        records.append(record)
    if problems:
        raise InvalidStateDocument(problems)
    return StateSnapshot(
        lineage=document["lineage"],
        serial=document["serial"],
        source=source,
        records=tuple(records),
    )


def _record(raw: Mapping[str, Any], *, where: str, problems: list[str]) -> StateRecord | None:
    try:
        address = Address.parse(raw["address"])
    except ValueError as exc:
        problems.append(f"{where}/address: {exc}")
        return None
    if address.kind.value != raw["kind"]:
        problems.append(f"{where}/kind: {raw['kind']} does not match the address {address}")
        return None
    try:
        record = StateRecord(
            address=address,
            spec=raw["spec"],
            driver=raw["driver"],
            status=raw["status"],
            retained=raw["retained"],
            handle=raw["handle"],
            bound_claim=raw["boundClaim"],
            owner_service=raw["ownerService"],
            attempts=raw["attempts"],
            failed_runs=raw["failedRuns"],
            failure_message=raw["failureMessage"],
            intent=raw.get("intent"),  # absent from older documents: nothing in flight
            driver_parameters=raw["driverParameters"],
            created_at=parse_timestamp(raw["createdAt"]),
            updated_at=parse_timestamp(raw["updatedAt"]),
        )
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None
    if record.spec_digest != raw["specDigest"]:
        problems.append(
            f"{where}/specDigest: does not match the spec of {address} (the spec was edited?); "
            f"its digest is {record.spec_digest}"
        )
        return None
    return record


def push(target: PushTarget, document: object, *, force: bool = False) -> StateMeta:
    """Replace the state behind ``target`` with ``document``, in one transaction.

    Refused (:class:`PushRefusedError`) unless ``force``: a document of another lineage
    (except into a new, empty state, which adopts the document's lineage), one with a
    lower serial than the state, and one with the same serial but other contents. The
    serial then moves on past both the state's and the document's. Invalid documents
    raise :class:`InvalidStateDocument` whatever ``force`` says. Callers hold the lock.
    """
    snapshot = parse(document)
    current = target.meta()
    existing: dict[Address, StateRecord] | None = None
    if snapshot.lineage != current.lineage:
        existing = target.load_all()
        is_new = current.serial == 0 and not existing
        if not (force or is_new):
            raise PushRefusedError(
                f"state {target.location} has lineage {current.lineage}, the document "
                f"{snapshot.lineage}: it comes from another state. Push with --force to "
                "replace this state with it"
            )
    elif snapshot.serial < current.serial and not force:
        raise PushRefusedError(
            f"state {target.location} is at serial {current.serial}, newer than the "
            f"document's {snapshot.serial}: it changed since the document was pulled. Pull "
            "again, or push with --force to go back to the document"
        )
    elif snapshot.serial == current.serial and not force:
        existing = target.load_all()
        same = existing == {r.address: r for r in snapshot.records}
        if not same or snapshot.source != current.source:
            raise PushRefusedError(
                f"state {target.location} is at serial {current.serial} like the document, "
                "but their contents differ: the document was not pulled from this state's "
                "current version. Pull again, or push with --force"
            )
    return target.replace_all(
        lineage=snapshot.lineage,
        serial=max(current.serial, snapshot.serial) + 1,
        source=snapshot.source,
        records=snapshot.records,
    )
