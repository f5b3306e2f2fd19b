"""Creating and migrating the PostgreSQL state's tables, and creating named states.

Owned here: :func:`prepare`, which every opening runs: it creates the ``rune_sync``
schema and its tables when asked to (``create``), migrates a database written by an
older rune-sync forward, refuses one written by a newer rune-sync unmodified, and
creates the named state. Creating and migrating run in one transaction under a
transaction-scoped advisory lock, so several commands opening one database at once do
the work once, and a database is at its old version or the new one, never in between.
The SQL of each version is in :data:`rune_sync.state.schema.MIGRATIONS` (``postgres``).

Called by :meth:`rune_sync.state.postgres.PostgresState.open` only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rune_sync import __version__
from rune_sync.errors import StateCorruptError
from rune_sync.state import schema
from rune_sync.state.backend import StateNotFoundError
from rune_sync.state.model import format_timestamp, new_lineage
from rune_sync.state.pglock import LOCK_CLASS
from rune_sync.state.target import StateTarget

if TYPE_CHECKING:
    import psycopg

MIGRATION_KEY = -1
"""Second key of the transaction lock that serialises creating and migrating the schema
(state keys are ≥ 0, so it never collides with a state's lock)."""


def prepare(conn: psycopg.Connection[Any], target: StateTarget, *, create: bool) -> None:
    """Bring the database's schema to :data:`schema.SCHEMA_VERSION` and make sure the
    state ``target.name`` exists (creating what is missing only with ``create``)."""
    found = schema_version(conn)
    if found is None and not create:
        raise StateNotFoundError(
            f"state {target} does not exist: the database holds no rune-sync state yet "
            "(plan or apply creates it), or --state names the wrong database"
        )
    if found is not None:
        schema.check_version(found, where=str(target))
    if found is None or found < schema.SCHEMA_VERSION:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, MIGRATION_KEY))
            current = schema_version(conn) or 0  # again, under the lock: another command may
            if current:  # have created or migrated it meanwhile
                schema.check_version(current, where=str(target))
            for migration in schema.pending(current):
                for statement in migration.postgres:
                    conn.execute(statement.encode())
            conn.execute(
                "INSERT INTO rune_sync.schema_info (id, version) VALUES (1, %s) "
                "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                (schema.SCHEMA_VERSION,),
            )
    exists = conn.execute(
        "SELECT 1 FROM rune_sync.states WHERE name = %s", (target.name,)
    ).fetchone()
    if exists is not None:
        return
    if not create:
        names = [
            str(row[0])
            for row in conn.execute("SELECT name FROM rune_sync.states ORDER BY name LIMIT 10")
        ]
        known = f" (it holds: {', '.join(names)})" if names else ""
        raise StateNotFoundError(
            f"state {target} does not exist{known}: plan or apply creates it, or "
            "--state-name names the wrong state"
        )
    conn.execute(
        "INSERT INTO rune_sync.states (name, lineage, serial, source, created_by, created_at) "
        "VALUES (%s, %s, 0, '', %s, %s) ON CONFLICT (name) DO NOTHING",
        (
            target.name,
            new_lineage(),
            f"rune-sync {__version__}",
            format_timestamp(datetime.now(UTC)),
        ),
    )


def schema_version(conn: psycopg.Connection[Any]) -> int | None:
    """The schema version of the database, ``None`` when it holds no rune-sync tables."""
    # pg_class, not to_regclass: under concurrent creators to_regclass can answer from a
    # catalog snapshot taken before the migration lock, and the table then "already exists".
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'rune_sync' AND c.relname = 'schema_info')"
    ).fetchone()
    if row is None or not row[0]:
        return None
    found = conn.execute("SELECT version FROM rune_sync.schema_info WHERE id = 1").fetchone()
    if found is None:
        raise StateCorruptError(
            "the database's rune_sync schema has no version row; it was left unmodified"
        )
    return int(found[0])
