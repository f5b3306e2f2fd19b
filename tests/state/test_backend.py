"""open_backend: which backend a target selects, and what it refuses up front."""

from __future__ import annotations

import pytest

from rune_sync.errors import StateError
from rune_sync.state import open_backend
from rune_sync.state.sqlite import SqliteState


@pytest.mark.parametrize("url", ["postgresql://user@db.example.com/rune", "postgres://db/rune"])
def test_a_postgresql_url_is_refused_clearly(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StateError, match="PostgreSQL state is not available yet"):
        open_backend(url, create=True)
    assert list(tmp_path.iterdir()) == []


def test_a_path_given_as_text_or_path_opens_sqlite(tmp_path):
    for target in (str(tmp_path / "a.db"), tmp_path / "b.db"):
        with open_backend(target, create=True) as state:
            assert isinstance(state, SqliteState)
            assert state.location == str(target)


def test_an_empty_target_is_refused():
    with pytest.raises(StateError, match="empty"):
        open_backend("", create=True)
