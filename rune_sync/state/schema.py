"""The storage schema of the state, its version, and the forward migrations to it.

Owned here: :data:`SCHEMA_VERSION`, the ordered :data:`MIGRATIONS` — one list of
versions for every backend, each step carrying its SQL per backend (``statements`` for
SQLite, ``postgres`` for PostgreSQL) — the record column list both backends read and
write, the names of the ``meta`` keys, and :func:`check_version`, which every backend
calls before it writes anything. Backends run :func:`pending` steps inside one
transaction and then record the new version; this module runs no SQL itself.

A state whose schema is *newer* than this code knows is refused, never modified: an
older rune-sync cannot know what a newer one stored.

Migrations are append-only: a released one is never edited, so a state created by any
older rune-sync reaches the same tables as a new one. Tables (version 2)::

    meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)
        lineage, serial, source (JSON or ""), schema_version, created_by, created_at
    records(address TEXT PRIMARY KEY, kind, status, retained, handle, driver,
            spec (canonical JSON), spec_digest, bound_claim, owner_service,
            attempts, failed_runs, failure_message,
            driver_parameters (JSON object), created_at, updated_at,
            intent (the driver operation in flight, or NULL; added by version 2))

PostgreSQL keeps several named states in one database, in the schema ``rune_sync``; the
version is per database (every state in it shares the tables)::

    rune_sync.schema_info(id = 1, version)
    rune_sync.states(name PRIMARY KEY, lineage, serial, source, created_by, created_at)
    rune_sync.records(state → states.name, address COLLATE "C", …the columns above…,
                      PRIMARY KEY (state, address))
    rune_sync.locks(state PRIMARY KEY, id, user_name, host, pid, command, since,
                    backend_pid: the server session holding the advisory lock)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from rune_sync.errors import StateCorruptError, StateError
from rune_sync.spec.model import Address
from rune_sync.state.model import (
    EMPTY_PARAMETERS,
    CanonicalSpec,
    StateRecord,
    parse_timestamp,
)

META_LINEAGE = "lineage"
META_SERIAL = "serial"
META_SOURCE = "source"
META_SCHEMA_VERSION = "schema_version"
META_CREATED_BY = "created_by"
META_CREATED_AT = "created_at"

TABLES = frozenset({"meta", "records"})
"""The tables of a rune-sync state; a database holding anything else is not one."""

RECORD_COLUMNS = (
    "address",
    "kind",
    "status",
    "retained",
    "handle",
    "driver",
    "spec",
    "spec_digest",
    "bound_claim",
    "owner_service",
    "attempts",
    "failed_runs",
    "failure_message",
    "driver_parameters",
    "created_at",
    "updated_at",
    "intent",
)
"""The columns of ``records`` in the order backends read and write them (columns added
by later migrations come last, where ``ALTER TABLE … ADD COLUMN`` puts them)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """The SQL that takes a state from ``version - 1`` to ``version``."""

    version: int
    description: str
    statements: tuple[str, ...]
    """SQLite."""
    postgres: tuple[str, ...]
    """PostgreSQL (``rune_sync`` schema; the version row is written by the backend)."""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        description="meta key/value table and one row per record",
        statements=(
            """
            CREATE TABLE IF NOT EXISTS meta (
                key TEXT PRIMARY KEY,
                value TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS records (
                address TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                status TEXT NOT NULL,
                retained INTEGER NOT NULL DEFAULT 0 CHECK (retained IN (0, 1)),
                handle TEXT,
                driver TEXT NOT NULL,
                spec TEXT NOT NULL,
                spec_digest TEXT NOT NULL,
                bound_claim TEXT,
                owner_service TEXT,
                attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                failed_runs INTEGER NOT NULL DEFAULT 0 CHECK (failed_runs >= 0),
                failure_message TEXT,
                driver_parameters TEXT NOT NULL,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )
            """,
            "CREATE INDEX IF NOT EXISTS records_kind_status ON records (kind, status)",
        ),
        postgres=(
            "CREATE SCHEMA IF NOT EXISTS rune_sync",
            """
            CREATE TABLE rune_sync.schema_info (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                version INTEGER NOT NULL
            )
            """,
            """
            CREATE TABLE rune_sync.states (
                name TEXT COLLATE "C" PRIMARY KEY,
                lineage TEXT NOT NULL,
                serial BIGINT NOT NULL CHECK (serial >= 0),
                source TEXT NOT NULL DEFAULT '',
                created_by TEXT NOT NULL,
                created_at TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE rune_sync.records (
                state TEXT COLLATE "C" NOT NULL
                    REFERENCES rune_sync.states (name) ON DELETE CASCADE,
                address TEXT COLLATE "C" NOT NULL,
                kind TEXT NOT NULL,
                status TEXT NOT NULL,
                retained BOOLEAN NOT NULL DEFAULT FALSE,
                handle TEXT,
                driver TEXT NOT NULL,
                spec TEXT NOT NULL,
                spec_digest TEXT NOT NULL,
                bound_claim TEXT,
                owner_service TEXT,
                attempts BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
                failed_runs BIGINT NOT NULL DEFAULT 0 CHECK (failed_runs >= 0),
                failure_message TEXT,
                driver_parameters TEXT NOT NULL,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (state, address)
            )
            """,
            "CREATE INDEX records_kind_status ON rune_sync.records (state, kind, status)",
            """
            CREATE TABLE rune_sync.locks (
                state TEXT COLLATE "C" PRIMARY KEY,
                id TEXT NOT NULL,
                user_name TEXT NOT NULL,
                host TEXT NOT NULL,
                pid INTEGER NOT NULL,
                command TEXT NOT NULL,
                since TEXT NOT NULL,
                backend_pid INTEGER NOT NULL
            )
            """,
        ),
    ),
    Migration(
        version=2,
        description="records.intent: the operation in flight",
        statements=("ALTER TABLE records ADD COLUMN intent TEXT",),
        postgres=("ALTER TABLE rune_sync.records ADD COLUMN intent TEXT",),
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version
"""The newest schema this code reads and writes."""


def pending(current: int) -> tuple[Migration, ...]:
    """The migrations to run, in order, on a state at version ``current`` (0: empty)."""
    return tuple(m for m in MIGRATIONS if m.version > current)


def check_version(found: int, *, where: str) -> None:
    """Refuse a schema version this code cannot handle.

    Raises :class:`~rune_sync.errors.StateError` for a version newer than
    :data:`SCHEMA_VERSION` (the state was written by a newer rune-sync) or below 1.
    """
    if found > SCHEMA_VERSION:
        raise StateError(
            f"state {where} was written by a newer rune-sync (schema version {found}; this "
            f"rune-sync knows up to {SCHEMA_VERSION}): upgrade rune-sync to use it. "
            "The state was not modified."
        )
    if found < 1:
        raise StateError(f"state {where} has an invalid schema version {found}")


def record_from_row(row: tuple[object, ...], *, where: str) -> StateRecord:
    """A row of the record columns (in the order both backends select them: address,
    status, retained, handle, driver, spec, bound_claim, owner_service, attempts,
    failed_runs, failure_message, driver_parameters, created_at, updated_at, intent) as
    a :class:`StateRecord`; ``StateCorruptError`` naming ``where`` for a damaged one."""
    (address, status, retained, handle, driver, spec, bound, owner, attempts, failed_runs,
     message, parameters, created, updated, intent) = row  # fmt: skip
    try:
        return StateRecord(
            address=Address.parse(str(address)),
            spec=CanonicalSpec(str(spec)),
            driver=str(driver),
            status=str(status),
            retained=bool(retained),
            handle=_optional_text(handle),
            bound_claim=_optional_text(bound),
            owner_service=_optional_text(owner),
            attempts=_count(attempts),
            failed_runs=_count(failed_runs),
            failure_message=_optional_text(message),
            intent=_optional_text(intent),
            driver_parameters=(
                EMPTY_PARAMETERS if parameters == "{}" else json.loads(str(parameters))
            ),
            created_at=parse_timestamp(str(created)),
            updated_at=parse_timestamp(str(updated)),
        )
    except ValueError as exc:
        raise StateCorruptError(f"state {where}: record {address} is damaged: {exc}") from exc


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def _count(value: object) -> int:
    if type(value) is not int:
        raise ValueError(f"{value!r} is not a whole number")
    return value


def require_unique_addresses(addresses: Iterable[str]) -> None:
    """``ValueError`` naming every address given more than once (``replace_all``)."""
    dupes = sorted(a for a, n in Counter(addresses).items() if n > 1)
    if dupes:
        raise ValueError(f"duplicate addresses: {', '.join(dupes)}")
