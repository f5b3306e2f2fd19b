"""Schema versions and migrations: ordered, complete, and newer versions refused."""

from __future__ import annotations

import pytest

from rune_sync.errors import StateError
from rune_sync.state import schema


def test_migrations_are_numbered_one_by_one_from_one():
    assert [m.version for m in schema.MIGRATIONS] == list(range(1, len(schema.MIGRATIONS) + 1))
    assert schema.MIGRATIONS[-1].version == schema.SCHEMA_VERSION


def test_a_new_state_runs_every_migration_and_a_current_one_none():
    assert schema.pending(0) == schema.MIGRATIONS
    assert schema.pending(schema.SCHEMA_VERSION) == ()


def test_the_migrations_create_the_tables_the_backends_recognise():
    text = " ".join(s for m in schema.MIGRATIONS for s in m.statements)
    for table in schema.TABLES:
        assert f"CREATE TABLE IF NOT EXISTS {table} " in text
    for column in schema.RECORD_COLUMNS:
        assert f" {column} " in text


def test_version_two_adds_the_intent_column_to_records():
    (migration,) = schema.pending(1)
    assert migration.version == 2
    assert migration.statements == ("ALTER TABLE records ADD COLUMN intent TEXT",)
    assert schema.RECORD_COLUMNS[-1] == "intent"


def test_a_newer_version_is_refused_saying_so():
    with pytest.raises(StateError, match="written by a newer rune-sync"):
        schema.check_version(schema.SCHEMA_VERSION + 1, where="s.db")
    with pytest.raises(StateError, match="invalid schema version"):
        schema.check_version(0, where="s.db")
    schema.check_version(schema.SCHEMA_VERSION, where="s.db")
