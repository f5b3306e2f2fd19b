"""The connections one PostgreSQL state object lends to the threads of a command.

Owned here: :class:`Connections`. Apply writes from a thread pool; one connection per
write in flight lets those writes overlap their round trips to the server (which
matters more the farther away it is), up to :data:`POOL_SIZE` connections per command.
A thread borrows a connection for one call and gives it back; a thread inside
:meth:`Connections.exclusive` (a ``transaction()`` block) keeps its connection pinned
until the block ends, and meanwhile other threads' writes wait at the gate (reads do
not: they see committed data only).

A connection that broke (server restart, network loss) makes the whole object
unusable: the command's lock went with the server session, so carrying on over a new
connection would write without it. Every later call raises the same ``StateError``.

Used by :mod:`rune_sync.state.postgres` only. Must not: run SQL of its own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from rune_sync.errors import StateError

if TYPE_CHECKING:
    import psycopg

POOL_SIZE = 8
"""Connections per state object at most (plus one for the lock): a command needs that
many free ``max_connections`` on the server."""


class Connections:
    """Up to ``size`` connections made by ``connect``; ``first`` is the one opening made."""

    def __init__(
        self,
        *,
        first: psycopg.Connection[Any],
        connect: Callable[[], psycopg.Connection[Any]],
        where: str,
        size: int = POOL_SIZE,
    ) -> None:
        self._connect = connect
        self._where = where
        self._size = size
        self._idle: list[psycopg.Connection[Any]] = [first]
        self._all: list[psycopg.Connection[Any]] = [first]
        self._opening = 0
        self._closed = False
        self._lost: str | None = None
        self._cond = threading.Condition()
        self._pinned = threading.local()
        self._owner: int | None = None  # the thread inside exclusive()
        self._depth = 0
        self._writers = 0  # writes in progress outside exclusive()

    # ----------------------------------------------------------------- lending

    @contextlib.contextmanager
    def borrow(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection for this thread until the block ends (its pinned one, if any)."""
        pinned: psycopg.Connection[Any] | None = getattr(self._pinned, "conn", None)
        if pinned is not None:
            try:
                yield pinned
            finally:
                self._check(pinned)
            return
        conn = self._take()
        try:
            yield conn
        finally:
            self._give(conn)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Pass the gate for one write: wait while another thread is in :meth:`exclusive`."""
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                counted = False
            else:
                while self._owner is not None:
                    self._cond.wait()
                self._writers += 1
                counted = True
        try:
            yield
        finally:
            if counted:
                with self._cond:
                    self._writers -= 1
                    self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[psycopg.Connection[Any]]:
        """Keep every other thread's writes out, and this thread on one connection,
        until the block ends; nests."""
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                nested = True
            else:
                while self._owner is not None or self._writers:
                    self._cond.wait()
                self._owner, self._depth = me, 1
                nested = False
        try:
            if nested:
                yield self._pinned.conn
                return
            conn = self._take()
            self._pinned.conn = conn
            try:
                yield conn
            finally:
                self._pinned.conn = None
                self._give(conn)
        finally:
            with self._cond:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            connections, self._all, self._idle = self._all, [], []
            self._cond.notify_all()
        for conn in connections:
            conn.close()

    # ----------------------------------------------------------------- internals

    def _take(self) -> psycopg.Connection[Any]:
        with self._cond:
            while True:
                self._usable()
                if self._idle:
                    return self._idle.pop()
                if len(self._all) + self._opening < self._size:
                    self._opening += 1
                    break
                self._cond.wait()
        try:
            conn = self._connect()
        except BaseException:
            with self._cond:
                self._opening -= 1
                self._cond.notify_all()
            raise
        with self._cond:
            self._opening -= 1
            if self._closed:
                conn.close()
                self._usable()
            self._all.append(conn)
            return conn

    def _give(self, conn: psycopg.Connection[Any]) -> None:
        self._check(conn)
        with self._cond:
            if not self._closed and not conn.closed:
                self._idle.append(conn)
            self._cond.notify_all()

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        if conn.broken and self._lost is None:
            with self._cond:
                self._lost = (
                    f"state {self._where}: the connection to the PostgreSQL server was lost "
                    "earlier in this command, and its lock with it; run the command again"
                )

    def _usable(self) -> None:
        if self._closed:
            raise StateError(f"state {self._where} is closed")
        if self._lost is not None:
            raise StateError(self._lost)
