"""The embedded state: one SQLite file in WAL mode, one transaction per step.

Owned here: :class:`SqliteState`, which plays every role of
:class:`~rune_sync.state.backend.StateBackend` for a file path, and :data:`DEFAULT_PATH`.
Opened through :func:`rune_sync.state.backend.open_backend`.

Opening is careful, because ``--state`` may name any file (DESIGN §5):

* a missing or empty (0-byte) file, or an SQLite database with no tables at all, is a
  new state: the schema is created and a lineage chosen;
* anything else is first inspected *read-only* (its header, then an SQLite connection
  that cannot write: ``immutable=1`` for a WAL file without a ``-wal``, else
  ``mode=ro``), and it is refused unmodified unless it is a rune-sync state: marked by
  its ``application_id`` and holding the ``meta`` and ``records`` tables. The WAL switch
  comes only after that. A state written by a newer rune-sync is refused, never changed.
* a state written by an older rune-sync is migrated forward as it is opened, with or
  without ``create`` (a command that only reads, like ``plan``, opens it the same way):
  every pending migration and the new ``schema_version`` in one transaction, so the
  file is at its old version or the new one, never in between.

The file and its ``-wal``/``-shm`` companions are mode 0600 whatever the umask; parent
directories are created when missing. Durability: ``synchronous=NORMAL`` in WAL mode —
a committed step survives any crash of the process; on power loss the last steps may be
missing but the file is never corrupt. Every ``sqlite3`` error becomes a
``StateError`` (``StateCorruptError`` when the file is damaged) naming the path; none
leaves this module. The lock is a :class:`~rune_sync.state.lock.FileLock` on the sidecar
``<path>.lock``; nothing else is ever written, in particular nothing under
``./.rune-sync/`` unless that is the path.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import sqlite3
import stat
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import tenacity

from rune_sync import __version__
from rune_sync.errors import StateCorruptError, StateError
from rune_sync.spec.model import Address
from rune_sync.state import schema
from rune_sync.state.backend import StateNotFoundError
from rune_sync.state.lock import FileLock, sidecar_path
from rune_sync.state.model import (
    LockInfo,
    SourceInfo,
    StateMeta,
    StateRecord,
    format_timestamp,
    new_lineage,
)

DEFAULT_PATH = Path(".rune-sync/state.db")
"""Where the state lives when neither ``--state`` nor ``RUNE_SYNC_STATE`` says."""

APPLICATION_ID = 0x52534E43
"""``PRAGMA application_id`` of a rune-sync state (``RSNC``): how a state file is known."""

BUSY_TIMEOUT_S = 10.0
"""How long a statement waits for another connection's write (SQLite ``busy_timeout``)."""

_MAGIC = b"SQLite format 3\x00"
_FILE_MODE = 0o600
_COMPANIONS = ("-wal", "-shm")
_T = TypeVar("_T")

_SELECT = (
    "SELECT address, status, retained, handle, driver, spec, bound_claim, owner_service, "
    "attempts, failed_runs, failure_message, driver_parameters, created_at, updated_at, "
    "intent FROM records"
)
_UPSERT = (
    f"INSERT INTO records ({', '.join(schema.RECORD_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in schema.RECORD_COLUMNS)}) "
    "ON CONFLICT (address) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in schema.RECORD_COLUMNS if c != "address")
)


class _Found(enum.Enum):
    MISSING = "missing"
    EMPTY = "empty"  # a 0-byte file
    BLANK = "blank"  # an SQLite database without tables
    OURS = "ours"


