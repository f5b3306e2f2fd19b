"""The PostgreSQL state: the backend contract against a real server, plus what only a
shared database promises (named states, schema versions, refused split-brain writes,
connection hygiene)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rune_sync.testing.state import StateBackendContract
from tests.pgserver import PgServer


class TestPostgresContract(StateBackendContract):
    lock_release_timeout = 10.0

    @pytest.fixture(autouse=True)
    def _server(self, pg_server: PgServer) -> None:
        self.server = pg_server

    def state_target(self, tmp_path: Path) -> str:
        return self.server.fresh_url()
