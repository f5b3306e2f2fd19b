"""The state package's public surface is explicit and pinned (STYLE §3.9)."""

from __future__ import annotations

import rune_sync.state

EXPECTED = [
    "DEFAULT_PATH",
    "DEFAULT_STATE_NAME",
    "InvalidStateDocument",
    "LockInfo",
    "MigrationRefusedError",
    "PushRefusedError",
    "RecordWriter",
    "SourceInfo",
    "SourceKind",
    "StateBackend",
    "StateDocument",
    "StateImporter",
    "StateLockHeldError",
    "StateLocker",
    "StateMeta",
    "StateNotFoundError",
    "StateReader",
    "StateRecord",
    "StateSnapshot",
    "StateTarget",
    "copy_state",
    "dumps",
    "loads",
    "mask_url",
    "open_backend",
    "parse",
    "pull",
    "push",
    "spec_digest",
    "statuses_for",
]


def test_the_public_names_are_pinned_and_sorted():
    assert rune_sync.state.__all__ == EXPECTED
    assert sorted(EXPECTED) == EXPECTED


def test_every_public_name_exists():
    assert [name for name in EXPECTED if not hasattr(rune_sync.state, name)] == []


def test_state_errors_belong_to_the_error_tree():
    from rune_sync import errors

    assert issubclass(rune_sync.state.StateLockHeldError, errors.StateLockedError)
    assert issubclass(rune_sync.state.StateNotFoundError, errors.StateError)
    assert issubclass(rune_sync.state.InvalidStateDocument, errors.StateError)
    assert issubclass(rune_sync.state.PushRefusedError, errors.StateError)
