"""The PostgreSQL state: the backend contract against a real server, plus what only a
shared database promises (named states, schema versions, refused split-brain writes,
connection hygiene)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from rune_sync.errors import StateError
from rune_sync.state import StateNotFoundError, open_backend, schema
from rune_sync.state.model import LockInfo
from rune_sync.testing.state import StateBackendContract, contract_record
from tests.pgserver import PgServer


class TestPostgresContract(StateBackendContract):
    lock_release_timeout = 10.0

    @pytest.fixture(autouse=True)
    def _server(self, pg_server: PgServer) -> None:
        self.server = pg_server

    def state_target(self, tmp_path: Path) -> str:
        return self.server.fresh_url()


# --------------------------------------------------------------------------- helpers


def _info(command: str = "test", *, host: str | None = None) -> LockInfo:
    info = LockInfo.for_this_process(command=command, now=datetime.now(UTC))
    return info if host is None else dataclasses.replace(info, host=host)


def _version(server: PgServer, database: str) -> str:
    return server.admin("SELECT version FROM rune_sync.schema_info", database=database)


# --------------------------------------------------------------------------- named states


def test_named_states_in_one_database_are_independent(pg_url):
    with (
        open_backend(pg_url, create=True, name="prod") as prod,
        open_backend(pg_url, create=True, name="staging") as staging,
    ):
        assert prod.meta().lineage != staging.meta().lineage
        prod.put(contract_record(1))
        staging.put(contract_record(2))
        prod.bump_serial()
        assert list(prod.load_all()) == [contract_record(1).address]
        assert list(staging.load_all()) == [contract_record(2).address]
        assert staging.meta().serial == 0
        with prod.lock(_info("prod apply")), staging.lock(_info("staging apply")):
            assert staging.lock_info() is not None and prod.lock_info() is not None
        assert "(state staging)" in staging.location


def test_a_missing_name_in_an_existing_database_is_not_found_and_not_created(pg_url):
    with open_backend(pg_url, create=True, name="prod"):
        pass
    with pytest.raises(StateNotFoundError, match="it holds: prod"):
        open_backend(pg_url, create=False, name="other")
    with pytest.raises(StateNotFoundError):
        open_backend(pg_url, create=False, name="other")


# --------------------------------------------------------------------------- schema


def test_an_older_schema_is_migrated_forward_keeping_the_records(pg_server: PgServer):
    database = pg_server.create_database()
    url = pg_server.url(database)
    first = schema.MIGRATIONS[0]
    # a version 1 database, made by hand
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        for statement in first.postgres:
            conn.execute(statement.encode())
        conn.execute("INSERT INTO rune_sync.schema_info VALUES (1, 1)")
        conn.execute(
            "INSERT INTO rune_sync.states VALUES ('default', %s, 3, '', 'old', 'then')",
            (str(uuid.uuid4()),),
        )
    with open_backend(url, create=False) as state:
        assert state.meta().schema_version == schema.SCHEMA_VERSION
        assert state.meta().serial == 3
        state.put(contract_record(1))  # the intent column exists now
        assert state.get(contract_record(1).address) == contract_record(1)
    assert _version(pg_server, database) == f"[({schema.SCHEMA_VERSION},)]"


def test_a_newer_schema_is_refused_and_left_unmodified(pg_server: PgServer):
    database = pg_server.create_database()
    url = pg_server.url(database)
    with open_backend(url, create=True) as state:
        state.put(contract_record(1))
    pg_server.admin("UPDATE rune_sync.schema_info SET version = 99", database=database)
    for create in (False, True):
        with pytest.raises(StateError, match="newer rune-sync"):
            open_backend(url, create=create)
    assert _version(pg_server, database) == "[(99,)]"


# --------------------------------------------------------------------------- split brain


def test_a_write_after_another_command_moved_the_serial_is_refused(pg_url):
    with open_backend(pg_url, create=True) as stale, open_backend(pg_url, create=False) as other:
        stale.load_all()  # what the stale writer read: serial 0
        other.put(contract_record(1))
        other.bump_serial()
        with pytest.raises(StateError, match="serial moved from 0 to 1"):
            stale.put(contract_record(2))
        with pytest.raises(StateError, match="changed under this command"):
            stale.delete(contract_record(1).address)
        with pytest.raises(StateError, match="changed under this command"):
            stale.bump_serial()
        assert list(other.load_all()) == [contract_record(1).address], "a refused write landed"
        assert other.meta().serial == 1


def test_a_holder_whose_lock_was_broken_cannot_write_any_more(pg_url):
    with open_backend(pg_url, create=True) as holder, open_backend(pg_url, create=False) as op:
        info = _info("hung apply", host="elsewhere.invalid")
        holder.acquire(info)
        holder.put(contract_record(1))
        assert op.force_unlock(info.id) == info
        with pytest.raises(StateError, match="broken by force-unlock or lost"):
            holder.put(contract_record(2))
        with op.lock(_info("new holder")):
            op.put(contract_record(3))
        assert set(op.load_all()) == {contract_record(1).address, contract_record(3).address}
        holder.release()  # its lock session is gone already: a no-op, no error


def test_taking_the_lock_reads_what_the_previous_holder_wrote(pg_url):
    with (
        open_backend(pg_url, create=True) as watcher,
        open_backend(pg_url, create=False) as applier,
    ):
        watcher.load_all()
        with applier.lock(_info("apply")):
            applier.put(contract_record(1))
            applier.bump_serial()
        with watcher.lock(_info("watch cycle")):  # a watcher's next cycle
            assert watcher.meta().serial == 1
            watcher.put(contract_record(2))  # accepted: it read serial 1 under the lock
        assert len(applier.load_all()) == 2


# --------------------------------------------------------------------------- concurrent creation


def test_commands_creating_the_schema_at_once_all_open_one_state(pg_server: PgServer):
    """Several commands meeting an empty database at the same moment: one creates the
    schema, the others wait for it and open the same state (none sees "already exists")."""
    import threading

    for _ in range(5):
        url = pg_server.fresh_url()
        barrier = threading.Barrier(4)
        lineages: list[str] = []
        errors: list[BaseException] = []

        def open_one(
            url: str = url,
            barrier: threading.Barrier = barrier,
            lineages: list[str] = lineages,
            errors: list[BaseException] = errors,
        ) -> None:
            barrier.wait()
            try:
                with open_backend(url, create=True) as backend:
                    lineages.append(backend.meta().lineage)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=open_one) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert len(lineages) == 4 and len(set(lineages)) == 1
