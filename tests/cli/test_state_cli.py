"""``rune-sync state …`` through the real entry point, against real SQLite states.

States are built with the real backend; lock holders are real child processes
(:class:`rune_sync.testing.state.Holder`) that the tests synchronise with through their
stdin and stdout, never by sleeping. Every command that names ``--state`` runs in an
empty working directory, which must stay empty of ``.rune-sync/``.
"""

from __future__ import annotations

import json
import os
import pty
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rune_sync.cli.options import parse_duration
from rune_sync.spec.model import Address
from rune_sync.state import StateRecord, export, open_backend
from rune_sync.state.model import StateMeta
from rune_sync.testing.state import Holder
from tests.conftest import Result, run_cli

NOW = datetime(2025, 11, 21, 12, 0, tzinfo=UTC)
SECRET_REFERENCE = "secret:do-api-token.shared.rune/token"
OTHER_HOST = "elsewhere.example"

# --------------------------------------------------------------------------- helpers


def record(address: str, *, status: str = "Bound", **fields: object) -> StateRecord:
    parsed = Address.parse(address)
    return StateRecord(
        address=parsed,
        spec={"name": parsed.name, "size": "1Gi", "labels": {"tier": "gold"}},
        driver="local",
        status=status,
        created_at=NOW,
        updated_at=NOW,
        **fields,  # type: ignore[arg-type]  # the tests pass valid StateRecord fields
    )


def make_state(path: Path, *records: StateRecord) -> Path:
    with open_backend(path, create=True) as backend:
        for r in records:
            backend.put(r)
    return path


def meta_of(path: Path) -> StateMeta:
    with open_backend(path, create=False) as backend:
        return backend.meta()


def records_of(path: Path) -> dict[Address, StateRecord]:
    with open_backend(path, create=False) as backend:
        return backend.load_all()


def document_of(path: Path) -> export.StateDocument:
    with open_backend(path, create=False) as backend:
        return export.pull(backend)


@pytest.fixture(autouse=True)
def _no_state_from_the_environment(monkeypatch):
    monkeypatch.delenv("RUNE_SYNC_STATE", raising=False)


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """The working directory of every command given --state: nothing may appear in it."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    yield cwd
    assert list(cwd.iterdir()) == [], "a command given --state wrote into the working directory"


@pytest.fixture
def state_cli(workdir) -> Callable[..., Result]:
    """``rune-sync state ARGS…`` run in the empty working directory."""
    return lambda *args, **kw: run_cli("state", *args, cwd=workdir, **kw)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A volume's data, which no state command may touch."""
    root = tmp_path / "volumes" / "prod" / "web"
    root.mkdir(parents=True)
    (root / "data.bin").write_bytes(b"precious\x00bytes")
    return root


