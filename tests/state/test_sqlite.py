"""The SQLite state: the backend contract, plus what only a file state promises.

File modes, WAL, refusing files that are not ours without touching them, refusing a
newer schema, migrating an older one in one transaction, damage detection, and that one
step is one small write.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rune_sync.errors import StateCorruptError, StateError
from rune_sync.state import DEFAULT_PATH, StateNotFoundError, open_backend, schema
from rune_sync.state import sqlite as sqlite_state
from rune_sync.state.lock import sidecar_path
from rune_sync.state.model import LockInfo, StateRecord, format_timestamp
from rune_sync.testing.state import (
    StateBackendContract,
    class_record,
    contract_record,
    snapshot_record,
)


class TestSqliteContract(StateBackendContract):
    def state_target(self, tmp_path: Path) -> str:
        return str(tmp_path / "state.db")


def _info(command: str = "test") -> LockInfo:
    from datetime import UTC, datetime

    return LockInfo.for_this_process(command=command, now=datetime.now(UTC))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask() -> Iterator[Callable[[int], int]]:
    """Set the process umask for one test, restoring it afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


# --------------------------------------------------------------------------- creating


def test_default_path_is_dot_rune_sync_state_db():
    assert Path(".rune-sync/state.db") == DEFAULT_PATH


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077, 0o277])
def test_state_and_companion_files_are_mode_0600_whatever_the_umask(tmp_path, umask, mask):
    umask(mask)
    path = tmp_path / "state.db"
    with open_backend(path, create=True) as state, state.lock(_info(), timeout=0):
        state.put(contract_record(1))
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm"), sidecar_path(path)]
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}


def test_parent_directories_are_created(tmp_path):
    path = tmp_path / "deep" / "er" / "state.db"
    with open_backend(path, create=True) as state:
        assert state.meta().serial == 0
    assert path.is_file()


def test_the_state_is_in_wal_mode(tmp_path):
    path = tmp_path / "state.db"
    with open_backend(path, create=True):
        with sqlite3.connect(path) as probe:
            mode = probe.execute("PRAGMA journal_mode").fetchone()[0]
        probe.close()
    assert mode == "wal"


def test_an_empty_file_becomes_a_new_state(tmp_path):
    path = tmp_path / "state.db"
    path.write_bytes(b"")
    path.chmod(0o644)
    with open_backend(path, create=True) as state:
        state.put(contract_record(1))
    assert _mode(path) == 0o600
    with open_backend(path, create=False) as state:
        assert list(state.load_all()) == [contract_record(1).address]


def test_an_sqlite_database_without_tables_becomes_a_new_state(tmp_path):
    path = tmp_path / "state.db"
    _sqlite_file(path, "CREATE TABLE t (x); DROP TABLE t;")
    assert path.stat().st_size > 0
    with open_backend(path, create=True) as state:
        assert state.meta().serial == 0


def test_an_empty_file_is_no_state_without_create_and_stays_untouched(tmp_path):
    path = tmp_path / "state.db"
    path.write_bytes(b"")
    before = _snapshot(tmp_path)
    with pytest.raises(StateNotFoundError, match="is empty"):
        open_backend(path, create=False)
    assert _snapshot(tmp_path) == before


def test_a_missing_state_without_create_writes_nothing(tmp_path):
    with pytest.raises(StateNotFoundError, match="does not exist"):
        open_backend(tmp_path / "sub" / "state.db", create=False)
    assert list(tmp_path.iterdir()) == []


