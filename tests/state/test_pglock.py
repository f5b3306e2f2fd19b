"""The PostgreSQL state's lock beyond the contract: what ``pg_locks`` says wins over the
record, and what force-unlock can and cannot end."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from rune_sync.errors import StateError
from rune_sync.state import StateLockHeldError, open_backend
from rune_sync.state.model import LockInfo, format_timestamp
from rune_sync.state.pglock import LOCK_CLASS, lock_key
from rune_sync.testing.state import Holder, contract_record
from tests.pgserver import PASSWORD, PgServer


def _info(command: str) -> LockInfo:
    return LockInfo.for_this_process(command=command, now=datetime.now(UTC))


def test_the_lock_key_depends_on_the_state_name_only():
    assert lock_key("default") == lock_key("default")
    assert lock_key("default") != lock_key("prod")
    assert 0 <= lock_key("prod") < 2**31


def test_a_session_holding_the_lock_without_a_record_is_an_unknown_holder(pg_url):
    with open_backend(pg_url, create=True) as state, psycopg.connect(pg_url) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, lock_key("default")))
        holder = state.lock_info()
        assert holder is not None and not holder.is_known
        with pytest.raises(StateLockHeldError, match="has not recorded itself") as caught:
            state.acquire(_info("second"), timeout=0)
        assert caught.value.holder is None
        with pytest.raises(StateLockHeldError):
            state.force_unlock()


def test_a_record_left_by_a_gone_session_names_nobody_and_force_unlock_clears_it(pg_url):
    stale = _info("crashed apply")
    with open_backend(pg_url, create=True) as state:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO rune_sync.locks VALUES ('default', %s, %s, %s, %s, %s, %s, 1)",
                (stale.id, stale.user, stale.host, stale.pid, stale.command,
                 format_timestamp(stale.since)),
            )  # fmt: skip
        assert state.lock_info() is None
        with state.lock(_info("next")):  # the leftover does not stand in the way
            pass
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO rune_sync.locks VALUES ('default', %s, 'u', 'h', 1, 'c', %s, 1)",
            (stale.id, format_timestamp(stale.since)),
        )
    with open_backend(pg_url, create=False) as state:
        removed = state.force_unlock(stale.id)
        assert removed is not None and removed.id == stale.id
        assert state.force_unlock() is None


def test_force_unlock_without_the_right_to_end_the_session_changes_nothing(
    pg_server: PgServer,
):
    database = pg_server.create_database()
    owner_url = pg_server.url(database)
    with open_backend(owner_url, create=True):
        pass
    role = f"other_{uuid.uuid4().hex[:8]}"
    pg_server.admin(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
    pg_server.admin(
        f"GRANT USAGE ON SCHEMA rune_sync TO {role}; "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA rune_sync TO {role}",
        database=database,
    )
    with (
        Holder(pg_server.url(database, user=role), host="elsewhere.invalid") as holder,
        open_backend(owner_url, create=False) as state,
    ):
        first = holder.locked()
        with pytest.raises(StateError, match="pg_terminate_backend") as caught:
            state.force_unlock(first.id)
        assert "superuser" in str(caught.value) and PASSWORD not in str(caught.value)
        assert state.lock_info() == first, "a refused force-unlock changed the lock"
        holder.release()


def test_one_object_can_take_and_release_the_lock_cycle_after_cycle(pg_url):
    """What a watcher does: try the lock each cycle, write, let go; another command
    gets its turn in between."""
    with open_backend(pg_url, create=True) as watcher, open_backend(pg_url, create=False) as other:
        for cycle in range(3):
            with watcher.lock(_info(f"watch cycle {cycle}"), timeout=5):
                watcher.put(contract_record(cycle))
                watcher.bump_serial()
                with pytest.raises(StateLockHeldError):
                    other.acquire(_info("apply"), timeout=0)
            with other.lock(_info("apply"), timeout=5):
                other.bump_serial()
        assert watcher.meta().serial == 6
        assert len(other.load_all()) == 3