@pytest.fixture
def populated(tmp_path: Path, data_dir: Path) -> Path:
    return make_state(
        tmp_path / "state" / "state.db",
        record(
            "volume/prod/web",
            handle=str(data_dir),
            bound_claim="prod/app",
            owner_service="app",
            driver_parameters={"apiToken": SECRET_REFERENCE, "region": "nyc3"},
        ),
        record("volume/prod/old", status="Released", retained=True, handle="/v/prod/old"),
        record(
            "volume/prod/db",
            status="Stalled",
            attempts=2,
            failed_runs=3,
            failure_message="disk full\non node-1",
        ),
        record("storageclass/fast", status="Available"),
        record("snapshot/prod/nightly", status="Ready", handle="/snap/prod/nightly"),
    )


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def popen_cli(*args: str, cwd: Path, stdin: int) -> subprocess.Popen[str]:
    """The entry point as a process the test talks to while it runs."""
    return subprocess.Popen(
        [sys.executable, "-m", "rune_sync", *args],
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1"},
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


# --------------------------------------------------------------------------- list


def test_list_shows_every_record_with_status_handle_and_driver(state_cli, populated, data_dir):
    result = state_cli("list", "--state", str(populated))
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ADDRESS", "STATUS", "HANDLE", "DRIVER"]
    rows = [line.split(None, 1)[0] for line in lines[1:]]
    assert (
        rows
        == sorted(rows)
        == [
            "snapshot/prod/nightly",
            "storageclass/fast",
            "volume/prod/db",
            "volume/prod/old",
            "volume/prod/web",
        ]
    )
    old = next(line for line in lines if line.startswith("volume/prod/old"))
    assert "Released (retained)" in old and "/v/prod/old" in old and old.endswith("local")
    web = next(line for line in lines if line.startswith("volume/prod/web"))
    assert "Bound" in web and "retained" not in web and str(data_dir) in web


def test_list_json_is_one_document_of_full_records(state_cli, populated):
    result = state_cli("list", "--state", str(populated), "--format", "json")
    assert result.code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows == document_of(populated)["records"]
    by_address = {r["address"]: r for r in rows}
    assert by_address["volume/prod/old"]["retained"] is True
    assert by_address["volume/prod/web"]["driverParameters"]["apiToken"] == SECRET_REFERENCE


def test_list_of_an_absent_state_says_so_and_creates_nothing(tmp_path, cli):
    # No --state: the default .rune-sync/state.db of the working directory.
    cwd = tmp_path / "project"
    cwd.mkdir()
    text = cli("state", "list", cwd=cwd)
    assert text.code == 0
    assert text.stdout == ""
    assert "No state at .rune-sync/state.db (nothing has been applied yet)." in text.stderr
    as_json = cli("state", "list", "--format", "json", cwd=cwd)
    assert (as_json.code, json.loads(as_json.stdout)) == (0, [])
    assert list(cwd.iterdir()) == []


def test_list_of_an_empty_state(state_cli, tmp_path):
    path = make_state(tmp_path / "empty.db")
    text = state_cli("list", "--state", str(path))
    assert (text.code, text.stdout) == (0, "")
    assert "has no records" in text.stderr
    as_json = state_cli("list", "--state", str(path), "--format", "json")
    assert (as_json.code, json.loads(as_json.stdout)) == (0, [])


# --------------------------------------------------------------------------- show


def test_show_prints_every_field_of_a_record(state_cli, populated):
    result = state_cli("show", "volume/prod/db", "--state", str(populated))
    assert result.code == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0] == "volume/prod/db"
    for expected in (
        "status:        Stalled",
        "in flight:     -",
        "retained:      no",
        "attempts:      2",
        "failed runs:   3",
        "failure:       disk full",
        "on node-1",
        "created:       2025-11-21T12:00:00.000000Z",
        '      "tier": "gold"',  # the spec, pretty-printed
        "rune-sync state retry volume/prod/db",
    ):
        assert expected in out
    web = state_cli("show", "volume/prod/web", "--state", str(populated))
    assert f"apiToken: {SECRET_REFERENCE}" in web.stdout
    assert "bound claim:   prod/app" in web.stdout


def test_show_json_is_the_exported_record(state_cli, populated):
    result = state_cli("show", "volume/prod/old", "--state", str(populated), "--format", "json")
    assert result.code == 0, result.stderr
    exported = {r["address"]: r for r in document_of(populated)["records"]}
    assert json.loads(result.stdout) == exported["volume/prod/old"]


def test_show_prints_the_operation_in_flight_and_json_carries_it(state_cli, tmp_path):
    path = make_state(
        tmp_path / "intent.db",
        record("volume/prod/gone", status="Released", handle="/v/prod/gone", intent="delete"),
        record("volume/prod/calm"),
    )
    in_flight = state_cli("show", "volume/prod/gone", "--state", str(path))
    assert in_flight.code == 0, in_flight.stderr
    assert "  in flight:     delete\n" in in_flight.stdout
    calm = state_cli("show", "volume/prod/calm", "--state", str(path))
    assert "  in flight:     -\n" in calm.stdout
    as_json = state_cli("show", "volume/prod/gone", "--state", str(path), "--format", "json")
    assert json.loads(as_json.stdout)["intent"] == "delete"
    calm_json = state_cli("show", "volume/prod/calm", "--state", str(path), "--format", "json")
    assert json.loads(calm_json.stdout)["intent"] is None