def test_nothing_is_written_under_dot_rune_sync_when_a_path_is_given(tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    state = open_backend(tmp_path / "elsewhere" / "s.db", create=True)
    with state, state.lock(_info(), timeout=0):
        state.put(contract_record(1))
        state.bump_serial()
    assert list(cwd.iterdir()) == []


def test_a_relative_default_path_is_created_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open_backend(DEFAULT_PATH, create=True) as state:
        assert state.location == ".rune-sync/state.db"
    assert (tmp_path / ".rune-sync" / "state.db").is_file()


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(StateError, match="is a directory"):
        open_backend(tmp_path, create=True)


def test_two_commands_creating_one_state_at_once_agree_on_its_lineage(tmp_path):
    path = tmp_path / "state.db"
    start = threading.Barrier(4)
    lineages: list[str] = []
    failures: list[BaseException] = []

    def create() -> None:
        try:
            start.wait(10)
            with open_backend(path, create=True) as state:
                lineages.append(state.meta().lineage)
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    assert len(lineages) == 4
    assert len(set(lineages)) == 1


def test_opening_waits_for_a_writer_while_switching_a_new_state_to_wal(tmp_path):
    # The moment a concurrent command is in: the schema of a new state is written (still
    # in rollback-journal mode) and another connection holds the write lock. The WAL
    # switch needs that lock through an upgrade SQLite's busy_timeout does not cover.
    path = tmp_path / "state.db"
    open_backend(path, create=True).close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        assert conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0] == "delete"
    failures: list[BaseException] = []
    lineages: list[str] = []

    def open_it() -> None:
        try:
            with open_backend(path, create=True) as state:
                lineages.append(state.meta().lineage)
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        writer.execute("BEGIN IMMEDIATE")
        opener = threading.Thread(target=open_it)
        opener.start()
        opener.join(0.5)  # an opener that does not wait has failed by now
        writer.execute("COMMIT")
        opener.join(30)
    finally:
        writer.close()
    assert failures == []
    assert len(lineages) == 1
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_state_caught_mid_checkpoint_is_opened_not_taken_for_a_truncated_one(tmp_path):
    # Another command closing the state checkpoints its -wal into the file, page 1 first:
    # for a moment page 1 counts pages the file does not have yet. Built here as that
    # moment: a file with page 1 from the WAL, and the WAL beside it.
    source, moment = tmp_path / "source", tmp_path / "moment"
    source.mkdir()
    moment.mkdir()
    path = source / "state.db"
    open_backend(path, create=True).close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as reader:
        reader.execute("PRAGMA wal_autocheckpoint = 0")
        reader.execute("SELECT count(*) FROM meta").fetchall()  # keeps the -wal on close
        with open_backend(path, create=True) as state, state.transaction() as tx:
            for i in range(60):
                tx.put(contract_record(i))
        main = bytearray(path.read_bytes())
        wal = Path(f"{path}-wal").read_bytes()
    page_size = int.from_bytes(wal[8:12], "big")
    frames = range(32, len(wal) - page_size - 23, 24 + page_size)
    page_one = [
        wal[at + 24 : at + 24 + page_size] for at in frames if wal[at : at + 4] == b"\0\0\0\1"
    ]
    assert int.from_bytes(page_one[-1][28:32], "big") * page_size > len(main)
    main[:page_size] = page_one[-1]
    (moment / "state.db").write_bytes(bytes(main))
    Path(f"{moment / 'state.db'}-wal").write_bytes(wal)

    with open_backend(moment / "state.db", create=False) as state:
        assert len(list(state.records())) == 60


# --------------------------------------------------------------------------- refusing


