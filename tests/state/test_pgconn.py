"""Connections to the PostgreSQL state server: settings, and errors made readable."""

from __future__ import annotations

import pytest

from rune_sync.errors import StateError
from rune_sync.state import open_backend, pgconn
from rune_sync.state.target import StateTarget
from tests.pgserver import PASSWORD, PgServer


def test_connections_keep_alive_and_time_statements_out(pg_url):
    target = StateTarget(location=pg_url)
    conn = pgconn.connect(target)
    try:
        params = conn.info.get_parameters()
        assert params.get("keepalives") == "1"
        assert params.get("tcp_user_timeout") == "30000"
        assert params.get("connect_timeout") == "10"
        timeout = conn.execute("SHOW statement_timeout").fetchone()
        assert timeout is not None and timeout[0] == "1min"
        server_side = conn.execute(
            "SELECT current_setting('tcp_keepalives_idle'), current_setting('tcp_user_timeout')"
        ).fetchone()
        assert server_side == ("10", "30000")
        assert PASSWORD not in str(target) and "***" in str(target)
    finally:
        conn.close()


def test_settings_in_the_url_win_over_the_defaults(pg_url):
    url = f"{pg_url}?connect_timeout=3&options=-c%20statement_timeout%3D5s"
    conn = pgconn.connect(StateTarget(location=url))
    try:
        assert conn.info.get_parameters().get("connect_timeout") == "3"
        timeout = conn.execute("SHOW statement_timeout").fetchone()
        assert timeout is not None and timeout[0] == "5s"
    finally:
        conn.close()


def test_a_tls_failure_is_explained_without_the_password(pg_server: PgServer):
    url = pg_server.url(pg_server.create_database()) + "?sslmode=require"
    with pytest.raises(StateError, match="TLS connection failed") as caught:
        open_backend(url, create=True)  # the test server speaks no TLS
    assert PASSWORD not in str(caught.value) and "sslmode=require" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://rune:{PASSWORD}@[::1/db",
        f"postgresql://rune:{PASSWORD}@127.0.0.1:notaport/db",
        f"postgresql://rune:{PASSWORD}@127.0.0.1:1/db?bogus=1",
        f"postgresql://127.0.0.1:1/db?password={PASSWORD}&bogus=1",
    ],
)
def test_a_malformed_url_is_one_error_without_the_password(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StateError) as caught:
        open_backend(url, create=True)
    assert PASSWORD not in str(caught.value)
    assert "***" in str(caught.value)


def test_an_unknown_user_is_named_as_such(pg_server: PgServer):
    url = pg_server.url(pg_server.create_database(), user="nobody_here")
    with pytest.raises(StateError, match="check the user") as caught:
        open_backend(url, create=True)
    assert PASSWORD not in str(caught.value)
