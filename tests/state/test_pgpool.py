"""The connections a PostgreSQL state lends its threads: a transaction keeps the other
threads' writes out until it ends, and a lost connection ends the object's use."""

from __future__ import annotations

import threading

import pytest

from rune_sync.errors import StateError
from rune_sync.state import open_backend
from rune_sync.state.pgpool import POOL_SIZE
from rune_sync.testing.state import contract_record
from tests.pgserver import PgServer


def test_other_threads_writes_wait_until_a_transaction_ends(pg_url):
    with open_backend(pg_url, create=True) as state:
        started = threading.Event()
        finished = threading.Event()
        failures: list[BaseException] = []

        def write() -> None:
            try:
                started.set()
                state.put(contract_record(2))
            except BaseException as exc:  # reported below, in the test's thread
                failures.append(exc)
            finally:
                finished.set()

        with state.transaction() as tx:
            tx.put(contract_record(1))
            writer = threading.Thread(target=write)
            writer.start()
            assert started.wait(30)
            assert not finished.wait(0.3), "another thread wrote inside the transaction"
            assert tx.get(contract_record(2).address) is None
        assert finished.wait(30)
        writer.join(30)
        assert not failures, failures
        assert len(state.load_all()) == 2


def test_many_threads_share_a_bounded_number_of_connections(pg_url, pg_server: PgServer):
    database = pg_url.rsplit("/", 1)[1]
    with open_backend(pg_url, create=True) as state:
        barrier = threading.Barrier(3 * POOL_SIZE)

        def write(start: int) -> None:
            barrier.wait(30)
            for i in range(start, start + 5):
                state.put(contract_record(i))

        threads = [threading.Thread(target=write, args=(n * 5,)) for n in range(3 * POOL_SIZE)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        count = pg_server.admin(
            f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}' "
            "AND application_name = 'rune-sync'"
        )
        assert int(count.strip("[(,)]")) <= POOL_SIZE
        assert len(state.load_all()) == 3 * POOL_SIZE * 5


def test_a_lost_connection_makes_every_later_call_fail(pg_url, pg_server: PgServer):
    database = pg_url.rsplit("/", 1)[1]
    with open_backend(pg_url, create=True) as state:
        state.put(contract_record(1))
        pg_server.admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND application_name = 'rune-sync'"
        )
        with pytest.raises(StateError, match="connection to the PostgreSQL server was lost"):
            state.put(contract_record(2))
        with pytest.raises(StateError, match="lost earlier in this command"):
            state.get(contract_record(1).address)
    with open_backend(pg_url, create=False) as state:
        assert list(state.load_all()) == [contract_record(1).address]
