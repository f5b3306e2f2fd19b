"""The roles a state backend plays, and :func:`open_backend`, which picks one.

Owned here: the small role protocols (STYLE §3.2) — :class:`StateReader`,
:class:`RecordWriter`, :class:`StateImporter`, :class:`StateLocker` — their composition
:class:`StateBackend` for callers that need every role (the CLI, the contract suite), the
state-specific errors, and :func:`open_backend`. Plan takes a reader, apply a writer,
``state push`` an importer; commands that may write hold the locker's lock from plan to
the end of apply. Callers never name a concrete backend.

Every promise written in a docstring here is checked by
:class:`rune_sync.testing.state.StateBackendContract`, which every backend runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from rune_sync.errors import StateError, StateLockedError
from rune_sync.spec.model import Address
from rune_sync.state.model import LockInfo, SourceInfo, StateMeta, StateRecord
from rune_sync.state.target import DEFAULT_STATE_NAME, StateTarget


class StateNotFoundError(StateError, LookupError):
    """There is no state at the location (and the caller did not ask to create one)."""


class StateLockHeldError(StateLockedError):
    """The lock is held by someone else; ``holder`` says who (``None``: unknown).

    The message names the holder (user, host, pid, command, since) and how to proceed.
    """

    def __init__(self, message: str, *, holder: LockInfo | None, location: str) -> None:
        super().__init__(message)
        self.holder = holder
        self.location = location


class StateReader(Protocol):
    """Reads a state. Every read sees committed data only; none of them writes."""

    @property
    def location(self) -> str:
        """The path or URL of the state, for messages."""
        ...

    def meta(self) -> StateMeta:
        """Lineage, serial, last applied source and schema version. Never fails for a
        state that opened; raises ``StateError`` if the storage became unreadable."""
        ...

    def get(self, address: Address) -> StateRecord | None:
        """The record at ``address``, or ``None`` when there is none."""
        ...

    def records(self) -> Iterator[StateRecord]:
        """Every record, ordered by the text of its address."""
        ...

    def load_all(self) -> dict[Address, StateRecord]:
        """Every record by address, read in one consistent snapshot."""
        ...


class RecordWriter(Protocol):
    """Writes one record per step (DESIGN §5, §7). Safe to call from several threads.

    Each call outside :meth:`transaction` is its own durable transaction: after it
    returns, a crash of the process never loses it, and a crash during it leaves the
    state as it was before. Writes never rewrite records they do not name.
    """

    def put(self, record: StateRecord) -> None:
        """Insert or replace the record at ``record.address``. Idempotent."""
        ...

    def delete(self, address: Address) -> bool:
        """Remove the record at ``address``; ``True`` if there was one. Deleting a missing
        address succeeds and returns ``False``."""
        ...

    def bump_serial(self, *, source: SourceInfo | None = None) -> StateMeta:
        """Move the serial on by one and return the new meta. ``source`` is the source
        just applied; ``None`` keeps the recorded one. The lineage never changes."""
        ...

    def transaction(self) -> AbstractContextManager[RecordWriter]:
        """Group writes: everything done through the yielded writer (and this one, on the
        same thread) commits together when the block ends, or not at all if it raises.
        Other threads' writes wait until the block ends. Blocks nest into the outer one."""
        ...


class StateImporter(Protocol):
    """Replaces a whole state at once (``state push``, migration between backends)."""

    def replace_all(
        self,
        *,
        lineage: str,
        serial: int,
        source: SourceInfo | None,
        records: Iterable[StateRecord],
    ) -> StateMeta:
        """In one transaction, drop every record, store ``records``, and set lineage,
        serial and source. Checks on lineage and serial are the caller's
        (:func:`rune_sync.state.export.push`); raises ``ValueError`` for duplicate
        addresses, leaving the state unchanged."""
        ...


class StateLocker(Protocol):
    """The state's lock: one holder at a time, tied to the holder's life.

    A holder that dies — even by ``kill -9`` — releases the lock with it; no command has
    to clean up after it.
    """

    def lock(self, info: LockInfo, *, timeout: float = 0.0) -> AbstractContextManager[LockInfo]:
        """Hold the lock for the ``with`` block, recording ``info`` as the holder.

        ``timeout`` 0 fails at once when another holder has it; a positive ``timeout``
        waits up to that many seconds. Raises :class:`StateLockHeldError` naming the
        holder, or ``StateError`` if this object already holds the lock.
        """
        ...

    def acquire(self, info: LockInfo, *, timeout: float = 0.0) -> None:
        """Like :meth:`lock`, for holders that cannot use a ``with`` block."""
        ...

    def release(self) -> None:
        """Release a lock taken with :meth:`acquire`; releasing twice is a no-op."""
        ...

    def lock_info(self) -> LockInfo | None:
        """The current holder, or ``None`` when the lock is free (a record left behind
        by a holder that died is not a holder). A holder that has locked but not yet
        recorded itself comes back as :meth:`LockInfo.unknown`. Never waits, breaks the
        lock or records anything."""
        ...

    def force_unlock(self, lock_id: str | None = None) -> LockInfo | None:
        """Break the lock for the cases its tie to the holder's life cannot cover (a
        holder on another host, a hung session); it cannot stop that holder, so the
        operator must. Returns the holder it removed (also a record left by a dead
        holder), ``None`` if there was none. Raises ``StateError`` when ``lock_id`` is
        given and is not the recorded holder's, and :class:`StateLockHeldError` when the
        holder is visibly alive — recorded on this host with a running pid — or has not
        recorded itself yet. Backends document the rest."""
        ...


class StateBackend(StateReader, RecordWriter, StateImporter, StateLocker, Protocol):
    """Every role at once, plus closing. Closing releases a lock this object holds."""

    def close(self) -> None: ...

    def __enter__(self) -> StateBackend: ...

    def __exit__(self, *exc: object) -> None: ...


def open_backend(
    target: str | Path | StateTarget, *, create: bool, name: str | None = None
) -> StateBackend:
    """The backend for ``target``: a file path (SQLite) or a ``postgresql://`` URL
    (PostgreSQL; also ``postgres://``), with the state ``name`` in it (default
    ``default``; a :class:`StateTarget` carries its own).

    With ``create`` a missing state is created (a file with its parent directories; in
    PostgreSQL the tables and the named state, in an existing database); without it, a
    missing state raises :class:`StateNotFoundError` and nothing is written. A file that
    is not a rune-sync state is refused unmodified (``StateCorruptError``); one written
    by a newer rune-sync is refused (``StateError``). A SQLite file holds one state: a
    name other than ``default`` is refused (``StateError``) rather than ignored.
    """
    if isinstance(target, StateTarget):
        where = target if name is None else StateTarget(location=target.location, name=name)
    else:
        try:
            where = StateTarget(
                location=str(target), name=DEFAULT_STATE_NAME if name is None else name
            )
        except ValueError as exc:
            raise StateError(str(exc)) from None
    # Imported here: a backend module is loaded only when it is selected (and the
    # backends import this module's protocols and errors).
    if where.is_postgres:
        from rune_sync.state import postgres

        return postgres.PostgresState.open(where, create=create)
    if not where.location:
        raise StateError("the state path is empty")
    if where.name != DEFAULT_STATE_NAME:
        raise StateError(
            f"state {where.location} is a SQLite file, which holds one state: --state-name "
            f"{where.name} applies to PostgreSQL states only (use another file instead)"
        )
    from rune_sync.state import sqlite

    return sqlite.SqliteState.open(Path(where.location), create=create)
