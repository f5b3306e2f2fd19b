"""The PostgreSQL state's lock: a session advisory lock, tied to the holder's connection.

Owned here: :class:`PgLock`, the :class:`~rune_sync.state.backend.StateLocker` of a
PostgreSQL state. The holder opens a dedicated connection and takes
``pg_advisory_lock(RSNC, key(name))`` on it at session level, then records its
:class:`~rune_sync.state.model.LockInfo` in ``rune_sync.locks`` together with the server
pid of that session. The server drops the lock when that session ends for any reason —
the holder exits, is killed, or its connection dies (TCP keepalives and
``tcp_user_timeout`` make a dead peer noticed within about half a minute) — so no
command has to clean up after it. Waiting (``timeout`` > 0) is done by the server
(``lock_timeout``), which hands the lock over the moment it is released; no polling.

Who holds it is read from ``pg_locks`` (the truth) joined with the record: a record whose
session no longer holds the lock is a leftover and names nobody; a session that holds
the lock without a matching record is an unknown holder.

``force_unlock`` of a holder that is not visibly alive (recorded on another host, or a
dead pid on this one, but its session still holds the lock: a hung run, a half-open
connection) ends that server session with ``pg_terminate_backend`` — the only way to
free a session lock, and the same thing the server does when the connection dies — and
removes the record. The old holder cannot write after that: every write of a lock
holder checks in its own transaction that its lock record is still there
(:mod:`rune_sync.state.postgres`). Ending another user's session needs that role or
``pg_signal_backend``; without it the error says so and nothing is changed.

Must not: take or release the lock on any connection but its own.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rune_sync.errors import StateError
from rune_sync.state import pgconn
from rune_sync.state.backend import StateLockHeldError
from rune_sync.state.lock import runs_here
from rune_sync.state.model import LockInfo, format_timestamp, parse_timestamp
from rune_sync.state.target import StateTarget

if TYPE_CHECKING:
    import psycopg

LOCK_CLASS = 0x52534E43
"""The first key of every rune-sync advisory lock (``RSNC``); the second is the name's."""

TERMINATE_WAIT_MS = 5000
_UNRECORDED_GRACE = 0.5
_PAUSE = 0.02

Run = Callable[[Callable[["psycopg.Connection[Any]"], Any]], Any]
Status = tuple[int | None, LockInfo | None, int | None]

_HOLDER = """
    SELECT l.pid, r.id, r.user_name, r.host, r.pid, r.command, r.since, r.backend_pid
    FROM (SELECT 1) AS one
    LEFT JOIN (
        SELECT pid FROM pg_catalog.pg_locks
        WHERE locktype = 'advisory' AND granted AND objsubid = 2
          AND database = (SELECT oid FROM pg_catalog.pg_database
                          WHERE datname = current_database())
          AND classid = %(class)s::bigint::oid AND objid = %(key)s::bigint::oid
        LIMIT 1
    ) AS l ON TRUE
    LEFT JOIN rune_sync.locks AS r ON r.state = %(name)s
"""


