"""The file lock of a SQLite state: its sidecar, unknown and dead holders, force-unlock."""

from __future__ import annotations

import fcntl
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rune_sync.state import StateLockHeldError, open_backend
from rune_sync.state.lock import sidecar_path
from rune_sync.state.model import LockInfo
from rune_sync.testing.state import Holder


def _info(command: str = "test") -> LockInfo:
    return LockInfo.for_this_process(command=command, now=datetime.now(UTC))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class _OtherProgram:
    """Another process's view of the sidecar: a flock held without a record."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self) -> _OtherProgram:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def test_the_lock_sidecar_records_the_holder_and_is_emptied_on_release(tmp_path):
    path = tmp_path / "state.db"
    info = _info("rune-sync apply")
    with open_backend(path, create=True) as state:
        with state.lock(info, timeout=0):
            sidecar = sidecar_path(path)
            assert sidecar.name == "state.db.lock"
            assert LockInfo.from_json(json.loads(sidecar.read_bytes())) == info
            assert _mode(sidecar) == 0o600
        assert sidecar.read_bytes() == b""


def test_a_holder_that_has_not_recorded_itself_is_named_as_unknown(tmp_path):
    path = tmp_path / "state.db"
    with open_backend(path, create=True) as state:
        sidecar = sidecar_path(path)
        sidecar.touch()
        # Another process's view of a holder between its flock and its record.
        fd = os.open(sidecar, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            unknown = state.lock_info()
            assert unknown is not None
            assert not unknown.is_known
            with pytest.raises(StateLockHeldError, match="not recorded itself") as caught:
                state.acquire(_info(), timeout=0)
            assert caught.value.holder is None
            with pytest.raises(StateLockHeldError):
                state.force_unlock()
        finally:
            os.close(fd)
        with state.lock(_info(), timeout=0):
            pass


def test_force_unlock_clears_the_record_a_killed_holder_left(tmp_path):
    path = tmp_path / "state.db"
    with open_backend(path, create=True) as state, Holder(str(path)) as holder:
        first = holder.locked()
        holder.kill()
        assert sidecar_path(path).read_bytes() != b""  # the record outlives its holder
        assert state.lock_info() is None  # … but names nobody
        assert state.force_unlock(first.id) == first
        assert sidecar_path(path).read_bytes() == b""


def test_force_unlock_replaces_the_sidecar_with_a_0600_file(tmp_path):
    path = tmp_path / "state.db"
    with open_backend(path, create=True) as state, Holder(str(path), host="far.invalid") as holder:
        first = holder.locked()
        old_inode = sidecar_path(path).stat().st_ino
        state.force_unlock(first.id)
        assert sidecar_path(path).stat().st_ino != old_inode
        assert _mode(sidecar_path(path)) == 0o600
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
        holder.release()


def test_a_negative_timeout_is_a_programming_error(tmp_path):
    with open_backend(tmp_path / "s.db", create=True) as state, pytest.raises(ValueError):
        state.acquire(_info(), timeout=-1)


def test_a_record_left_by_a_dead_holder_is_not_blamed_for_a_new_lock(tmp_path):
    path = tmp_path / "state.db"
    with open_backend(path, create=True) as state, Holder(str(path)) as holder:
        dead = holder.locked()
        holder.kill()
        with _OtherProgram(sidecar_path(path)):
            with pytest.raises(StateLockHeldError) as caught:
                state.acquire(_info(), timeout=0)
            assert caught.value.holder is None
            assert str(dead.pid) not in str(caught.value)
            info = state.lock_info()
            assert info is not None
            assert not info.is_known
