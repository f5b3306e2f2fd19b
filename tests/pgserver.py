"""A throwaway PostgreSQL server for the tests: ``initdb`` into a temp dir, ``pg_ctl start``.

Owned here: :class:`PgServer` and the session fixture ``pg_server`` (registered for every
test folder by ``pytest_plugins`` in ``tests/conftest.py``). The server listens on
127.0.0.1 at a free port (password auth, scram) and on a Unix socket in its directory
(trust, for the fixture's own administration). As root, ``initdb``/``pg_ctl`` run as the
``postgres`` user. ``fsync`` is off (the tests crash clients and the server process,
never the machine); ``synchronous_commit`` stays on, so a server crash loses no commit.
Stopped (``pg_ctl stop -m immediate``) at session end.

Tests that need it are skipped, with the reason, only when the PostgreSQL binaries are
not installed — and fail instead under ``CI=true`` (``.ci/run`` installs them).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "rune"
PASSWORD = "canary-Pw-7f3e9b1d"
"""The test role's password: a canary no output may ever contain."""


def find_bindir() -> Path | None:
    """Where ``initdb``/``pg_ctl`` live (Debian keeps them off PATH)."""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if out and (Path(out) / "initdb").exists():
            return Path(out)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgServer:
    """A running server; :meth:`url` names a database on it."""

    bindir: Path
    root: Path
    port: int
    as_postgres: bool
    durable: bool = False
    """Keep fsync on (the benchmarks); the tests turn it off."""

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def sockdir(self) -> Path:
        return self.root / "sock"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> None:
        options = (
            f"-k {self.sockdir} -p {self.port} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c shared_buffers=32MB"
        )
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        log = self.root / "server.log"
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(log), "-w", "-o", options, "start")

    def stop(self, *, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        """Stop at once (dropping every connection) and start again."""
        self.stop(mode="immediate")
        self.start()

    def admin(self, sql: str, *, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser over the socket; its output."""
        import psycopg

        with psycopg.connect(
            host=str(self.sockdir),
            port=self.port,
            user="postgres",
            dbname=database,
            autocommit=True,
        ) as conn:
            cur = conn.execute(sql)  # type: ignore[arg-type]  # test-only literal SQL
            return "" if cur.description is None else str(cur.fetchall())

    def url(self, database: str, *, password: str = PASSWORD, user: str = USER) -> str:
        quoted = urllib.parse.quote(password, safe="")
        return f"postgresql://{user}:{quoted}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database owned by the test role; its name."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.admin(f'CREATE DATABASE "{name}" OWNER {USER}')
        return name

    def fresh_url(self) -> str:
        return self.url(self.create_database())


def start_server(*, durable: bool = False) -> PgServer:
    """initdb and start a server in a new temp dir (stop it, remove ``root`` after)."""
    bindir = find_bindir()
    if bindir is None:
        why = "PostgreSQL is not installed (no initdb; `apt-get install postgresql`)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}, and CI must run the PostgreSQL tests (.ci/run installs it)")
        pytest.skip(why)
    as_postgres = os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="rune-sync-pg-"))
    server = PgServer(
        bindir=bindir, root=root, port=_free_port(), as_postgres=as_postgres, durable=durable
    )
    server.sockdir.mkdir()
    if as_postgres:
        shutil.chown(root, "postgres")
        shutil.chown(server.sockdir, "postgres")
    server._run(
        "initdb",
        "-D",
        str(server.datadir),
        "-U",
        "postgres",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C",
    )
    server.start()
    server.admin(f"CREATE ROLE {USER} LOGIN CREATEDB PASSWORD '{PASSWORD}'")
    return server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (started on first use)."""
    server = start_server()
    try:
        yield server
    finally:
        server.stop(mode="immediate")
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A URL of a fresh, empty database (with the canary password in it)."""
    return pg_server.fresh_url()
