"""The backend contract must catch broken backends, or passing it proves nothing.

Each backend below breaks one promise on purpose (deliberately faulty implementations,
not mocks); the matching contract test must fail on it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from rune_sync.spec.model import Address
from rune_sync.state.model import LockInfo, SourceInfo, StateMeta, StateRecord
from rune_sync.state.sqlite import SqliteState
from rune_sync.testing.state import StateBackendContract


class _DeleteKeepsTheRecord(SqliteState):
    def delete(self, address: Address) -> bool:
        return True


class _SerialNeverMoves(SqliteState):
    def bump_serial(self, *, source: SourceInfo | None = None) -> StateMeta:
        return self.meta()


class _ResolvesSecrets(SqliteState):
    def put(self, record: StateRecord) -> None:
        params = {
            k: "resolved-value" if v.startswith("secret:") else v
            for k, v in record.driver_parameters.items()
        }
        super().put(replace(record, driver_parameters=params))


class _ForgetsRetained(SqliteState):
    def put(self, record: StateRecord) -> None:
        super().put(replace(record, retained=False))


class _ForgetsIntent(SqliteState):
    def put(self, record: StateRecord) -> None:
        super().put(replace(record, intent=None))


class _NeverClearsIntent(SqliteState):
    def put(self, record: StateRecord) -> None:
        stored = self.get(record.address)
        if record.intent is None and stored is not None:
            record = replace(record, intent=stored.intent)
        super().put(record)


class _LockIsNotExclusive(SqliteState):
    def acquire(self, info: LockInfo, *, timeout: float = 0.0) -> None:
        pass

    @contextlib.contextmanager
    def lock(self, info: LockInfo, *, timeout: float = 0.0) -> Iterator[LockInfo]:
        yield info


class _NoTransactions(SqliteState):
    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqliteState]:
        yield self


class _FaultyContract(StateBackendContract):
    def __init__(self, backend_class: type[SqliteState]) -> None:
        self.backend_class = backend_class

    def state_target(self, tmp_path: Path) -> str:
        return str(tmp_path / "state.db")

    def open_state(self, target: str, *, create: bool = True) -> SqliteState:
        return self.backend_class.open(Path(target), create=create)


CASES = [
    (_DeleteKeepsTheRecord, "test_delete_removes_the_record_and_is_idempotent"),
    (_SerialNeverMoves, "test_bump_serial_moves_on_by_one_and_keeps_the_lineage"),
    (_ResolvesSecrets, "test_secret_references_are_stored_as_written"),
    (_ForgetsRetained, "test_retained_records_keep_their_handle_and_status"),
    (_ForgetsIntent, "test_an_intent_round_trips_and_can_be_cleared"),
    (_NeverClearsIntent, "test_an_intent_round_trips_and_can_be_cleared"),
    (_LockIsNotExclusive, "test_a_second_holder_fails_at_once_naming_the_first"),
    (_NoTransactions, "test_a_transaction_that_raises_writes_nothing"),
]


@pytest.mark.parametrize(("backend_class", "test_name"), CASES, ids=[c[0].__name__ for c in CASES])
def test_the_contract_fails_a_backend_that_breaks_its_promise(tmp_path, backend_class, test_name):
    suite = _FaultyContract(backend_class)
    with pytest.raises(AssertionError):
        getattr(suite, test_name)(tmp_path)


def test_the_same_tests_pass_on_the_real_backend(tmp_path):
    suite = _FaultyContract(SqliteState)
    for i, (_, test_name) in enumerate(CASES):
        (tmp_path / str(i)).mkdir()
        getattr(suite, test_name)(tmp_path / str(i))
