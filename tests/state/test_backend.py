"""open_backend: which backend a target selects, and what it refuses up front."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from rune_sync.errors import StateError
from rune_sync.state import open_backend
from rune_sync.state.postgres import PostgresState
from rune_sync.state.sqlite import SqliteState
from rune_sync.state.target import StateTarget
from tests.pgserver import PASSWORD, PgServer


def test_a_postgresql_url_opens_the_postgresql_backend(pg_server: PgServer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = pg_server.fresh_url()
    for spelled in (url, url.replace("postgresql://", "postgres://", 1)):
        with open_backend(spelled, create=True) as state:
            assert isinstance(state, PostgresState)
            assert PASSWORD not in state.location
            assert "***" in state.location
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_server_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        url = f"postgresql://rune:{PASSWORD}@127.0.0.1:{port}/rune"
        with pytest.raises(StateError, match="cannot reach the PostgreSQL server") as caught:
            open_backend(url, create=True)
    assert PASSWORD not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_psycopg_is_explained_with_the_install_command(tmp_path):
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "from rune_sync.state import open_backend\n"
        "from rune_sync.errors import StateError\n"
        "try:\n"
        "    open_backend('postgresql://u@127.0.0.1:1/db', create=True)\n"
        "except StateError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert "pip install 'rune-sync[postgres]'" in out.stdout


def test_a_path_given_as_text_or_path_opens_sqlite(tmp_path):
    for target in (str(tmp_path / "a.db"), tmp_path / "b.db"):
        with open_backend(target, create=True) as state:
            assert isinstance(state, SqliteState)
            assert state.location == str(target)


def test_a_sqlite_file_refuses_a_state_name_other_than_default(tmp_path):
    path = tmp_path / "a.db"
    with pytest.raises(StateError, match="holds one state"):
        open_backend(path, create=True, name="staging")
    with pytest.raises(StateError, match="holds one state"):
        open_backend(StateTarget(location=str(path), name="staging"), create=True)
    assert not path.exists()
    with open_backend(path, create=True, name="default") as state:
        assert isinstance(state, SqliteState)


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 129, "ü"])
def test_an_invalid_state_name_is_refused(name, tmp_path):
    with pytest.raises(StateError, match="state name"):
        open_backend(tmp_path / "a.db", create=True, name=name)


def test_an_empty_target_is_refused():
    with pytest.raises(StateError, match="empty"):
        open_backend("", create=True)
