"""copy_state: a whole state copied between backends, verified, never over another state."""

from __future__ import annotations

import pytest

from rune_sync.state import MigrationRefusedError, copy_state, export, open_backend
from rune_sync.testing.state import SOURCE, contract_record


def _filled(target, *indexes: int) -> None:
    with open_backend(target, create=True) as state:
        for i in indexes:
            state.put(contract_record(i))
        state.bump_serial(source=SOURCE)


def _document(target, name: str = "default") -> str:
    with open_backend(target, create=False, name=name) as state:
        return export.dumps(export.pull(state))


def test_a_copy_keeps_lineage_serial_source_and_records(tmp_path, pg_url):
    _filled(tmp_path / "a.db", 1, 2, 3)
    with open_backend(tmp_path / "a.db", create=False) as a, open_backend(pg_url, create=True) as b:
        copied = copy_state(a, b)
        assert (copied.count, copied.serial) == (3, 1)
        assert copied.lineage == a.meta().lineage == b.meta().lineage
        assert copied.digest.startswith("sha256:")
    assert _document(pg_url) == _document(tmp_path / "a.db")


def test_a_destination_of_another_lineage_is_refused_unless_forced(tmp_path):
    _filled(tmp_path / "a.db", 1)
    _filled(tmp_path / "b.db", 2)
    before = _document(tmp_path / "b.db")
    with (
        open_backend(tmp_path / "a.db", create=False) as a,
        open_backend(tmp_path / "b.db", create=False) as b,
    ):
        with pytest.raises(MigrationRefusedError, match="another state"):
            copy_state(a, b)
        assert export.dumps(export.pull(b)) == before
        copy_state(a, b, force=True)
    assert _document(tmp_path / "b.db") == _document(tmp_path / "a.db")


def test_a_newer_destination_of_the_same_lineage_is_refused_unless_forced(tmp_path):
    _filled(tmp_path / "a.db", 1)
    with (
        open_backend(tmp_path / "a.db", create=False) as a,
        open_backend(tmp_path / "b.db", create=True) as b,
    ):
        copy_state(a, b)
        b.put(contract_record(9))
        b.bump_serial()
        with pytest.raises(MigrationRefusedError, match="newer than the source"):
            copy_state(a, b)
        copy_state(a, b, force=True)
        assert list(b.load_all()) == [contract_record(1).address]


def test_copying_onto_an_identical_copy_is_accepted(tmp_path):
    _filled(tmp_path / "a.db", 1)
    with (
        open_backend(tmp_path / "a.db", create=False) as a,
        open_backend(tmp_path / "b.db", create=True) as b,
    ):
        first = copy_state(a, b)
        assert copy_state(a, b) == first