def lock_key(name: str) -> int:
    """The second advisory-lock key of the state ``name`` (31 bits of its SHA-256)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big") & 0x7FFFFFFF


class PgLock:
    """The advisory lock of one named state; one holder per object.

    ``run`` runs a query on the state's shared connection (for lock-info and
    force-unlock); holding uses a connection of its own.
    """

    def __init__(self, *, target: StateTarget, run: Run) -> None:
        self.target = target
        self._run = run
        self._key = {"class": LOCK_CLASS, "key": lock_key(target.name), "name": target.name}
        self._conn: psycopg.Connection[Any] | None = None
        self._held: LockInfo | None = None
        self._mutex = threading.Lock()

    @property
    def held(self) -> LockInfo | None:
        """What this object recorded when it took the lock, ``None`` when not holding."""
        return self._held

    # ----------------------------------------------------------------- holding

    def acquire(self, info: LockInfo, *, timeout: float = 0.0) -> None:
        if timeout < 0:
            raise ValueError("timeout must be ≥ 0")
        with self._mutex:
            if self._conn is not None:
                raise StateError(f"state {self.target}: this process already holds its lock")
            conn = pgconn.connect(self.target)
            try:
                with pgconn.pg_errors(self.target):
                    if not self._take(conn, timeout):
                        raise self._held_error(self._holder(conn))
                    conn.execute(
                        "INSERT INTO rune_sync.locks (state, id, user_name, host, pid, command, "
                        "since, backend_pid) VALUES (%s, %s, %s, %s, %s, %s, %s, pg_backend_pid()) "
                        "ON CONFLICT (state) DO UPDATE SET id = excluded.id, "
                        "user_name = excluded.user_name, host = excluded.host, pid = excluded.pid, "
                        "command = excluded.command, since = excluded.since, "
                        "backend_pid = excluded.backend_pid",
                        (self.target.name, info.id, info.user, info.host, info.pid, info.command,
                         format_timestamp(info.since)),
                    )  # fmt: skip
            except BaseException:
                conn.close()  # ending the session releases a lock it took
                raise
            self._conn, self._held = conn, info

    def release(self) -> None:
        with self._mutex:
            conn, held = self._conn, self._held
            self._conn, self._held = None, None
            if conn is None or held is None:
                return
            try:
                # Unlocked explicitly (closing alone frees it only once the server has
                # noticed), in the statement that removes our record and no other's.
                conn.execute(
                    "WITH gone AS (DELETE FROM rune_sync.locks WHERE state = %s AND id = %s "
                    "RETURNING 1) SELECT pg_advisory_unlock(%s, %s)",
                    (self.target.name, held.id, LOCK_CLASS, self._key["key"]),
                )
            except Exception:
                pass
            finally:
                conn.close()

    def _take(self, conn: psycopg.Connection[Any], timeout: float) -> bool:
        import psycopg.errors

        if timeout > 0:
            try:
                with conn.transaction():
                    conn.execute(
                        "SELECT set_config('lock_timeout', %s, true), "
                        "set_config('statement_timeout', '0', true)",
                        (f"{max(1, round(timeout * 1000))}ms",),
                    )
                    conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, self._key["key"]))
                return True
            except psycopg.errors.LockNotAvailable:
                return False
        start = time.monotonic()
        while True:
            row = conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, self._key["key"])
            ).fetchone()
            if row is not None and row[0]:
                return True
            # A holder that locked but has not recorded itself yet is transient by
            # construction: look again for a moment before failing (as the file lock does).
            if self._holder(conn) is not None or time.monotonic() - start >= _UNRECORDED_GRACE:
                return False
            time.sleep(_PAUSE)

    # ----------------------------------------------------------------- inspecting

    def lock_info(self) -> LockInfo | None:
        held = self._held
        if held is not None:
            return held
        lock_pid, record, record_pid = self._current()
        if lock_pid is None:
            return None
        if record is None or record_pid != lock_pid:
            return LockInfo.unknown(seen_at=datetime.now(UTC))
        return record

    def force_unlock(self, lock_id: str | None = None) -> LockInfo | None:
        """See the module docstring for what it does to a holder that is not alive here."""
        with self._mutex:
            if self._conn is not None:
                raise StateError(
                    f"state {self.target}: this process holds the lock; release it instead"
                )
            lock_pid, record, record_pid = self._current()
            if lock_id is not None and (record is None or record.id != lock_id):
                current = record.id if record is not None else "none recorded"
                raise StateError(
                    f"state {self.target}: lock ID {lock_id!r} is not the current holder's "
                    f"({current}); check `rune-sync state lock-info` and try again"
                )
            if lock_pid is None:  # nobody holds it: at most a leftover record to clear
                if record is not None:
                    self._run(lambda conn: self._forget(conn, record))
                return record
            if record is None or record_pid != lock_pid:
                raise self._held_error(None)
            if runs_here(record):
                raise StateLockHeldError(
                    f"state {self.target} is locked by {record.describe()}, which is still "
                    f"running on this host: stop it (kill {record.pid}) and its lock goes "
                    "with it; force-unlock will not break the lock of a live process",
                    holder=record,
                    location=self.target.display,
                )
            self._run(lambda conn: self._terminate(conn, lock_pid, record))
            return record

    # ----------------------------------------------------------------- internals

    def _current(self) -> Status:
        status: Status = self._run(self._status)
        return status

    def _status(self, conn: psycopg.Connection[Any]) -> Status:
        """(server pid holding the lock, the recorded holder, the pid it recorded)."""
        row = conn.execute(_HOLDER, self._key).fetchone()
        if row is None:
            return None, None, None
        lock_pid, lock_id, user, host, pid, command, since, record_pid = row
        record = None
        if lock_id is not None:
            record = LockInfo(
                id=str(lock_id),
                user=str(user),
                host=str(host),
                pid=int(pid),
                command=str(command),
                since=parse_timestamp(str(since)),
            )
        return (
            None if lock_pid is None else int(lock_pid),
            record,
            None if record_pid is None else int(record_pid),
        )

    def _holder(self, conn: psycopg.Connection[Any]) -> LockInfo | None:
        """The recorded holder whose session holds the lock now, else ``None``."""
        lock_pid, record, record_pid = self._status(conn)
        return record if lock_pid is not None and record_pid == lock_pid else None

    def _forget(self, conn: psycopg.Connection[Any], record: LockInfo) -> None:
        conn.execute(
            "DELETE FROM rune_sync.locks WHERE state = %s AND id = %s",
            (self.target.name, record.id),
        )

    def _terminate(self, conn: psycopg.Connection[Any], pid: int, record: LockInfo) -> None:
        import psycopg.errors

        try:
            row = conn.execute(
                "SELECT pg_terminate_backend(%s, %s)", (pid, TERMINATE_WAIT_MS)
            ).fetchone()
        except psycopg.errors.InsufficientPrivilege as exc:
            raise StateError(
                f"state {self.target}: the lock of {record.describe()} is held by server "
                f"session {pid}, which this database user may not end ({exc}). Ask a "
                f"superuser to run SELECT pg_terminate_backend({pid}); nothing was changed"
            ) from exc
        if row is None or not row[0]:
            raise StateError(
                f"state {self.target}: server session {pid} holding the lock did not end "
                f"within {TERMINATE_WAIT_MS / 1000:g}s; try again"
            )
        self._forget(conn, record)

    def _held_error(self, holder: LockInfo | None) -> StateLockHeldError:
        if holder is None:
            message = (
                f"state {self.target} is locked by a session that has not recorded itself "
                "(one that is just starting). Try again, or pass --lock-timeout to wait; "
                "`rune-sync state lock-info` shows the holder once it is known"
            )
        else:
            message = (
                f"state {self.target} is locked by {holder.describe()} (lock ID "
                f"{holder.id}). Wait for it to finish, or pass --lock-timeout to wait; if that "
                "process is gone for good (another host, a hung run), run "
                f"`rune-sync state force-unlock {holder.id} {self.target.flags}`"
            )
        return StateLockHeldError(message, holder=holder, location=self.target.display)
