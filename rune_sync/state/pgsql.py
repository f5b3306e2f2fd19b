"""The SQL of the PostgreSQL state, and its rows as state values.

Owned here: the statements :mod:`rune_sync.state.postgres` runs on records and meta —
each write guarded in its own statement by :data:`GUARD` (the lineage and serial the
writer read, and its lock record while it holds the lock; ``FOR SHARE`` on the state's
row, so a concurrent serial bump is either seen or waited for) — and the conversions
between rows and :class:`~rune_sync.state.model.StateRecord` /
:class:`~rune_sync.state.model.StateMeta`. Columns follow
:data:`rune_sync.state.schema.RECORD_COLUMNS`; text is stored exactly as the SQLite
backend stores it (canonical JSON, the state's timestamp format), so both backends
export byte-identical documents.

Must not: run anything (no connections here).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rune_sync.errors import StateCorruptError
from rune_sync.state import schema
from rune_sync.state.model import (
    SourceInfo,
    StateMeta,
    StateRecord,
    format_timestamp,
)
from rune_sync.state.target import StateTarget

READ_COLUMNS = (
    "address, status, retained, handle, driver, spec, bound_claim, owner_service, attempts, "
    "failed_runs, failure_message, driver_parameters, created_at, updated_at, intent"
)
SELECT = f"SELECT {READ_COLUMNS} FROM rune_sync.records WHERE state = %(state)s"
META = (
    "SELECT s.lineage, s.serial, s.source, s.created_by, "
    "(SELECT version FROM rune_sync.schema_info WHERE id = 1) "
    "FROM rune_sync.states AS s WHERE s.name = %(state)s"
)
CASTS = {"retained": "::boolean", "attempts": "::bigint", "failed_runs": "::bigint"}
GUARD = (
    "SELECT 1 FROM rune_sync.states WHERE name = %(state)s AND lineage = %(lineage)s "
    "AND serial = %(serial)s AND (%(lock_id)s::text IS NULL OR EXISTS ("
    "SELECT 1 FROM rune_sync.locks WHERE state = %(state)s AND id = %(lock_id)s::text))"
)
PUT = (
    f"WITH guard AS ({GUARD} FOR SHARE) "
    f"INSERT INTO rune_sync.records (state, {', '.join(schema.RECORD_COLUMNS)}) "
    "SELECT %(state)s, "
    + ", ".join(f"%({c})s{CASTS.get(c, '::text')}" for c in schema.RECORD_COLUMNS)
    + " FROM guard ON CONFLICT (state, address) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in schema.RECORD_COLUMNS if c != "address")
)
DELETE = (
    f"WITH guard AS ({GUARD} FOR SHARE), gone AS ("
    "DELETE FROM rune_sync.records WHERE state = %(state)s AND address = %(address)s "
    "AND EXISTS (SELECT 1 FROM guard) RETURNING 1) "
    "SELECT (SELECT count(*) FROM guard), (SELECT count(*) FROM gone)"
)
BUMP = (
    "UPDATE rune_sync.states AS s SET serial = s.serial + 1, "
    "source = COALESCE(%(source)s::text, s.source) "
    f"WHERE s.name = %(state)s AND EXISTS ({GUARD}) "
    "RETURNING s.lineage, s.serial, s.source, s.created_by, "
    "(SELECT version FROM rune_sync.schema_info WHERE id = 1)"
)
REPLACE_META = (
    "UPDATE rune_sync.states AS s SET lineage = %(new_lineage)s, serial = %(new_serial)s, "
    f"source = %(source)s WHERE s.name = %(state)s AND EXISTS ({GUARD})"
)


def row_values(record: StateRecord) -> dict[str, object]:
    """``record`` as the values of :data:`schema.RECORD_COLUMNS`."""
    return {
        "address": str(record.address),
        "kind": record.kind.value,
        "status": record.status,
        "retained": record.retained,
        "handle": record.handle,
        "driver": record.driver,
        "spec": record.spec_json,
        "spec_digest": record.spec_digest,
        "bound_claim": record.bound_claim,
        "owner_service": record.owner_service,
        "attempts": record.attempts,
        "failed_runs": record.failed_runs,
        "failure_message": record.failure_message,
        "driver_parameters": json.dumps(
            dict(record.driver_parameters), sort_keys=True, ensure_ascii=False
        ),
        "created_at": format_timestamp(record.created_at),
        "updated_at": format_timestamp(record.updated_at),
        "intent": record.intent,
    }


def meta_of(row: Sequence[Any], *, where: StateTarget) -> StateMeta:
    """A meta row (:data:`META`'s columns) as a :class:`StateMeta`."""
    lineage, serial, source_text, created_by, version = row
    try:
        source = SourceInfo.from_json(json.loads(source_text)) if source_text else None
        return StateMeta(
            lineage=str(lineage),
            serial=int(serial),
            source=source,
            schema_version=int(version),
            created_by=str(created_by),
        )
    except (TypeError, ValueError) as exc:
        raise StateCorruptError(f"state {where}: its meta row is damaged ({exc})") from exc


def record_of(row: Sequence[Any], *, where: StateTarget) -> StateRecord:
    """A row of :data:`READ_COLUMNS` as a :class:`StateRecord`."""
    return schema.record_from_row(tuple(row), where=str(where))
