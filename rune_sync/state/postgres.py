"""The shared state: named states in one PostgreSQL database, one transaction per step.

Owned here: :class:`PostgresState`, which plays every role of
:class:`~rune_sync.state.backend.StateBackend` for a ``postgresql://`` URL and a state
name. Opened through :func:`rune_sync.state.backend.open_backend`; psycopg is imported
only then (the optional extra ``rune-sync[postgres]``).

Layout: the schema ``rune_sync`` of the URL's database (see :mod:`rune_sync.state.schema`)
holds any number of states, one row each in ``states``; records carry their state's
name. Opening creates the tables with ``create`` (several commands may race: creation
and migrations run under a transaction-scoped advisory lock, in one transaction each,
so a database is at its old schema version or the new one, never in between); a schema
written by a newer rune-sync is refused unmodified.

Writes are refused, never merged, when the state moved on under this object: every
write checks in its own statement that the state's lineage and serial are still the
ones this object last read (at opening, on taking the lock, in :meth:`load_all`) or
wrote itself, and — while this object holds the lock — that its lock record is still
there (a ``force-unlock`` or a new holder removes it). The check locks the state's row
(``FOR SHARE``), so a concurrent serial bump is either seen or waits.

Threads borrow connections from a small pool (:mod:`rune_sync.state.pgpool`), so the
writes of a parallel apply overlap their round trips; a :meth:`transaction` block keeps
its thread on one connection and the other threads' writes out until it ends. The lock
lives on a connection of its own (:mod:`rune_sync.state.pglock`). Every psycopg
error becomes a ``StateError`` naming the state with its password masked.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from rune_sync import __version__
from rune_sync.errors import StateCorruptError, StateError
from rune_sync.spec.model import Address
from rune_sync.state import pgconn, schema
from rune_sync.state.backend import StateNotFoundError
from rune_sync.state.model import (
    EMPTY_PARAMETERS,
    CanonicalSpec,
    LockInfo,
    SourceInfo,
    StateMeta,
    StateRecord,
    format_timestamp,
    new_lineage,
    parse_timestamp,
)
from rune_sync.state.pglock import LOCK_CLASS, PgLock
from rune_sync.state.pgpool import Connections
from rune_sync.state.target import StateTarget

if TYPE_CHECKING:
    import psycopg

_T = TypeVar("_T")
_MIGRATION_KEY = -1
"""Second key of the transaction lock that serialises creating and migrating the schema
(state keys are ≥ 0, so it never collides with a state's lock)."""

_READ_COLUMNS = (
    "address, status, retained, handle, driver, spec, bound_claim, owner_service, attempts, "
    "failed_runs, failure_message, driver_parameters, created_at, updated_at, intent"
)
_SELECT = f"SELECT {_READ_COLUMNS} FROM rune_sync.records WHERE state = %(state)s"
_META = (
    "SELECT s.lineage, s.serial, s.source, s.created_by, "
    "(SELECT version FROM rune_sync.schema_info WHERE id = 1) "
    "FROM rune_sync.states AS s WHERE s.name = %(state)s"
)
_CASTS = {"retained": "::boolean", "attempts": "::bigint", "failed_runs": "::bigint"}
_GUARD = (
    "SELECT 1 FROM rune_sync.states WHERE name = %(state)s AND lineage = %(lineage)s "
    "AND serial = %(serial)s AND (%(lock_id)s::text IS NULL OR EXISTS ("
    "SELECT 1 FROM rune_sync.locks WHERE state = %(state)s AND id = %(lock_id)s::text))"
)
_PUT = (
    f"WITH guard AS ({_GUARD} FOR SHARE) "
    f"INSERT INTO rune_sync.records (state, {', '.join(schema.RECORD_COLUMNS)}) "
    "SELECT %(state)s, "
    + ", ".join(f"%({c})s{_CASTS.get(c, '::text')}" for c in schema.RECORD_COLUMNS)
    + " FROM guard ON CONFLICT (state, address) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in schema.RECORD_COLUMNS if c != "address")
)
_DELETE = (
    f"WITH guard AS ({_GUARD} FOR SHARE), gone AS ("
    "DELETE FROM rune_sync.records WHERE state = %(state)s AND address = %(address)s "
    "AND EXISTS (SELECT 1 FROM guard) RETURNING 1) "
    "SELECT (SELECT count(*) FROM guard), (SELECT count(*) FROM gone)"
)
_BUMP = (
    "UPDATE rune_sync.states AS s SET serial = s.serial + 1, "
    "source = COALESCE(%(source)s::text, s.source) "
    f"WHERE s.name = %(state)s AND EXISTS ({_GUARD}) "
    "RETURNING s.lineage, s.serial, s.source, s.created_by, "
    "(SELECT version FROM rune_sync.schema_info WHERE id = 1)"
)
_REPLACE_META = (
    "UPDATE rune_sync.states AS s SET lineage = %(new_lineage)s, serial = %(new_serial)s, "
    f"source = %(source)s WHERE s.name = %(state)s AND EXISTS ({_GUARD})"
)


class PostgresState:
    """One named rune-sync state in a PostgreSQL database. Build it with :meth:`open`."""

    def __init__(self, *, target: StateTarget, connection: psycopg.Connection[Any]) -> None:
        self.target = target
        self._pool = Connections(
            first=connection, connect=lambda: pgconn.connect(target), where=target.display
        )
        self._lock = PgLock(target=target, run=self._read)
        self._seen: StateMeta | None = None

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(cls, target: StateTarget, *, create: bool) -> PostgresState:
        """Open the state ``target.name`` at ``target.location``.

        Raises :class:`~rune_sync.state.backend.StateNotFoundError` when the database
        holds no such state and ``create`` is false (nothing is written then),
        ``StateError`` for an unreachable server, refused credentials, a missing
        database or a schema written by a newer rune-sync.
        """
        conn = pgconn.connect(target)
        try:
            with pgconn.pg_errors(target):
                _prepare(conn, target, create=create)
            state = cls(target=target, connection=conn)
            state._seen = state.meta()
        except BaseException:
            conn.close()
            raise
        return state

    @property
    def location(self) -> str:
        return self.target.display

    def close(self) -> None:
        """Release a lock this object holds and close the connection; idempotent."""
        self._lock.release()
        self._pool.close()

    def __enter__(self) -> PostgresState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- reading

    def meta(self) -> StateMeta:
        return self._read(self._meta)

    def get(self, address: Address) -> StateRecord | None:
        rows = self._read(
            lambda conn: conn.execute(
                f"{_SELECT} AND address = %(address)s",
                {"state": self.target.name, "address": str(address)},
            ).fetchall()
        )
        return self._record(rows[0]) if rows else None

    def records(self) -> Iterator[StateRecord]:
        rows = self._read(
            lambda conn: conn.execute(
                f"{_SELECT} ORDER BY address", {"state": self.target.name}
            ).fetchall()
        )
        return (self._record(row) for row in rows)

    def load_all(self) -> dict[Address, StateRecord]:
        """Every record and the meta in one statement (one snapshot); what it read is
        what the next writes check against."""

        def load(conn: psycopg.Connection[Any]) -> tuple[StateMeta, list[tuple[Any, ...]]]:
            # One statement is one snapshot: the meta travels with the records.
            rows = conn.execute(
                f"SELECT m.*, {', '.join('r.' + c for c in _READ_COLUMNS.split(', '))} "
                f"FROM ({_META}) AS m LEFT JOIN rune_sync.records AS r "
                "ON r.state = %(state)s ORDER BY r.address",
                {"state": self.target.name},
            ).fetchall()
            if not rows:
                raise self._gone()
            return self._meta_of(rows[0][:5]), [row[5:] for row in rows if row[5] is not None]

        meta, rows = self._read(load)
        records = {record.address: record for record in map(self._record, rows)}
        self._seen = meta
        return records

    # ----------------------------------------------------------------- writing

    def put(self, record: StateRecord) -> None:
        values = {**self._guard(), **_row(record)}

        def put(conn: psycopg.Connection[Any]) -> None:
            if conn.execute(_PUT, values).rowcount != 1:
                raise self._refused(conn)

        self._write(put)

    def delete(self, address: Address) -> bool:
        def delete(conn: psycopg.Connection[Any]) -> bool:
            values = {**self._guard(), "address": str(address)}
            row = conn.execute(_DELETE, values).fetchone()
            if row is None or not row[0]:
                raise self._refused(conn)
            return bool(row[1])

        return self._write(delete)

    def bump_serial(self, *, source: SourceInfo | None = None) -> StateMeta:
        text = None if source is None else json.dumps(source.to_json())

        def bump(conn: psycopg.Connection[Any]) -> StateMeta:
            row = conn.execute(_BUMP, {**self._guard(), "source": text}).fetchone()
            if row is None:
                raise self._refused(conn)
            self._seen = self._meta_of(row)
            return self._seen

        return self._write(bump)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[PostgresState]:
        seen = self._seen
        try:
            with (
                pgconn.pg_errors(self.target),
                self._pool.exclusive() as conn,
                conn.transaction(),
            ):
                yield self
        except BaseException:
            self._seen = seen  # what the rolled-back writes moved never happened
            raise

    def replace_all(
        self,
        *,
        lineage: str,
        serial: int,
        source: SourceInfo | None,
        records: Iterable[StateRecord],
    ) -> StateMeta:
        rows = [_row(record) for record in records]
        addresses = [str(row["address"]) for row in rows]
        if len(set(addresses)) != len(addresses):
            dupes = sorted({a for a in addresses if addresses.count(a) > 1})
            raise ValueError(f"duplicate addresses: {', '.join(dupes)}")
        if serial < 0:
            raise ValueError("serial must be ≥ 0")
        values = {
            **self._guard(),
            "new_lineage": lineage,
            "new_serial": serial,
            "source": "" if source is None else json.dumps(source.to_json()),
        }
        columns = ("state", *schema.RECORD_COLUMNS)

        def replace(conn: psycopg.Connection[Any]) -> StateMeta:
            with conn.transaction():
                if conn.execute(_REPLACE_META, values).rowcount != 1:
                    raise self._refused(conn)
                conn.execute("DELETE FROM rune_sync.records WHERE state = %s", (self.target.name,))
                with conn.cursor().copy(
                    f"COPY rune_sync.records ({', '.join(columns)}) FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row([self.target.name, *(row[c] for c in columns[1:])])
                self._seen = self._meta(conn)
                return self._seen

        return self._write(replace)

    # ----------------------------------------------------------------- locking

    @contextlib.contextmanager
    def lock(self, info: LockInfo, *, timeout: float = 0.0) -> Iterator[LockInfo]:
        self.acquire(info, timeout=timeout)
        try:
            yield info
        finally:
            self.release()

    def acquire(self, info: LockInfo, *, timeout: float = 0.0) -> None:
        """Take the lock, then read the meta again: a holder writes on what it read
        under the lock (a watcher that waited sees what the previous holder applied)."""
        self._lock.acquire(info, timeout=timeout)
        try:
            meta = self.meta()
        except BaseException:
            self._lock.release()
            raise
        self._seen = meta

    def release(self) -> None:
        self._lock.release()

    def lock_info(self) -> LockInfo | None:
        return self._lock.lock_info()

    def force_unlock(self, lock_id: str | None = None) -> LockInfo | None:
        """See :class:`rune_sync.state.pglock.PgLock` for what it does."""
        return self._lock.force_unlock(lock_id)

    # ----------------------------------------------------------------- internals

    def _read(self, query: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        with pgconn.pg_errors(self.target), self._pool.borrow() as conn:
            return query(conn)

    def _write(self, change: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        # Each statement commits by itself (autocommit) unless this thread is inside
        # transaction(), whose gate keeps the other threads' writes out until it ends.
        with pgconn.pg_errors(self.target), self._pool.writing(), self._pool.borrow() as conn:
            return change(conn)

    def _guard(self) -> dict[str, object]:
        seen = self._seen
        if seen is None:
            raise StateError(f"state {self.target} was not read before writing")
        held = self._lock.held
        return {
            "state": self.target.name,
            "lineage": seen.lineage,
            "serial": seen.serial,
            "lock_id": None if held is None else held.id,
        }

    def _meta(self, conn: psycopg.Connection[Any]) -> StateMeta:
        row = conn.execute(_META, {"state": self.target.name}).fetchone()
        if row is None:
            raise self._gone()
        return self._meta_of(row)

    def _meta_of(self, row: tuple[Any, ...] | Any) -> StateMeta:
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
            raise StateCorruptError(
                f"state {self.target}: its meta row is damaged ({exc})"
            ) from exc

    def _gone(self) -> StateError:
        return StateError(f"state {self.target} no longer exists in its database")

    def _refused(self, conn: psycopg.Connection[Any]) -> StateError:
        """Why a guarded write matched nothing: what changed since this object read."""
        seen = self._seen
        held = self._lock.held
        row = conn.execute(_META, {"state": self.target.name}).fetchone()
        if row is None or seen is None:
            why = "it was removed"
        else:
            now = self._meta_of(row)
            if now.lineage != seen.lineage:
                why = f"its lineage changed from {seen.lineage} to {now.lineage} (a push)"
            elif now.serial != seen.serial:
                why = (
                    f"its serial moved from {seen.serial} to {now.serial}: another rune-sync "
                    "command wrote it meanwhile"
                )
            elif held is not None:
                why = (
                    f"this command's lock (ID {held.id}) was broken by force-unlock or lost "
                    "with its connection, and is no longer recorded"
                )
            else:
                why = "it changed"
        return StateError(
            f"state {self.target} changed under this command: {why}. This write was refused "
            "and nothing of it was recorded; run the command again (it reads the state anew)"
        )

    def _record(self, row: tuple[Any, ...]) -> StateRecord:
        (address, status, retained, handle, driver, spec, bound, owner, attempts, failed_runs,
         message, parameters, created, updated, intent) = row  # fmt: skip
        try:
            return StateRecord(
                address=Address.parse(str(address)),
                spec=CanonicalSpec(str(spec)),
                driver=str(driver),
                status=str(status),
                retained=bool(retained),
                handle=handle,
                bound_claim=bound,
                owner_service=owner,
                attempts=int(attempts),
                failed_runs=int(failed_runs),
                failure_message=message,
                intent=intent,
                driver_parameters=(
                    EMPTY_PARAMETERS if parameters == "{}" else json.loads(str(parameters))
                ),
                created_at=parse_timestamp(str(created)),
                updated_at=parse_timestamp(str(updated)),
            )
        except ValueError as exc:
            raise StateCorruptError(
                f"state {self.target}: record {address} is damaged: {exc}"
            ) from exc


# --------------------------------------------------------------------------- rows


def _row(record: StateRecord) -> dict[str, object]:
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


# --------------------------------------------------------------------------- opening


def _prepare(conn: psycopg.Connection[Any], target: StateTarget, *, create: bool) -> None:
    """Bring the database's schema to :data:`schema.SCHEMA_VERSION` and make sure the
    state ``target.name`` exists (creating what is missing only with ``create``)."""
    version = _version(conn)
    if version is None and not create:
        raise StateNotFoundError(
            f"state {target} does not exist: the database holds no rune-sync state yet "
            "(plan or apply creates it), or --state names the wrong database"
        )
    if version is not None:
        schema.check_version(version, where=str(target))
    if version is None or version < schema.SCHEMA_VERSION:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_CLASS, _MIGRATION_KEY))
            current = _version(conn) or 0  # again, under the lock: another command may
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


def _version(conn: psycopg.Connection[Any]) -> int | None:
    """The schema version of the database, ``None`` when it holds no rune-sync tables."""
    row = conn.execute("SELECT to_regclass('rune_sync.schema_info') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return None
    found = conn.execute("SELECT version FROM rune_sync.schema_info WHERE id = 1").fetchone()
    if found is None:
        raise StateCorruptError(
            "the database's rune_sync schema has no version row; it was left unmodified"
        )
    return int(found[0])