def test_show_of_an_unknown_address_names_it_and_suggests_close_ones(state_cli, populated):
    result = state_cli("show", "volume/prod/wbe", "--state", str(populated))
    assert result.code == 1
    assert result.stdout == ""
    assert "no record at volume/prod/wbe" in result.stderr
    assert "did you mean volume/prod/web" in result.stderr
    no_traceback(result)


def test_show_of_a_malformed_or_missing_address_is_a_usage_error(state_cli, populated):
    malformed = state_cli("show", "volume/prod", "--state", str(populated))
    assert malformed.code == 64
    assert "volume/NAMESPACE/NAME" in malformed.stderr
    assert state_cli("show", "--state", str(populated)).code == 64


def test_show_on_an_empty_or_absent_state_fails(state_cli, tmp_path):
    empty = make_state(tmp_path / "empty.db")
    on_empty = state_cli("show", "volume/prod/web", "--state", str(empty))
    assert on_empty.code == 1 and "no record at volume/prod/web" in on_empty.stderr
    absent = tmp_path / "absent.db"
    on_absent = state_cli("show", "volume/prod/web", "--state", str(absent))
    assert on_absent.code == 1 and str(absent) in on_absent.stderr
    assert not absent.exists()


# --------------------------------------------------------------------------- pull


def test_pull_prints_the_whole_state_as_one_document(state_cli, populated, tmp_path):
    result = state_cli("pull", "--state", str(populated))
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document == document_of(populated)
    assert document["lineage"] == meta_of(populated).lineage
    assert len(export.parse(document).records) == 5

    empty = make_state(tmp_path / "empty.db")
    on_empty = state_cli("pull", "--state", str(empty))
    assert on_empty.code == 0 and json.loads(on_empty.stdout)["records"] == []


def test_pull_of_an_absent_state_fails_and_creates_nothing(state_cli, tmp_path):
    absent = tmp_path / "absent" / "state.db"
    result = state_cli("pull", "--state", str(absent))
    assert result.code == 1
    assert result.stdout == ""
    assert f"state {absent} does not exist" in result.stderr
    assert not absent.parent.exists()


# --------------------------------------------------------------------------- push


def test_push_round_trip_into_a_new_state_adopts_the_lineage(state_cli, populated, tmp_path):
    pulled = state_cli("pull", "--state", str(populated))
    backup = tmp_path / "backup.json"
    backup.write_text(pulled.stdout, encoding="utf-8")
    target = tmp_path / "new" / "state.db"

    result = state_cli("push", str(backup), "--state", str(target))
    assert result.code == 0, result.stderr
    assert "Pushed 5 record(s)" in result.stdout
    assert records_of(target) == records_of(populated)
    assert meta_of(target).lineage == meta_of(populated).lineage
    assert meta_of(target).serial > meta_of(populated).serial


def test_push_reads_stdin(workdir, populated, tmp_path):
    text = export.dumps(document_of(populated))
    target = tmp_path / "from-stdin.db"
    proc = popen_cli(
        "state", "push", "-", "--state", str(target), cwd=workdir, stdin=subprocess.PIPE
    )
    _out, err = proc.communicate(text, timeout=60)
    assert proc.returncode == 0, err
    assert records_of(target) == records_of(populated)


def test_push_of_another_lineage_is_refused_unless_forced(state_cli, populated, tmp_path):
    backup = tmp_path / "backup.json"
    backup.write_text(export.dumps(document_of(populated)), encoding="utf-8")
    other = make_state(tmp_path / "other.db", record("volume/team/keep"))
    before = (meta_of(other), records_of(other))

    refused = state_cli("push", str(backup), "--state", str(other))
    assert refused.code == 1
    assert "another state" in refused.stderr and "--force" in refused.stderr
    no_traceback(refused)
    assert (meta_of(other), records_of(other)) == before

    forced = state_cli("push", str(backup), "--state", str(other), "--force")
    assert forced.code == 0, forced.stderr
    assert records_of(other) == records_of(populated)
    assert meta_of(other).lineage == meta_of(populated).lineage


