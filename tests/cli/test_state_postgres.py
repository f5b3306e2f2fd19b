"""``rune-sync state …`` through the real entry point against a real PostgreSQL server.

Every command runs in an empty working directory (nothing may appear in it) with the
test role's canary password in its URL; no output of any command may contain it.
Lock holders are real child processes (:class:`rune_sync.testing.state.Holder`).
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rune_sync.spec.model import Address
from rune_sync.state import StateNotFoundError, StateRecord, export, open_backend
from rune_sync.testing.state import Holder
from tests.conftest import Result, run_cli
from tests.pgserver import PASSWORD, PgServer

NOW = datetime(2025, 11, 21, 12, 0, tzinfo=UTC)


def record(address: str, *, status: str = "Bound") -> StateRecord:
    parsed = Address.parse(address)
    return StateRecord(
        address=parsed,
        spec={"name": parsed.name, "size": "1Gi", "labels": {"tier": "gold", "ü": "✓"}},
        driver="local",
        status=status,
        handle=f"/srv/{parsed.name}",
        driver_parameters={"token": "secret:api.shared/token"},
        created_at=NOW,
        updated_at=NOW,
    )


def make_state(target: str | Path, *records: StateRecord, name: str = "default") -> None:
    with open_backend(target, create=True, name=name) as backend:
        for r in records:
            backend.put(r)
        backend.bump_serial()


@pytest.fixture
def workdir(tmp_path: Path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    yield cwd
    assert list(cwd.iterdir()) == [], "a command wrote into its working directory"


@pytest.fixture
def rs(workdir: Path):
    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        result = run_cli(*args, cwd=workdir, env={"RUNE_SYNC_STATE": "", **(env or {})})
        assert PASSWORD not in result.stdout + result.stderr, "the password was printed"
        assert "Traceback" not in result.stderr, result.stderr
        return result

    return run


def test_list_show_pull_and_lock_info_read_a_postgresql_state(rs, pg_url):
    make_state(pg_url, record("volume/app/data"), record("volume/app/logs"))
    listed = rs("state", "list", "--state", pg_url)
    assert listed.code == 0, listed.stderr
    assert "volume/app/data" in listed.stdout and "volume/app/logs" in listed.stdout
    shown = rs("state", "show", "volume/app/data", "--state", pg_url, "--format", "json")
    assert json.loads(shown.stdout)["handle"] == "/srv/data"
    pulled = rs("state", "pull", "--state", pg_url)
    assert json.loads(pulled.stdout)["serial"] == 1
    info = rs("state", "lock-info", "--state", pg_url)
    assert info.code == 0 and "not locked" in info.stdout
    assert "***" in info.stdout


def test_push_then_pull_round_trips_on_postgresql(rs, pg_url, pg_server: PgServer, workdir):
    make_state(pg_url, record("volume/app/data"))
    document = rs("state", "pull", "--state", pg_url).stdout
    other = pg_server.fresh_url()
    (workdir.parent / "doc.json").write_text(document, encoding="utf-8")
    pushed = rs("state", "push", str(workdir.parent / "doc.json"), "--state", other)
    assert pushed.code == 0, pushed.stderr
    again = json.loads(rs("state", "pull", "--state", other).stdout)
    assert {**again, "serial": 0} == {**json.loads(document), "serial": 0}


def test_rm_and_retry_write_under_the_lock_and_move_the_serial(rs, pg_url):
    make_state(pg_url, record("volume/app/data"), record("volume/app/old", status="Stalled"))
    removed = rs("state", "rm", "volume/app/data", "--state", pg_url)
    assert removed.code == 0, removed.stderr
    retried = rs("state", "retry", "volume/app/old", "--state", pg_url)
    assert retried.code == 0, retried.stderr
    with open_backend(pg_url, create=False) as backend:
        assert backend.meta().serial == 3
        assert list(backend.load_all()) == [Address.parse("volume/app/old")]


def test_state_names_keep_separate_states_in_one_database(rs, pg_url):
    make_state(pg_url, record("volume/app/prod"), name="prod")
    make_state(pg_url, record("volume/app/staging"), name="staging")
    prod = rs("state", "list", "--state", pg_url, "--state-name", "prod")
    assert "volume/app/prod" in prod.stdout and "staging" not in prod.stdout
    staging = rs("state", "list", "--state", pg_url, env={"RUNE_SYNC_STATE_NAME": "staging"})
    assert "volume/app/staging" in staging.stdout and "prod" not in staging.stdout
    missing = rs("state", "pull", "--state", pg_url, "--state-name", "nope")
    assert missing.code == 1
    assert "does not exist" in missing.stderr and "prod, staging" in missing.stderr


def test_a_bad_state_name_is_a_usage_error(rs, pg_url):
    result = rs("state", "list", "--state", pg_url, "--state-name", "no spaces")
    assert result.code == 64 and "state name" in result.stderr


def test_a_sqlite_state_refuses_another_state_name(rs, tmp_path):
    path = tmp_path / "s.db"
    make_state(path, record("volume/app/data"))
    result = rs("state", "list", "--state", str(path), "--state-name", "prod")
    assert result.code == 1 and "holds one state" in result.stderr


def test_a_held_lock_names_the_holder_with_the_password_masked(rs, pg_url):
    make_state(pg_url, record("volume/app/data"))
    with Holder(pg_url, host="elsewhere.example") as holder:
        first = holder.locked()
        info = rs("state", "lock-info", "--state", pg_url, "--format", "json")
        assert json.loads(info.stdout)["holder"]["id"] == first.id
        blocked = rs("state", "rm", "volume/app/data", "--state", pg_url)
        assert blocked.code == 1
        assert "elsewhere.example" in blocked.stderr and "force-unlock" in blocked.stderr
        unasked = rs("state", "force-unlock", first.id, "--state", pg_url)
        assert unasked.code == 1 and "--yes" in unasked.stderr
        assert "ends that holder's session on the PostgreSQL server" in unasked.stderr
        broken = rs("state", "force-unlock", first.id, "--state", pg_url, "--yes")
        assert broken.code == 0, broken.stderr
        assert rs("state", "rm", "volume/app/data", "--state", pg_url).code == 0
        holder.release()  # the old holder ending must not fail or disturb anything


def test_bad_credentials_are_one_message_without_the_password(rs, pg_server: PgServer):
    wrong = "wrong-" + PASSWORD[::-1]
    url = pg_server.url(pg_server.create_database(), password=wrong)
    result = rs("state", "list", "--state", url)
    assert result.code == 1
    assert "refused the credentials" in result.stderr
    assert wrong not in result.stdout + result.stderr


def test_the_password_from_pgpassword_is_used_and_never_printed(rs, pg_server: PgServer):
    database = pg_server.create_database()
    url = f"postgresql://rune@127.0.0.1:{pg_server.port}/{database}"
    make_state(pg_server.url(database), record("volume/app/data"))
    listed = rs("state", "list", "--state", url, env={"PGPASSWORD": PASSWORD})
    assert listed.code == 0, listed.stderr
    refused = rs("state", "list", "--state", url, env={"PGPASSWORD": "not-" + PASSWORD})
    assert refused.code == 1 and "refused the credentials" in refused.stderr


def test_a_missing_database_suggests_createdb(rs, pg_server: PgServer):
    url = pg_server.url("no_such_database")
    result = rs("state", "list", "--state", url)
    assert result.code == 1
    assert "does not exist" in result.stderr and "createdb" in result.stderr


def test_a_password_in_the_query_string_is_masked_too(rs, pg_server: PgServer):
    database = pg_server.create_database()
    quoted = urllib.parse.quote(PASSWORD)
    url = f"postgresql://rune@127.0.0.1:{pg_server.port}/{database}?password={quoted}"
    make_state(url, record("volume/app/data"))
    listed = rs("state", "lock-info", "--state", url)
    assert listed.code == 0 and "password=***" in listed.stdout


# --------------------------------------------------------------------------- migrate


def test_migrate_sqlite_to_postgresql_and_back_is_byte_identical(rs, pg_url, tmp_path):
    first = tmp_path / "first.db"
    make_state(first, record("volume/app/data"), record("volume/app/logs"))
    original = rs("state", "pull", "--state", str(first)).stdout
    there = rs("state", "migrate", "--from", str(first), "--to", pg_url)
    assert there.code == 0, there.stderr
    assert "Copied 2 record(s)" in there.stdout and "Verified" in there.stdout
    assert rs("state", "pull", "--state", pg_url).stdout == original
    back = tmp_path / "back.db"
    again = rs("state", "migrate", "--from", pg_url, "--to", str(back))
    assert again.code == 0, again.stderr
    assert rs("state", "pull", "--state", str(back)).stdout == original


def test_migrate_between_state_names_in_one_database(rs, pg_url):
    make_state(pg_url, record("volume/app/data"), name="old")
    moved = rs(
        "state", "migrate", "--from", pg_url, "--from-name", "old", "--to", pg_url,
        "--to-name", "new",
    )  # fmt: skip
    assert moved.code == 0, moved.stderr
    old = rs("state", "pull", "--state", pg_url, "--state-name", "old").stdout
    new = rs("state", "pull", "--state", pg_url, "--state-name", "new").stdout
    assert old == new


def test_migrate_refuses_a_destination_of_another_lineage_unless_forced(rs, pg_url, tmp_path):
    source = tmp_path / "source.db"
    make_state(source, record("volume/app/data"))
    make_state(pg_url, record("volume/app/other"))
    before = rs("state", "pull", "--state", pg_url).stdout
    refused = rs("state", "migrate", "--from", str(source), "--to", pg_url)
    assert refused.code == 1 and "another state" in refused.stderr and "--force" in refused.stderr
    assert rs("state", "pull", "--state", pg_url).stdout == before
    forced = rs("state", "migrate", "--from", str(source), "--to", pg_url, "--force")
    assert forced.code == 0, forced.stderr
    assert rs("state", "pull", "--state", pg_url).stdout == export.dumps(
        json.loads(rs("state", "pull", "--state", str(source)).stdout)
    )


def test_migrate_to_the_same_state_is_a_usage_error(rs, pg_url):
    result = rs("state", "migrate", "--from", pg_url, "--to", pg_url)
    assert result.code == 64 and "same state" in result.stderr


def test_migrate_from_a_missing_state_creates_nothing(rs, pg_url, tmp_path):
    result = rs("state", "migrate", "--from", str(tmp_path / "none.db"), "--to", pg_url)
    assert result.code == 1
    with pytest.raises(StateNotFoundError, match="does not exist"):
        open_backend(pg_url, create=False)