def _snapshot(directory: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file below ``directory``: content, mtime and mode."""
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_mode)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _sqlite_file(path: Path, script: str, *, wal: bool = False) -> None:
    conn = sqlite3.connect(path)
    try:
        if wal:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(script)
        conn.commit()
    finally:
        conn.close()


def _state_with_records(path: Path, count: int) -> None:
    with open_backend(path, create=True) as state, state.transaction() as tx:
        for i in range(count):
            tx.put(contract_record(i))


def _text(path: Path) -> None:
    path.write_text("volumes:\n  - name: web\n", encoding="utf-8")


def _binary(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * 40)


def _sqlite_header_then_garbage(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)


def _other_tables(path: Path) -> None:
    _sqlite_file(path, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);")


def _other_tables_wal(path: Path) -> None:
    _sqlite_file(path, "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('x');", wal=True)


def _other_tables_wal_open(path: Path) -> None:
    """A foreign WAL database whose last writes still sit in its -wal (a live app)."""
    _sqlite_file(path, "CREATE TABLE a (x);", wal=True)
    keeper = sqlite3.connect(path)
    keeper.execute("PRAGMA wal_autocheckpoint = 0")
    keeper.execute("CREATE TABLE b (y)")
    keeper.commit()
    # Copy the files while the -wal holds data, then let the connection go.
    files = {s: Path(f"{path}{s}").read_bytes() for s in ("", "-wal")}
    keeper.close()
    for suffix, data in files.items():
        Path(f"{path}{suffix}").write_bytes(data)
    Path(f"{path}-shm").unlink(missing_ok=True)


def _empty_db_of_another_application(path: Path) -> None:
    _sqlite_file(path, "PRAGMA application_id = 1234; CREATE TABLE t (x); DROP TABLE t;")


def _rune_sync_marked_without_tables(path: Path) -> None:
    _sqlite_file(
        path, f"PRAGMA application_id = {sqlite_state.APPLICATION_ID}; CREATE TABLE meta (k);"
    )


def _truncated_state(path: Path) -> None:
    _state_with_records(path, 2000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _state_cut_inside_a_page(path: Path) -> None:
    _state_with_records(path, 50)
    data = path.read_bytes()
    path.write_bytes(data[:-100])


def _damaged_state(path: Path) -> None:
    _state_with_records(path, 2000)
    data = bytearray(path.read_bytes())
    page = 4096
    for offset in range(3 * page, len(data) - page, 7 * page):
        data[offset : offset + page] = bytes([0xA5]) * page
    path.write_bytes(bytes(data))


FOREIGN = {
    "text file": _text,
    "random binary": _binary,
    "sqlite header then garbage": _sqlite_header_then_garbage,
    "sqlite db with other tables": _other_tables,
    "sqlite WAL db with other tables": _other_tables_wal,
    "sqlite WAL db with data in its -wal": _other_tables_wal_open,
    "empty db of another application": _empty_db_of_another_application,
    "rune-sync mark without tables": _rune_sync_marked_without_tables,
    "truncated state": _truncated_state,
    "state cut inside a page": _state_cut_inside_a_page,
    "damaged state": _damaged_state,
}


@pytest.mark.parametrize("create", [True, False], ids=["create", "open"])
@pytest.mark.parametrize("make", FOREIGN.values(), ids=FOREIGN.keys())
def test_a_file_that_is_not_a_rune_sync_state_is_refused_unmodified(tmp_path, make, create):
    folder = tmp_path / "d"
    folder.mkdir()
    path = folder / "state.db"
    make(path)
    before = _snapshot(folder)
    with pytest.raises(StateCorruptError, match="unmodified") as caught:
        open_backend(path, create=create)
    assert str(path) in str(caught.value)
    assert _snapshot(folder) == before


def test_a_state_written_by_a_newer_rune_sync_is_refused_unmodified(tmp_path):
    path = tmp_path / "state.db"
    _state_with_records(path, 3)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    before = _snapshot(tmp_path)
    for create in (True, False):
        with pytest.raises(StateError, match="written by a newer rune-sync") as caught:
            open_backend(path, create=create)
        assert "schema version 99" in str(caught.value)
        assert not isinstance(caught.value, StateCorruptError)
    assert _snapshot(tmp_path) == before


def test_sqlite_errors_after_opening_become_state_errors(tmp_path):
    path = tmp_path / "state.db"
    state = open_backend(path, create=True)
    state.close()
    with pytest.raises(StateError, match="closed"):
        state.load_all()
    state.close()  # closing twice is fine


def test_a_state_left_by_a_killed_writer_is_inspected_through_its_wal(tmp_path):
    # The -wal of a crashed writer holds committed steps; reading the main file alone
    # would see an older state.
    path = tmp_path / "state.db"
    state = open_backend(path, create=True)
    state.put(contract_record(1))
    files = {s: Path(f"{path}{s}").read_bytes() for s in ("", "-wal")}
    state.close()
    for suffix, data in files.items():
        Path(f"{path}{suffix}").write_bytes(data)
    with open_backend(path, create=False) as reopened:
        assert list(reopened.load_all()) == [contract_record(1).address]


# --------------------------------------------------------------------------- writing


def test_one_put_appends_a_few_pages_not_the_whole_state(tmp_path):
    path = tmp_path / "state.db"
    _state_with_records(path, 3000)
    wal = Path(f"{path}-wal")
    with open_backend(path, create=False) as state:
        page_size = sqlite3.connect(path).execute("PRAGMA page_size").fetchone()[0]
        with sqlite3.connect(path) as other:
            other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        other.close()
        assert wal.stat().st_size == 0
        state.put(contract_record(1500).with_changes(now=contract_record(0).created_at, attempts=4))
        frames = (wal.stat().st_size - 32) // (24 + page_size)
    assert path.stat().st_size > 100 * page_size  # the state is far bigger than the write
    assert 1 <= frames <= 6


def test_put_of_a_record_with_a_non_json_spec_is_refused_before_storage(tmp_path):
    with pytest.raises(ValueError, match=r"spec\.when"):
        contract_record(1).with_changes(now=contract_record(1).created_at, spec={"when": object()})  # type: ignore[dict-item]


# --------------------------------------------------------------------------- migrating

_VERSION_ONE_COLUMNS = (
    "address, kind, status, retained, handle, driver, spec, spec_digest, bound_claim, "
    "owner_service, attempts, failed_runs, failure_message, driver_parameters, created_at, "
    "updated_at"
)


def _version_one_records() -> list[StateRecord]:
    records = [contract_record(i) for i in range(6)] + [class_record(), snapshot_record()]
    return [dataclasses.replace(r, intent=None) for r in records]


def _version_one_state(path: Path, records: list[StateRecord]) -> str:
    """A state as a rune-sync of schema version 1 left it; returns its lineage.

    Its opening (``_initialise``: the version 1 statements, the mark and the meta rows in
    one transaction, then WAL mode) and its writes, done with sqlite3 alone.
    """
    lineage = "0b6f4c8e-2a51-4c61-9d0e-7f3a5b2c1d40"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for statement in schema.MIGRATIONS[0].statements:
            conn.execute(statement)
        conn.execute(f"PRAGMA application_id = {sqlite_state.APPLICATION_ID}")
        conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [
                ("lineage", lineage),
                ("serial", "4"),
                ("source", ""),
                ("schema_version", "1"),
                ("created_by", "rune-sync 0.1.0"),
                ("created_at", "2025-01-01T00:00:00.000000Z"),
            ],
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executemany(
            f"INSERT INTO records ({_VERSION_ONE_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    str(r.address),
                    r.kind.value,
                    r.status,
                    int(r.retained),
                    r.handle,
                    r.driver,
                    r.spec_json,
                    r.spec_digest,
                    r.bound_claim,
                    r.owner_service,
                    r.attempts,
                    r.failed_runs,
                    r.failure_message,
                    json.dumps(dict(r.driver_parameters), sort_keys=True, ensure_ascii=False),
                    format_timestamp(r.created_at),
                    format_timestamp(r.updated_at),
                )
                for r in records
            ],
        )
    finally:
        conn.close()
    path.chmod(0o600)
    return lineage


def _raw(path: Path) -> tuple[str, list[str], list[tuple[object, ...]]]:
    """The stored schema version, the columns of ``records`` and its rows, read directly."""
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as conn:
        (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        columns = [str(row[1]) for row in conn.execute("PRAGMA table_info(records)")]
        rows = conn.execute("SELECT * FROM records ORDER BY address").fetchall()
    return str(version), columns, rows


def test_the_version_one_builder_makes_what_version_one_code_read(tmp_path):
    path = tmp_path / "state.db"
    _version_one_state(path, _version_one_records())
    version, columns, rows = _raw(path)
    assert version == "1"
    assert columns == list(schema.RECORD_COLUMNS[:-1])
    assert len(rows) == len(_version_one_records())


@pytest.mark.parametrize("create", [False, True], ids=["read-only open", "open to write"])
def test_a_version_one_state_is_migrated_as_it_opens_and_reads_with_nothing_in_flight(
    tmp_path, create
):
    path = tmp_path / "state.db"
    records = _version_one_records()
    lineage = _version_one_state(path, records)
    with open_backend(path, create=create) as state:
        assert state.load_all() == {r.address: r for r in records}
        assert {r.intent for r in state.records()} == {None}
        meta = state.meta()
        assert (meta.lineage, meta.serial, meta.source) == (lineage, 4, None)
        assert meta.schema_version == schema.SCHEMA_VERSION == 2
        assert meta.created_by == "rune-sync 0.1.0"
    version, columns, _ = _raw(path)
    assert (version, columns) == ("2", list(schema.RECORD_COLUMNS))


def test_a_migrated_version_one_state_takes_writes_with_intents(tmp_path):
    path = tmp_path / "state.db"
    records = _version_one_records()
    _version_one_state(path, records)
    in_flight = records[1].with_changes(now=records[1].updated_at, intent="expand")
    with open_backend(path, create=False):  # what plan does: migrated here
        pass
    with open_backend(path, create=True) as state, state.lock(_info(), timeout=0):
        state.put(in_flight)
        state.put(contract_record(99))
        assert state.bump_serial().serial == 5
    with open_backend(path, create=False) as state:
        assert state.get(in_flight.address) == in_flight
        assert state.get(contract_record(99).address) == contract_record(99)
        assert state.get(records[2].address) == records[2]
        assert state.meta().schema_version == 2


def test_a_failed_migration_leaves_the_version_one_state_as_it_was(tmp_path):
    # A trigger makes recording the new version fail after the column was added: the
    # whole migration must roll back, not leave a version 1 state with a new column.
    path = tmp_path / "state.db"
    records = _version_one_records()
    _version_one_state(path, records)
    _sqlite_file(
        path,
        "CREATE TRIGGER no_meta_updates BEFORE UPDATE ON meta "
        "BEGIN SELECT RAISE(ABORT, 'meta is frozen'); END;",
    )
    before = _raw(path)
    for create in (False, True):
        with pytest.raises(StateError, match="meta is frozen") as caught:
            open_backend(path, create=create)
        assert str(path) in str(caught.value)
        assert _raw(path) == before
    assert before[:2] == ("1", list(schema.RECORD_COLUMNS[:-1]))
    _sqlite_file(path, "DROP TRIGGER no_meta_updates;")
    with open_backend(path, create=False) as state:
        assert state.load_all() == {r.address: r for r in records}
    assert _raw(path)[:2] == ("2", list(schema.RECORD_COLUMNS))


def test_commands_opening_a_version_one_state_at_once_migrate_it_once(tmp_path):
    path = tmp_path / "state.db"
    records = _version_one_records()
    _version_one_state(path, records)
    start = threading.Barrier(4)
    loaded: list[int] = []
    failures: list[BaseException] = []

    def open_and_read() -> None:
        try:
            start.wait(10)
            with open_backend(path, create=False) as state:
                loaded.append(len(state.load_all()))
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=open_and_read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    assert loaded == [len(records)] * 4
    assert _raw(path)[:2] == ("2", list(schema.RECORD_COLUMNS))


def test_a_state_of_the_next_schema_version_is_refused_unmodified(tmp_path):
    path = tmp_path / "state.db"
    _state_with_records(path, 3)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'",
            (str(schema.SCHEMA_VERSION + 1),),
        )
    conn.close()
    before = _snapshot(tmp_path)
    for create in (True, False):
        with pytest.raises(StateError, match=f"schema version {schema.SCHEMA_VERSION + 1}"):
            open_backend(path, create=create)
    assert _snapshot(tmp_path) == before