def test_push_of_an_older_document_is_refused(state_cli, populated, tmp_path):
    backup = tmp_path / "backup.json"
    backup.write_text(export.dumps(document_of(populated)), encoding="utf-8")
    with open_backend(populated, create=False) as backend:
        backend.bump_serial()
    result = state_cli("push", str(backup), "--state", str(populated))
    assert result.code == 1 and "newer than the document" in result.stderr


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not JSON"),
        ("{}", "'lineage' is a required property"),
        ("edited", "specDigest: does not match"),
    ],
)
def test_push_of_an_invalid_document_fails_and_creates_nothing(
    state_cli, populated, tmp_path, content, problem
):
    if content == "edited":
        document = document_of(populated)
        document["records"][0]["spec"]["size"] = "2Gi"
        content = export.dumps(document)
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    target = tmp_path / "new" / "state.db"
    result = state_cli("push", str(bad), "--state", str(target))
    assert result.code == 1
    assert "not a valid rune-sync state document" in result.stderr and problem in result.stderr
    no_traceback(result)
    assert not target.parent.exists()


def test_push_without_a_readable_file_is_a_usage_error(state_cli, tmp_path):
    target = tmp_path / "state.db"
    assert state_cli("push", "--state", str(target)).code == 64
    missing = state_cli("push", str(tmp_path / "missing.json"), "--state", str(target))
    assert missing.code == 64 and "missing.json" in missing.stderr
    assert not target.exists()


# --------------------------------------------------------------------------- rm


@pytest.mark.parametrize("address", ["volume/prod/web", "volume/prod/old"])
def test_rm_drops_the_record_for_good_and_leaves_the_data(state_cli, populated, tmp_path, address):
    data_before = tree_bytes(tmp_path / "volumes")
    serial = meta_of(populated).serial
    result = state_cli("rm", address, "--state", str(populated))
    assert result.code == 0, result.stderr
    assert f"Removed {address}" in result.stdout
    assert "The data itself was not touched: no driver was called" in result.stdout
    remaining = records_of(populated)
    assert Address.parse(address) not in remaining and len(remaining) == 4
    assert meta_of(populated).serial == serial + 1
    assert tree_bytes(tmp_path / "volumes") == data_before


def test_rm_of_an_unknown_address_changes_nothing(state_cli, populated):
    before = (meta_of(populated), records_of(populated))
    result = state_cli("rm", "volume/prod/nope", "--state", str(populated))
    assert result.code == 1 and "no record at volume/prod/nope" in result.stderr
    assert (meta_of(populated), records_of(populated)) == before


# --------------------------------------------------------------------------- retry


def test_retry_unstalls_a_stalled_record(state_cli, populated):
    serial = meta_of(populated).serial
    result = state_cli("retry", "volume/prod/db", "--state", str(populated))
    assert result.code == 0, result.stderr
    assert "volume/prod/db is Failed again" in result.stdout
    after = records_of(populated)[Address.parse("volume/prod/db")]
    assert (after.status, after.failed_runs, after.attempts) == ("Failed", 0, 0)
    assert meta_of(populated).serial == serial + 1


def test_retry_refuses_a_record_that_is_not_stalled(state_cli, populated):
    before = (meta_of(populated), records_of(populated))
    result = state_cli("retry", "volume/prod/web", "--state", str(populated))
    assert result.code == 1
    assert "volume/prod/web is Bound, not Stalled" in result.stderr
    assert (meta_of(populated), records_of(populated)) == before


# --------------------------------------------------------------------------- the lock


def test_lock_info_names_the_holder(state_cli, populated):
    free = state_cli("lock-info", "--state", str(populated))
    assert (free.code, free.stdout) == (0, f"The state at {populated} is not locked.\n")
    with Holder(str(populated), host=OTHER_HOST) as holder:
        info = holder.locked()
        text = state_cli("lock-info", "--state", str(populated))
        assert text.code == 0, text.stderr
        for expected in (info.id, info.user, OTHER_HOST, str(info.pid), "contract holder"):
            assert expected in text.stdout
        assert "since:   " in text.stdout and "rune-sync state force-unlock" in text.stdout
        as_json = json.loads(
            state_cli("lock-info", "--state", str(populated), "--format", "json").stdout
        )
        assert as_json == {"location": str(populated), "locked": True, "holder": info.to_json()}