class SqliteState:
    """A rune-sync state in one SQLite file. Build it with :meth:`open`.

    One connection, shared by the threads of a parallel apply under a lock; reads and
    writes from other processes go through SQLite's own locking (``busy_timeout``).
    """

    def __init__(self, *, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = connection
        self._mutex = threading.RLock()
        self._depth = 0
        self._lock = FileLock(sidecar_path(path), location=str(path))

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: Path, *, create: bool) -> SqliteState:
        """Open the state at ``path``; see the module docstring for what is refused.

        Raises :class:`~rune_sync.state.backend.StateNotFoundError` when there is no
        state and ``create`` is false (nothing is written then), ``StateCorruptError``
        for a file that is not a readable rune-sync state, ``StateError`` otherwise.
        """
        found = _inspect(path)
        if found is not _Found.OURS and not create:
            what = "does not exist" if found is _Found.MISSING else "is empty"
            raise StateNotFoundError(
                f"state {path} {what}: there is no state yet (plan or apply creates it), "
                "or --state names the wrong file"
            )
        if found is _Found.MISSING:
            found = _create_file(path)
        if found is not _Found.OURS:
            try:
                os.chmod(path, _FILE_MODE)  # it becomes a state: owner-only, like a new one
            except OSError as exc:
                raise StateError(f"state {path}: cannot set its mode: {exc.strerror}") from exc
        conn = _connect(path)
        try:
            with _sqlite_errors(path):
                if found is not _Found.OURS:
                    _initialise(conn, path)
                _use_wal(conn, path)
                _migrate(conn, path)
            _fix_companion_modes(path)
        except BaseException:
            conn.close()
            raise
        return cls(path=path, connection=conn)

    @property
    def location(self) -> str:
        return str(self.path)

    def close(self) -> None:
        """Release a lock this object holds and close the connection; idempotent."""
        self._lock.release()
        with self._mutex:
            conn, self._conn = self._conn, None
            if conn is not None:
                with _sqlite_errors(self.path):
                    conn.close()

    def __enter__(self) -> SqliteState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- reading

    def meta(self) -> StateMeta:
        return self._read(lambda conn: _read_meta(conn, self.path))

    def get(self, address: Address) -> StateRecord | None:
        rows = self._read(
            lambda conn: conn.execute(f"{_SELECT} WHERE address = ?", (str(address),)).fetchall()
        )
        return schema.record_from_row(rows[0], where=str(self.path)) if rows else None

    def records(self) -> Iterator[StateRecord]:
        rows = self._read(lambda conn: conn.execute(f"{_SELECT} ORDER BY address").fetchall())
        return (schema.record_from_row(row, where=str(self.path)) for row in rows)

    def load_all(self) -> dict[Address, StateRecord]:
        return {record.address: record for record in self.records()}

    # ----------------------------------------------------------------- writing

    def put(self, record: StateRecord) -> None:
        values = _row(record)
        self._write(lambda conn: conn.execute(_UPSERT, values))

    def delete(self, address: Address) -> bool:
        cursor = self._write(
            lambda conn: conn.execute("DELETE FROM records WHERE address = ?", (str(address),))
        )
        return cursor.rowcount > 0

    def bump_serial(self, *, source: SourceInfo | None = None) -> StateMeta:
        def bump(conn: sqlite3.Connection) -> StateMeta:
            current = _read_meta(conn, self.path)
            _set_meta(conn, {schema.META_SERIAL: str(current.serial + 1)})
            if source is not None:
                _set_meta(conn, {schema.META_SOURCE: json.dumps(source.to_json())})
            return _read_meta(conn, self.path)

        return self._write(bump)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqliteState]:
        with self._mutex:
            conn = self._connection()
            depth = self._depth
            begin, commit, undo = (
                ("BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")
                if depth == 0
                else (f"SAVEPOINT s{depth}", f"RELEASE s{depth}", f"ROLLBACK TO s{depth}")
            )
            with _sqlite_errors(self.path):
                conn.execute(begin)
            self._depth = depth + 1
            try:
                yield self
            except BaseException:
                self._depth = depth
                with _sqlite_errors(self.path):
                    conn.execute(undo)
                    if depth:
                        conn.execute(commit)  # a savepoint must also be released
                raise
            self._depth = depth
            with _sqlite_errors(self.path):
                try:
                    conn.execute(commit)
                except sqlite3.Error:
                    if depth == 0 and conn.in_transaction:
                        conn.execute(undo)
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
        schema.require_unique_addresses(str(row[0]) for row in rows)
        if serial < 0:
            raise ValueError("serial must be ≥ 0")

        def replace(conn: sqlite3.Connection) -> StateMeta:
            conn.execute("DELETE FROM records")
            conn.executemany(_UPSERT, rows)
            _set_meta(
                conn,
                {
                    schema.META_LINEAGE: lineage,
                    schema.META_SERIAL: str(serial),
                    schema.META_SOURCE: "" if source is None else json.dumps(source.to_json()),
                },
            )
            return _read_meta(conn, self.path)

        return self._write(replace)

    # ----------------------------------------------------------------- locking

    def lock(
        self, info: LockInfo, *, timeout: float = 0.0
    ) -> contextlib.AbstractContextManager[LockInfo]:
        return self._lock.lock(info, timeout=timeout)

    def acquire(self, info: LockInfo, *, timeout: float = 0.0) -> None:
        self._lock.acquire(info, timeout=timeout)

    def release(self) -> None:
        self._lock.release()

    def lock_info(self) -> LockInfo | None:
        return self._lock.lock_info()

    def force_unlock(self, lock_id: str | None = None) -> LockInfo | None:
        """See :meth:`rune_sync.state.lock.FileLock.force_unlock` for what it can do."""
        return self._lock.force_unlock(lock_id)

    # ----------------------------------------------------------------- internals

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StateError(f"state {self.path} is closed")
        return self._conn

    def _read(self, query: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._mutex, _sqlite_errors(self.path):
            return query(self._connection())

    def _write(self, change: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._mutex:
            conn = self._connection()
            if self._depth:
                with _sqlite_errors(self.path):
                    return change(conn)
            with _sqlite_errors(self.path):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = change(conn)
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                return result


# --------------------------------------------------------------------------- rows


def _row(record: StateRecord) -> tuple[object, ...]:
    """``record`` as the values of :data:`schema.RECORD_COLUMNS`."""
    return (
        str(record.address),
        record.kind.value,
        record.status,
        int(record.retained),
        record.handle,
        record.driver,
        record.spec_json,
        record.spec_digest,
        record.bound_claim,
        record.owner_service,
        record.attempts,
        record.failed_runs,
        record.failure_message,
        json.dumps(dict(record.driver_parameters), sort_keys=True, ensure_ascii=False),
        format_timestamp(record.created_at),
        format_timestamp(record.updated_at),
        record.intent,
    )


def _read_meta(conn: sqlite3.Connection, path: Path) -> StateMeta:
    values: dict[str, str] = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    try:
        source_text = values.get(schema.META_SOURCE, "")
        source = SourceInfo.from_json(json.loads(source_text)) if source_text else None
        return StateMeta(
            lineage=values[schema.META_LINEAGE],
            serial=int(values[schema.META_SERIAL]),
            source=source,
            schema_version=int(values[schema.META_SCHEMA_VERSION]),
            created_by=values.get(schema.META_CREATED_BY, ""),
        )
    except (KeyError, ValueError) as exc:
        raise StateCorruptError(f"state {path}: its meta table is damaged ({exc})") from exc


def _set_meta(conn: sqlite3.Connection, values: Mapping[str, str]) -> None:
    conn.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        list(values.items()),
    )


# --------------------------------------------------------------------------- opening


def _inspect(path: Path) -> _Found:
    """What ``path`` holds, found without writing anything; refuses what is not ours."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return _Found.MISSING
    except OSError as exc:
        raise StateError(f"state {path}: cannot read it: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise StateError(f"state {path} is a directory; --state takes the path of a file")
    if not stat.S_ISREG(info.st_mode):
        raise _foreign(path, "it is not a regular file")
    if info.st_size == 0:
        return _Found.EMPTY
    wal_had_data = _wal_has_data(path)
    try:
        with open(path, "rb") as f:
            header = f.read(100)
            size = os.fstat(f.fileno()).st_size
    except OSError as exc:
        raise StateError(f"state {path}: cannot read it: {exc.strerror or exc}") from exc
    if len(header) < 100 or not header.startswith(_MAGIC):
        raise _foreign(path, "it is not an SQLite database")
    app_id = int.from_bytes(header[68:72], "big", signed=True)
    in_wal_mode = header[18] == 2
    wal_has_data = _wal_has_data(path)
    # With a -wal holding data, a checkpoint (another command closing the state) may be
    # copying pages into the file: page 1 already counts pages not written yet. The
    # size says nothing then; quick_check below still reads every page through the WAL.
    if not (in_wal_mode and (wal_had_data or wal_has_data)):
        _check_size(path, header=header, size=size)
    # immutable=1 reads without locks or companion files; it is exact only when no -wal
    # holds newer pages. mode=ro on a WAL file may create -shm, so it is kept for our own
    # files: a rune-sync state carries its mark in the main file from its first commit.
    if in_wal_mode and wal_has_data and app_id != APPLICATION_ID:
        raise _foreign(path, "it is an SQLite database of another program, with a -wal file")
    option = "immutable=1" if in_wal_mode and not wal_has_data else "mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(_uri(path, option), uri=True)) as conn:
            entries = conn.execute("SELECT type, name FROM sqlite_master").fetchall()
            names = {str(name) for kind, name in entries if kind == "table"}
            if not entries and app_id in (0, APPLICATION_ID):
                return _Found.BLANK
            if app_id != APPLICATION_ID:
                if not entries:
                    raise _foreign(path, f"it belongs to another application (id {app_id:#x})")
                shown = ", ".join(sorted(names)[:5]) or "no tables"
                raise _foreign(path, f"it is an SQLite database of something else ({shown})")
            if not names >= schema.TABLES:
                raise StateCorruptError(
                    f"state {path} is marked as a rune-sync state but lacks the tables "
                    f"{', '.join(sorted(schema.TABLES - names))}; it was left unmodified"
                )
            version = conn.execute(
                "SELECT value FROM meta WHERE key = ?", (schema.META_SCHEMA_VERSION,)
            ).fetchone()
            # Every page, before anything is written: writing into a damaged file can
            # only make it worse. Costs ~1 ms per 1,000 records.
            problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise StateCorruptError(
                    f"state {path} is damaged ({'; '.join(problems)}); it was left "
                    "unmodified. Move it aside and restore a backup into a new state "
                    "with `rune-sync state push`."
                )
    except sqlite3.Error as exc:
        raise StateCorruptError(
            f"state {path} cannot be read as an SQLite database ({exc}); it is damaged or "
            "not a rune-sync state, and it was left unmodified"
        ) from exc
    if version is None:
        raise StateCorruptError(f"state {path} has no schema version; it was left unmodified")
    try:
        found_version = int(version[0])
    except (TypeError, ValueError):
        raise StateCorruptError(f"state {path} has a damaged schema version") from None
    schema.check_version(found_version, where=str(path))
    return _Found.OURS


def _wal_has_data(path: Path) -> bool:
    try:
        return os.stat(f"{path}-wal").st_size > 0
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StateError(f"state {path}: cannot read its -wal: {exc.strerror or exc}") from exc


def _check_size(path: Path, *, header: bytes, size: int) -> None:
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise _foreign(path, "its SQLite header is damaged")
    pages = int.from_bytes(header[28:32], "big")
    # The page count in the header is valid when "version-valid-for" matches the change
    # counter; a file shorter than that, or not a whole number of pages, was cut short.
    counted = header[92:96] == header[24:28] and pages > 0
    if size % page_size or (counted and size < pages * page_size):
        raise StateCorruptError(
            f"state {path} is truncated ({size} bytes, expected "
            f"{pages * page_size if counted else 'whole pages'}); it was left unmodified. "
            "Move it aside and restore a backup into a new state with `rune-sync state push`."
        )


def _foreign(path: Path, why: str) -> StateCorruptError:
    return StateCorruptError(
        f"{path} is not a rune-sync state: {why}. It was left unmodified; "
        "choose another --state path"
    )


def _create_file(path: Path) -> _Found:
    """Create an empty state file (and missing parents) with mode 0600."""

    def create() -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE)
        try:
            os.fchmod(fd, _FILE_MODE)  # the umask may have removed bits; it never adds any
        finally:
            os.close(fd)

    try:
        create()
    except FileExistsError:
        # Another command created it meanwhile: judge what it holds now, like any file.
        return _inspect(path)
    except OSError as exc:
        raise StateError(f"state {path}: cannot create it: {exc.strerror or exc}") from exc
    return _Found.EMPTY


def _uri(path: Path, option: str) -> str:
    return f"file:{urllib.parse.quote(str(path.absolute()))}?{option}"


def _connect(path: Path) -> sqlite3.Connection:
    try:
        # mode=rw never creates the file: a state deleted meanwhile is an error.
        return sqlite3.connect(
            _uri(path, "mode=rw"),
            uri=True,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,  # shared by apply's threads under SqliteState._mutex
        )
    except sqlite3.Error as exc:
        raise StateError(f"state {path}: cannot open it: {exc}") from exc


def _initialise(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema and meta of a new state, unless another command just did."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        entries = conn.execute("SELECT name FROM sqlite_master").fetchall()
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if entries:
            conn.execute("ROLLBACK")
            if app_id == APPLICATION_ID:
                return  # created by a concurrent command between inspection and now
            raise _foreign(path, "another program wrote tables into it while it was opened")
        for migration in schema.pending(0):
            for statement in migration.statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        _set_meta(
            conn,
            {
                schema.META_LINEAGE: new_lineage(),
                schema.META_SERIAL: "0",
                schema.META_SOURCE: "",
                schema.META_SCHEMA_VERSION: str(schema.SCHEMA_VERSION),
                schema.META_CREATED_BY: f"rune-sync {__version__}",
                schema.META_CREATED_AT: format_timestamp(datetime.now(UTC)),
            },
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _use_wal(conn: sqlite3.Connection, path: Path) -> None:
    """Switch the file to WAL mode (a no-op read once it is), waiting out other writers.

    The switch reads the header, then upgrades its read lock to a write lock to rewrite
    it. SQLite never runs the busy handler for such an upgrade (a reader waiting on a
    writer could deadlock), so ``busy_timeout`` does not cover it: while another command
    holds the write lock (creating the schema of the same new state, or switching it
    too) the pragma fails at once with ``SQLITE_BUSY``. It is therefore retried, from
    scratch and with a short growing pause, for up to :data:`BUSY_TIMEOUT_S` in all.
    """
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(BUSY_TIMEOUT_S),
        wait=tenacity.wait_exponential(multiplier=0.002, max=0.1) + tenacity.wait_random(0, 0.005),
        retry=tenacity.retry_if_exception(_is_busy),
        reraise=True,
    )
    mode = retrying(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
    if str(mode).lower() != "wal":
        raise StateError(f"state {path}: cannot switch it to WAL mode (got {mode!r})")
    conn.execute("PRAGMA synchronous = NORMAL")


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Run the forward migrations a state written by an older rune-sync needs.

    One transaction: SQLite's DDL is transactional, so a failure or a crash part-way
    leaves the state at its old version, untouched. Runs for every open, read-only
    commands included; the version is read again under the write lock, so two commands
    opening an old state at once migrate it once.
    """
    if _read_meta(conn, path).schema_version >= schema.SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = _read_meta(conn, path).schema_version  # again, under the write lock
        for migration in schema.pending(current):
            for statement in migration.statements:
                conn.execute(statement)
        _set_meta(conn, {schema.META_SCHEMA_VERSION: str(schema.SCHEMA_VERSION)})
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _fix_companion_modes(path: Path) -> None:
    """SQLite gives ``-wal``/``-shm`` the database's mode; make sure of it."""
    for suffix in _COMPANIONS:
        companion = Path(f"{path}{suffix}")
        try:
            if stat.S_IMODE(companion.stat().st_mode) != _FILE_MODE:
                os.chmod(companion, _FILE_MODE)
        except FileNotFoundError:
            continue  # SQLite creates them lazily; an absent one needs nothing
        except OSError as exc:
            raise StateError(f"state {path}: cannot set the mode of {companion}: {exc}") from exc


@contextlib.contextmanager
def _sqlite_errors(path: Path) -> Iterator[None]:
    """sqlite3 errors as ours, with the path (STYLE §3.8)."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if _is_corruption(exc):
            raise StateCorruptError(f"state {path} is damaged: {exc}") from exc
        raise StateError(f"state {path}: {_explain(exc)}") from exc
    except sqlite3.Error as exc:
        raise StateError(f"state {path}: {_explain(exc)}") from exc


def _is_busy(exc: BaseException) -> bool:
    return (
        isinstance(exc, sqlite3.OperationalError)
        and (getattr(exc, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY
    )


def _is_corruption(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or (
        code is None and "malformed" in str(exc)
    )


def _explain(exc: sqlite3.Error) -> str:
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY:
        return f"another process kept it busy for over {BUSY_TIMEOUT_S:g}s ({exc})"
    return str(exc)
