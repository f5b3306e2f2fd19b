"""Connections to the PostgreSQL state server, and psycopg's errors as ours.

Owned here: :func:`connect` (lazy psycopg import, keepalives, timeouts, the session
settings every state connection gets) and :func:`pg_errors`, the one place a psycopg
error becomes a :class:`~rune_sync.errors.StateError` — with the URL's password masked
and scrubbed from the library's own text, and a hint for the usual failures
(unreachable server, bad credentials, a missing database). Used by
:mod:`rune_sync.state.postgres` and :mod:`rune_sync.state.pglock`.

Connection settings: the URL and the standard ``PG*`` environment variables (libpq reads
``PGPASSWORD``, ``PGSSLMODE``, ``PGPASSFILE``…) decide; this module only adds defaults
the URL does not set: ``connect_timeout`` 10 s, TCP keepalives (idle 10 s, every 5 s, 3
probes), ``tcp_user_timeout`` 30 s, ``application_name`` rune-sync; per session the
same keepalives on the server's side (so the server drops the session, and a lock it
holds, when the client vanishes), and a ``statement_timeout`` of 60 s unless the URL's
``options`` sets one.

Must not: print or log the URL unmasked.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rune_sync.errors import StateError
from rune_sync.state.target import MASK, StateTarget, mask_url, password_of

if TYPE_CHECKING:
    import psycopg

INSTALL_HINT = "pip install 'rune-sync[postgres]'"
STATEMENT_TIMEOUT = "60s"

_DEFAULTS = {
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",
    "application_name": "rune-sync",
}
_SERVER_SIDE = {
    # The server's side of the same: it notices a vanished client (host down, cable
    # cut) and ends its session — releasing a lock it held — in about half a minute
    # instead of the operating system's two hours.
    "tcp_keepalives_idle": "10",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "30000",
}


def require_psycopg() -> None:
    """Import psycopg, or explain how to install it."""
    try:
        import psycopg  # noqa: F401  # imported here only to see that it is installed
    except ImportError as exc:
        raise StateError(
            f"a postgresql:// state needs the PostgreSQL driver psycopg: {INSTALL_HINT}"
        ) from exc


def connect(target: StateTarget) -> psycopg.Connection[tuple[object, ...]]:
    """A new autocommit connection to ``target``'s database, or a ``StateError``."""
    require_psycopg()
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    with pg_errors(target, connecting=True):
        given = conninfo_to_dict(target.location)
        extra = {key: value for key, value in _DEFAULTS.items() if key not in given}
        conn = psycopg.connect(make_conninfo(target.location, **extra), autocommit=True)
    settings = dict(_SERVER_SIDE)
    if conn.info.server_version < 120000:
        del settings["tcp_user_timeout"]
    if "statement_timeout" not in str(given.get("options", "")):
        settings["statement_timeout"] = STATEMENT_TIMEOUT
    try:
        with pg_errors(target):
            calls = ", ".join("set_config(%s, %s, false)" for _ in settings)
            conn.execute(
                f"SELECT {calls}".encode(),
                [part for item in settings.items() for part in item],
            )
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def pg_errors(target: StateTarget, *, connecting: bool = False) -> Iterator[None]:
    """psycopg errors as ``StateError`` naming ``target`` (password masked)."""
    try:
        yield
    except StateError:
        raise
    except Exception as exc:
        import psycopg

        if not isinstance(exc, psycopg.Error):
            raise
        raise StateError(f"state {target}: {explain(exc, target, connecting=connecting)}") from exc


def explain(exc: BaseException, target: StateTarget, *, connecting: bool = False) -> str:
    """One line for ``exc``: the server's message (secrets scrubbed) and what to do."""
    text = scrub(" ".join(str(exc).split()), target)
    lowered = text.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return (
            f"the server refused the credentials ({text}); check the user and password "
            "in the URL or PGPASSWORD / ~/.pgpass"
        )
    if connecting and "role" in lowered and "does not exist" in lowered:
        return f"{text}; check the user in the URL or PGUSER"
    if "does not exist" in lowered and "database" in lowered and connecting:
        return (
            f"{text}; create it first (e.g. `createdb NAME` as a user allowed to), rune-sync "
            "creates its tables in it"
        )
    if connecting and ("ssl" in lowered or "certificate" in lowered):
        return (
            f"the TLS connection failed ({text}); check sslmode, sslrootcert, sslcert and "
            "sslkey in the URL, or PGSSLMODE / PGSSLROOTCERT"
        )
    if connecting and any(
        hint in lowered
        for hint in (
            "connection refused",
            "could not connect",
            "timeout expired",
            "could not translate host name",
            "no route to host",
            "network is unreachable",
            "connection to server",
        )
    ):
        return f"cannot reach the PostgreSQL server ({text}); is it running and reachable?"
    if (
        "terminating connection" in lowered
        or "server closed the connection" in lowered
        or ("consuming input failed" in lowered)
    ):
        return (
            f"the connection to the PostgreSQL server was lost ({text}); the step in flight "
            "was not recorded. Run the command again once the server is back"
        )
    if "statement timeout" in lowered:
        return f"the server did not answer within {STATEMENT_TIMEOUT} ({text})"
    if "permission denied" in lowered:
        return f"{text}; the database user needs to own, or be granted, the schema rune_sync"
    return text


def scrub(text: str, target: StateTarget) -> str:
    """``text`` with the password of ``target`` (URL or PGPASSWORD) replaced by ``***``."""
    text = text.replace(target.location, mask_url(target.location))
    for secret in (password_of(target.location), os.environ.get("PGPASSWORD")):
        if secret:
            text = text.replace(secret, MASK)
    return text