def test_rm_while_locked_fails_at_once_naming_the_holder(state_cli, populated):
    with Holder(str(populated)) as holder:
        info = holder.locked()
        result = state_cli("rm", "volume/prod/web", "--state", str(populated))
        assert result.code == 1
        assert info.describe() in result.stderr
        assert "rune-sync state force-unlock" in result.stderr
        no_traceback(result)
        assert Address.parse("volume/prod/web") in records_of(populated)


def test_rm_with_a_lock_timeout_waits_for_the_holder(workdir, populated):
    with Holder(str(populated)) as holder:
        holder.locked()
        proc = popen_cli(
            "state",
            "rm",
            "volume/prod/web",
            "--state",
            str(populated),
            "--lock-timeout",
            "5s",
            cwd=workdir,
            stdin=subprocess.DEVNULL,
        )
        try:
            assert proc.stderr is not None
            first = proc.stderr.readline()  # printed once it found the lock held
            assert "contract holder" in first and "waiting up to 5s" in first, first
            assert proc.poll() is None
            holder.release()
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert "Removed volume/prod/web" in out
    assert Address.parse("volume/prod/web") not in records_of(populated)


def test_a_lock_timeout_that_runs_out_fails_naming_the_holder(state_cli, populated):
    with Holder(str(populated)) as holder:
        info = holder.locked()
        result = state_cli(
            "retry", "volume/prod/db", "--state", str(populated), "--lock-timeout", "300ms"
        )
    assert result.code == 1
    assert "waiting up to 0.3s" in result.stderr
    assert info.describe() in result.stderr and "rune-sync state force-unlock" in result.stderr
    assert records_of(populated)[Address.parse("volume/prod/db")].status == "Stalled"


