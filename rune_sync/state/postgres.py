"""The shared state: named states in one PostgreSQL database, one transaction per step.

Owned here: :class:`PostgresState`, which plays every role of
:class:`~rune_sync.state.backend.StateBackend` for a ``postgresql://`` URL and a state
name. Opened through :func:`rune_sync.state.backend.open_backend`; psycopg is imported
only then (the optional extra ``rune-sync[postgres]``).

Layout: the schema ``rune_sync`` of the URL's database (see :mod:`rune_sync.state.schema`)
holds any number of states, one row each in ``states``; records carry their state's
name. Opening creates or migrates the tables (:mod:`rune_sync.state.pgschema`); a
schema written by a newer rune-sync is refused unmodified. The statements and the row
conversions are in :mod:`rune_sync.state.pgsql`.

Writes are refused, never merged, when the state moved on under this object: every
write checks in its own statement that the state's lineage and serial are still the
ones this object last read (at opening, on taking the lock, in :meth:`load_all`) or
wrote itself, and — while this object holds the lock — that its lock record is still
there (a ``force-unlock`` or a new holder removes it). A refused write raises a
``StateError`` saying what changed; nothing of it is recorded.

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
from typing import TYPE_CHECKING, Any, TypeVar

from rune_sync.errors import StateError
from rune_sync.spec.model import Address
from rune_sync.state import pgconn, pgschema, schema
from rune_sync.state import pgsql as sql
from rune_sync.state.model import (
    LockInfo,
    SourceInfo,
    StateMeta,
    StateRecord,
)
from rune_sync.state.pglock import PgLock
from rune_sync.state.pgpool import Connections
from rune_sync.state.target import StateTarget

if TYPE_CHECKING:
    import psycopg

_T = TypeVar("_T")


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
                pgschema.prepare(conn, target, create=create)
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
                f"{sql.SELECT} AND address = %(address)s",
                {"state": self.target.name, "address": str(address)},
            ).fetchall()
        )
        return sql.record_of(rows[0], where=self.target) if rows else None

    def records(self) -> Iterator[StateRecord]:
        rows = self._read(
            lambda conn: conn.execute(
                f"{sql.SELECT} ORDER BY address", {"state": self.target.name}
            ).fetchall()
        )
        return (sql.record_of(row, where=self.target) for row in rows)

    def load_all(self) -> dict[Address, StateRecord]:
        """Every record and the meta in one statement (one snapshot); what it read is
        what the next writes check against."""

        def load(conn: psycopg.Connection[Any]) -> tuple[StateMeta, list[tuple[Any, ...]]]:
            # One statement is one snapshot: the meta travels with the records.
            rows = conn.execute(
                f"SELECT m.*, {', '.join('r.' + c for c in sql.READ_COLUMNS.split(', '))} "
                f"FROM ({sql.META}) AS m LEFT JOIN rune_sync.records AS r "
                "ON r.state = %(state)s ORDER BY r.address",
                {"state": self.target.name},
            ).fetchall()
            if not rows:
                raise self._gone()
            return sql.meta_of(rows[0][:5], where=self.target), [
                row[5:] for row in rows if row[5] is not None
            ]

        meta, rows = self._read(load)
        records = {}
        for row in rows:
            record = sql.record_of(row, where=self.target)
            records[record.address] = record
        self._seen = meta
        return records

    # ----------------------------------------------------------------- writing

    def put(self, record: StateRecord) -> None:
        values = {**self._guard(), **sql.row_values(record)}

        def put(conn: psycopg.Connection[Any]) -> None:
            if conn.execute(sql.PUT, values).rowcount != 1:
                raise self._refused(conn)

        self._write(put)

    def delete(self, address: Address) -> bool:
        def delete(conn: psycopg.Connection[Any]) -> bool:
            values = {**self._guard(), "address": str(address)}
            row = conn.execute(sql.DELETE, values).fetchone()
            if row is None or not row[0]:
                raise self._refused(conn)
            return bool(row[1])

        return self._write(delete)

    def bump_serial(self, *, source: SourceInfo | None = None) -> StateMeta:
        text = None if source is None else json.dumps(source.to_json())

        def bump(conn: psycopg.Connection[Any]) -> StateMeta:
            row = conn.execute(sql.BUMP, {**self._guard(), "source": text}).fetchone()
            if row is None:
                raise self._refused(conn)
            self._seen = sql.meta_of(row, where=self.target)
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
        rows = [sql.row_values(record) for record in records]
        schema.require_unique_addresses(str(row["address"]) for row in rows)
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
                if conn.execute(sql.REPLACE_META, values).rowcount != 1:
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
        row = conn.execute(sql.META, {"state": self.target.name}).fetchone()
        if row is None:
            raise self._gone()
        return sql.meta_of(row, where=self.target)

    def _gone(self) -> StateError:
        return StateError(f"state {self.target} no longer exists in its database")

    def _refused(self, conn: psycopg.Connection[Any]) -> StateError:
        """Why a guarded write matched nothing: what changed since this object read."""
        seen = self._seen
        held = self._lock.held
        row = conn.execute(sql.META, {"state": self.target.name}).fetchone()
        if row is None or seen is None:
            why = "it was removed"
        else:
            now = sql.meta_of(row, where=self.target)
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
