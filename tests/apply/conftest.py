"""The ``env`` fixture: a volume root, a locked SQLite state and the real local driver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rune_sync.state.model import LockInfo
from tests.apply import Env, make_env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    world = make_env(tmp_path)
    info = LockInfo.for_this_process(command="pytest apply", now=datetime.now(UTC))
    with world.backend, world.backend.lock(info, timeout=0):
        yield world