def test_a_malformed_lock_timeout_is_a_usage_error(state_cli, populated):
    result = state_cli("rm", "volume/prod/web", "--state", str(populated), "--lock-timeout", "5x")
    assert result.code == 64 and "is not a duration" in result.stderr


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("300ms", 0.3), ("30s", 30.0), ("1.5s", 1.5), ("10m", 600.0), ("1h", 3600.0)],
)
def test_parse_duration_reads_the_documented_forms(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "-1s", "5x", "1m30s", "s", "1e3s"])
def test_parse_duration_refuses_anything_else(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_force_unlock_breaks_a_lock_held_on_another_host(state_cli, populated):
    with Holder(str(populated), host=OTHER_HOST) as holder:
        info = holder.locked()
        result = state_cli("force-unlock", "--yes", "--state", str(populated))
        assert result.code == 0, result.stderr
        assert f"held by {info.describe()}" in result.stdout
        assert "not locked" in state_cli("lock-info", "--state", str(populated)).stdout
        # The old holder still runs, but its lock no longer counts.
        removed = state_cli("rm", "volume/prod/web", "--state", str(populated))
        assert removed.code == 0, removed.stderr


def test_force_unlock_refuses_a_holder_running_on_this_host(state_cli, populated):
    with Holder(str(populated)) as holder:
        info = holder.locked()
        result = state_cli("force-unlock", info.id, "--yes", "--state", str(populated))
        assert result.code == 1
        assert "still running on this host" in result.stderr and f"kill {info.pid}" in result.stderr
        assert info.id in state_cli("lock-info", "--state", str(populated)).stdout


def test_force_unlock_checks_the_lock_id(state_cli, populated):
    with Holder(str(populated), host=OTHER_HOST) as holder:
        info = holder.locked()
        result = state_cli("force-unlock", "0123abcd", "--yes", "--state", str(populated))
        assert result.code == 1
        assert (
            "'0123abcd' is not the current holder's" in result.stderr and info.id in result.stderr
        )
        assert info.id in state_cli("lock-info", "--state", str(populated)).stdout


def test_force_unlock_without_a_terminal_needs_yes(state_cli, populated, workdir):
    with Holder(str(populated), host=OTHER_HOST) as holder:
        info = holder.locked()
        proc = popen_cli(
            "state",
            "force-unlock",
            "--state",
            str(populated),
            cwd=workdir,
            stdin=subprocess.DEVNULL,
        )
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 1
        assert "there is no terminal to ask on: pass --yes" in err
        assert info.id in state_cli("lock-info", "--state", str(populated)).stdout


@pytest.mark.parametrize(("answer", "code"), [("y\n", 0), ("n\n", 1)])
def test_force_unlock_asks_on_a_terminal(state_cli, populated, workdir, answer, code):
    with Holder(str(populated), host=OTHER_HOST) as holder:
        info = holder.locked()
        controller, terminal = pty.openpty()
        try:
            proc = popen_cli(
                "state",
                "force-unlock",
                "--state",
                str(populated),
                cwd=workdir,
                stdin=terminal,
            )
            os.write(controller, answer.encode())  # the terminal keeps it until asked
            out, err = proc.communicate(timeout=60)
        finally:
            os.close(terminal)
            os.close(controller)
        assert proc.returncode == code, err
        assert "Break this lock? [y/N]" in err and "does not stop that process" in err
        still_locked = info.id in state_cli("lock-info", "--state", str(populated)).stdout
        assert still_locked is (code == 1)
        assert ("Released the lock" in out) is (code == 0)


def test_force_unlock_of_a_free_lock_says_so(state_cli, populated, tmp_path):
    result = state_cli("force-unlock", "--state", str(populated))
    assert (result.code, result.stdout) == (0, f"The state at {populated} is not locked.\n")
    absent = tmp_path / "absent.db"
    assert state_cli("force-unlock", "--state", str(absent)).code == 0
    assert not absent.exists()


# --------------------------------------------------------------------------- locating the state


def test_the_environment_names_the_state_and_the_flag_wins(state_cli, populated, tmp_path):
    env = {"RUNE_SYNC_STATE": str(populated)}
    listed = state_cli("list", env=env)
    assert listed.code == 0 and "volume/prod/web" in listed.stdout
    assert state_cli("rm", "volume/prod/old", env=env).code == 0
    assert Address.parse("volume/prod/old") not in records_of(populated)
    empty = make_state(tmp_path / "empty.db")
    flagged = state_cli("list", "--state", str(empty), env=env)
    assert flagged.code == 0 and flagged.stdout == "" and str(empty) in flagged.stderr


COMMANDS = [
    ("list",),
    ("show", "volume/prod/web"),
    ("pull",),
    ("push", "DOCUMENT"),
    ("rm", "volume/prod/web"),
    ("retry", "volume/prod/db"),
    ("lock-info",),
    ("force-unlock", "--yes"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_corrupt_state_is_refused_and_left_unchanged(state_cli, populated, tmp_path, command):
    document = tmp_path / "doc.json"
    document.write_text(export.dumps(document_of(populated)), encoding="utf-8")
    corrupt_dir = tmp_path / "corrupt"
    corrupt_dir.mkdir()
    corrupt = corrupt_dir / "state.db"
    corrupt.write_bytes(random.Random(7).randbytes(8192))
    before = tree_bytes(corrupt_dir)
    args = [str(document) if a == "DOCUMENT" else a for a in command]

    result = state_cli(*args, "--state", str(corrupt))
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and str(corrupt) in result.stderr
    assert "unmodified" in result.stderr
    no_traceback(result)
    assert tree_bytes(corrupt_dir) == before


def test_state_help_lists_every_subcommand_with_a_whole_first_sentence(cli):
    result = cli("state", "--help", env={"COLUMNS": "80"})
    assert result.code == 0, result.stderr
    listed = result.stdout.split("Commands:\n")[1]
    assert "..." not in listed
    entries: dict[str, str] = {}
    for line in listed.splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            name, _, text = line.strip().partition(" ")
            entries[name] = text.strip()
        elif line.strip():
            entries[name] += " " + line.strip()
    assert set(entries) == {
        "force-unlock", "list", "lock-info", "migrate", "pull", "push", "retry", "rm", "show",
    }  # fmt: skip
    assert all(text.endswith(".") and text.count(". ") == 0 for text in entries.values())
