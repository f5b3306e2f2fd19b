"""``rune-sync apply``: real sources, real directories, real SQLite states.

Most runs go in-process through the real entry point :func:`rune_sync.cli.main` (what the
console script calls); the runs whose subject is the process itself — no terminal to ask
on, a pseudo-terminal answering the prompt — start ``python -m rune_sync`` as a child.
Every source writes its own runefile pointing ``localVolumeRoot`` into ``tmp_path``, and
every command is given ``--state``; nothing is mocked.

Crashes, signals and concurrent runs are in ``test_apply_reliability.py``.
"""

from __future__ import annotations

import json
import os
import pty
import re
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from rune_sync.cli import main
from rune_sync.state import StateRecord, open_backend
from rune_sync.state.model import StateMeta
from tests.plan import write_source

# --------------------------------------------------------------------------- helpers

LOG_LINE = re.compile(r"^(?P<address>\S+): (?P<message>.*) \[\d+\.\d\ds\]$")
SUMMARY = re.compile(
    r"^Apply complete: (?P<created>\d+) created, (?P<updated>\d+) updated, "
    r"(?P<replaced>\d+) replaced, (?P<destroyed>\d+) destroyed, (?P<forgotten>\d+) forgotten\.$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def log(self) -> dict[str, str]:
        """``{address: message}`` of the per-resource log lines on stderr."""
        found = {}
        for line in self.stderr.splitlines():
            match = LOG_LINE.match(line)
            if match:
                found[match["address"]] = match["message"]
        return found


@pytest.fixture
def rs(capsys, monkeypatch, tmp_path) -> Callable[..., Run]:
    """``rs(*argv)`` runs ``rune-sync ARGV`` in-process, in an empty working directory."""
    monkeypatch.delenv("RUNE_SYNC_STATE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    logs = tmp_path / "debug-logs"
    logs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(logs))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    def run(*argv: str) -> Run:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main(list(argv))
        out, err = capsys.readouterr()
        code = exited.value.code
        assert "internal error" not in err, err
        return Run(code if isinstance(code, int) else 1, out, err)

    yield run
    assert not (cwd / ".rune-sync").exists(), "--state was given: nothing goes to ./.rune-sync"
    assert list(logs.iterdir()) == [], "an internal error was logged"


def child_env() -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("RUNE_SYNC_STATE", None)
    return env


def run_child(*argv: str, cwd: Path) -> Run:
    """``python -m rune_sync ARGV`` with no terminal at all (stdin is /dev/null)."""
    proc = subprocess.run(
        [sys.executable, "-m", "rune_sync", *argv],
        cwd=cwd,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def run_on_terminal(*argv: str, answer: str, cwd: Path) -> Run:
    """``python -m rune_sync ARGV`` whose stdin is a pseudo-terminal holding ``answer``."""
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rune_sync", *argv],
            cwd=cwd,
            env=child_env(),
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(controller, answer.encode())  # kept by the terminal until it is read
        out, err = proc.communicate(timeout=120)
    finally:
        os.close(terminal)
        os.close(controller)
    return Run(proc.returncode, out, err)


def runefile(volumes: Path, *, allowlist: Path | None = None) -> str:
    lines = ["storage:", f"  localVolumeRoot: {volumes}"]
    if allowlist is not None:
        lines.append(f"  hostPathAllowlist: [{allowlist}]")
    return "\n".join(lines) + "\n"


def volume_list(names: list[str], *, namespace: str = "prod", policy: str = "retain") -> str:
    rows = [
        f"  - {{name: {n}, namespace: {namespace}, size: 1Gi, accessMode: ReadWriteOnce, "
        f"reclaimPolicy: {policy}}}"
        for n in names
    ]
    return "volumes:\n" + "\n".join(rows) + "\n"


def records_of(state: Path) -> dict[str, StateRecord]:
    with open_backend(state, create=False) as backend:
        return {str(a): r for a, r in backend.load_all().items()}


def meta_of(state: Path) -> StateMeta:
    with open_backend(state, create=False) as backend:
        return backend.meta()


def entries(root: Path) -> set[str]:
    """``namespace/name`` of every entry two levels below ``root`` (dot-named included)."""
    if not root.exists():
        return set()
    return {f"{ns.name}/{e.name}" for ns in root.iterdir() if ns.is_dir() for e in ns.iterdir()}


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def state_list(rs: Callable[..., Run], state: Path) -> dict[str, dict]:
    listed = rs("state", "list", "--state", str(state), "--format", "json")
    assert listed.code == 0, listed.stderr
    return {r["address"]: r for r in json.loads(listed.stdout)}


# --------------------------------------------------------------------------- a whole source

QUICKSTART: Mapping[str, str] = {
    "classes/classes.yaml": """\
        storageClass:
          name: scratch
          driver: local
          reclaimPolicy: delete
          labels: {tier: scratch}
    """,
    "volumes/web.yaml": """\
        volume:
          name: web-data
          namespace: prod
          storageClassName: local
          size: 10Gi
          accessMode: ReadWriteOnce
          labels: {app: web}
        ---
        volume:
          name: build-cache
          namespace: ci
          storageClassName: scratch
          size: 2Gi
          accessMode: ReadWriteOnce
        ---
        snapshot:
          name: web-data-nightly
          namespace: prod
          source: {volume: web-data}
        ---
        volume:
          name: web-data-copy
          namespace: prod
          size: 10Gi
          accessMode: ReadWriteOnce
          restoreFrom: {snapshot: web-data-nightly}
    """,
    "services/postgres.yaml": """\
        service:
          name: postgres
          namespace: prod
          image: postgres:16
          scale: 3
          volumes:
            - name: pgdata
              mountPath: /var/lib/postgresql/data
              claimTemplate: {storageClassName: local, size: 10Gi, accessMode: ReadWriteOnce}
        ---
        service:
          name: web
          namespace: prod
          image: nginx:1.27
          volumes:
            - name: data
              mountPath: /usr/share/nginx/html
              claim: {name: web-data}
    """,
}

EXPECTED_STATUS = {
    "storageclass/scratch": "Available",
    "volume/prod/pgdata-postgres-0": "Bound",
    "volume/prod/pgdata-postgres-1": "Bound",
    "volume/prod/pgdata-postgres-2": "Bound",
    "volume/prod/web-data": "Bound",
    "volume/ci/build-cache": "Available",
    "volume/prod/web-data-copy": "Available",
    "snapshot/prod/web-data-nightly": "Ready",
}


def test_a_quickstart_like_source_is_applied_and_a_second_apply_changes_nothing(rs, tmp_path):
    vols = tmp_path / "vols"
    src = write_source(tmp_path / "src", {"runefile.yaml": runefile(vols), **QUICKSTART})
    state = tmp_path / "state.db"
    assert not vols.exists()

    first = rs("apply", str(src), "--state", str(state), "--auto-approve")
    assert first.code == 0, first.stderr
    # the plan, then the summary, on stdout; one line per resource on stderr
    assert (
        "+ volume/prod/web-data-copy (local, 10Gi, ReadWriteOnce, from snapshot web-data-nightly)"
        in first.stdout
    )
    assert first.stdout.index("Plan: 8 to create") < first.stdout.index("Apply complete")
    counts = SUMMARY.search(first.stdout)
    assert counts is not None, first.stdout
    assert counts.groupdict() == {
        "created": "8",
        "updated": "0",
        "replaced": "0",
        "destroyed": "0",
        "forgotten": "0",
    }
    real = Path(os.path.realpath(vols))
    log = first.log()
    assert set(log) == set(EXPECTED_STATUS)
    assert log["volume/prod/web-data"] == f"created ({real / 'prod' / 'web-data'})"
    assert log["volume/prod/web-data-copy"] == f"restored ({real / 'prod' / 'web-data-copy'})"
    assert "Apply complete" not in first.stderr

    volumes = {
        "prod/pgdata-postgres-0",
        "prod/pgdata-postgres-1",
        "prod/pgdata-postgres-2",
        "prod/web-data",
        "prod/web-data-copy",
        "ci/build-cache",
    }
    assert entries(vols) - {".snapshots/prod"} == volumes
    for rel in volumes:
        assert mode_of(vols / rel) == 0o750, rel
    snapshot = vols / ".snapshots" / "prod" / "web-data-nightly"
    assert snapshot.is_dir()
    assert entries(vols / ".snapshots") == {"prod/web-data-nightly"}

    recorded = records_of(state)
    assert {a: r.status for a, r in recorded.items()} == EXPECTED_STATUS
    for address, record in recorded.items():
        assert record.intent is None, address
        assert not record.retained, address
        if address.startswith("volume/"):
            rel = address.removeprefix("volume/")
            assert record.handle == str(real / rel)
    assert recorded["snapshot/prod/web-data-nightly"].handle == str(
        real / ".snapshots/prod/web-data-nightly"
    )
    assert recorded["volume/prod/pgdata-postgres-1"].owner_service == "postgres"
    assert recorded["volume/prod/web-data"].bound_claim is not None
    assert recorded["volume/prod/web-data-copy"].bound_claim is None
    applied = meta_of(state)
    assert applied.serial == 1
    assert applied.source is not None and applied.source.url == str(src)

    second = rs("apply", str(src), "--state", str(state), "--auto-approve")
    assert second.code == 0, second.stderr
    assert "No changes" in second.stdout
    assert second.log() == {}
    assert meta_of(state).serial == applied.serial
    assert records_of(state) == recorded
    assert entries(vols) - {".snapshots/prod"} == volumes


# --------------------------------------------------------------------------- approval

SMALL = {"v.yaml": volume_list(["web", "db"])}


@pytest.fixture
def small(tmp_path) -> tuple[Path, Path, Path]:
    """(source, volume root, state path) of two volumes, not applied yet."""
    vols = tmp_path / "vols"
    src = write_source(tmp_path / "src", {"runefile.yaml": runefile(vols), **SMALL})
    return src, vols, tmp_path / "state.db"


def test_without_a_terminal_and_without_auto_approve_apply_refuses(small, tmp_path):
    src, vols, state = small
    result = run_child("apply", str(src), "--state", str(state), cwd=tmp_path)
    assert result.code == 1
    assert "refusing to apply without approval" in result.stderr
    assert "--auto-approve" in result.stderr
    assert "+ volume/prod/web" in result.stdout  # the plan was shown
    assert not vols.exists()
    assert not state.exists() or records_of(state) == {}
    assert not state.exists() or meta_of(state).serial == 0


@pytest.mark.parametrize(
    ("answer", "code"),
    [("yes\n", 0), ("no\n", 1), ("y\n", 1), ("\n", 1)],
    ids=["yes", "no", "y", "empty"],
)
def test_on_a_terminal_only_yes_applies(small, tmp_path, answer, code):
    src, vols, state = small
    result = run_on_terminal("apply", str(src), "--state", str(state), answer=answer, cwd=tmp_path)
    assert result.code == code, result.stderr
    assert "Apply these changes?" in result.stderr
    assert "Apply these changes?" not in result.stdout
    if code == 0:
        assert "Apply complete: 2 created" in result.stdout
        assert entries(vols) == {"prod/web", "prod/db"}
        assert meta_of(state).serial == 1
    else:
        assert "apply cancelled; nothing was changed" in result.stderr
        assert not vols.exists()
        assert not state.exists() or records_of(state) == {}


def files_below(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("output", ["text", "json"])
def test_apply_refused_for_lack_of_approval_writes_no_state_at_all(small, tmp_path, output):
    src, vols, _state = small
    work = tmp_path / "work"
    work.mkdir()
    # The default state path (./.rune-sync/state.db): not even its directory appears.
    result = run_child("apply", str(src), "--format", output, cwd=work)
    assert result.code == 1
    assert "refusing to apply without approval" in result.stderr
    assert files_below(work) == set()
    assert not vols.exists()


def test_apply_declined_on_a_terminal_writes_no_state_at_all(small, tmp_path):
    src, vols, state = small
    result = run_on_terminal("apply", str(src), "--state", str(state), answer="no\n", cwd=tmp_path)
    assert result.code == 1
    assert "apply cancelled; nothing was changed" in result.stderr
    assert not state.exists()
    assert not Path(f"{state}.lock").exists()
    assert not vols.exists()


def test_a_plan_refused_for_a_state_that_does_not_exist_writes_no_state(rs, saved, tmp_path):
    _src, vols, _state, plan_file = saved
    elsewhere = tmp_path / "elsewhere" / "state.db"
    result = rs("apply", str(plan_file), "--state", str(elsewhere), "--auto-approve")
    assert result.code == 4
    assert "the state it was made from does not exist here" in result.stderr
    assert not elsewhere.parent.exists()
    assert "prod/logs" not in entries(vols)


def test_a_new_state_created_by_another_apply_while_waiting_for_approval_is_not_overwritten(
    rs, small, tmp_path
):
    src, vols, state = small
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rune_sync", "apply", str(src), "--state", str(state)],
            cwd=tmp_path,
            env=child_env(),
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stderr is not None
        asked = b""
        while b"Apply these changes?" not in asked:  # ends when the prompt is shown
            chunk = os.read(proc.stderr.fileno(), 4096)
            assert chunk, asked.decode()
            asked += chunk
        assert not state.exists()
        (src / "more.yaml").write_text(volume_list(["logs"]), encoding="utf-8")
        assert rs("apply", str(src), "--state", str(state), "--auto-approve").code == 0
        recorded = records_of(state)
        os.write(controller, b"yes\n")
        _out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()  # a failed assertion left it waiting for an answer
            proc.communicate()
        os.close(terminal)
        os.close(controller)
    assert proc.returncode == 4, err
    assert b"created and written by another command" in err
    assert records_of(state) == recorded
    assert meta_of(state).serial == 1
    assert entries(vols) == {"prod/web", "prod/db", "prod/logs"}


# --------------------------------------------------------------------------- saved plans


@pytest.fixture
def saved(rs, small, tmp_path) -> tuple[Path, Path, Path, Path]:
    """(source, volume root, state, plan file): web and db applied, then one more
    volume added to the source and a plan for it saved."""
    src, vols, state = small
    assert rs("apply", str(src), "--state", str(state), "--auto-approve").code == 0
    (src / "more.yaml").write_text(volume_list(["logs"]), encoding="utf-8")
    plan_file = tmp_path / "p.json"
    made = rs("plan", str(src), "--state", str(state), "--out", str(plan_file))
    assert made.code == 0, made.stderr
    return src, vols, state, plan_file


def test_a_saved_plan_is_applied(rs, saved):
    src, vols, state, plan_file = saved
    before = meta_of(state)
    result = rs("apply", str(plan_file), "--state", str(state), "--auto-approve")
    assert result.code == 0, result.stderr
    assert "Apply complete: 1 created" in result.stdout
    assert entries(vols) == {"prod/web", "prod/db", "prod/logs"}
    assert records_of(state)["volume/prod/logs"].status == "Available"
    after = meta_of(state)
    assert after.serial == before.serial + 1
    assert after.source is not None and after.source.url == str(src)

    again = rs("apply", str(plan_file), "--state", str(state), "--auto-approve")
    assert again.code == 4  # stale: nothing changed, make a new plan
    assert "stale" in again.stderr and f"serial {before.serial} → {after.serial}" in again.stderr
    assert meta_of(state).serial == after.serial


def test_a_saved_plan_is_stale_once_another_apply_moved_the_state(rs, saved):
    src, vols, state, plan_file = saved
    (src / "more.yaml").unlink()
    (src / "other.yaml").write_text(volume_list(["cache"]), encoding="utf-8")
    assert rs("apply", str(src), "--state", str(state), "--auto-approve").code == 0
    (src / "other.yaml").unlink()
    (src / "more.yaml").write_text(volume_list(["logs"]), encoding="utf-8")  # same source again
    before, recorded = meta_of(state), records_of(state)

    result = rs("apply", str(plan_file), "--state", str(state), "--auto-approve")
    assert result.code == 4
    assert "the saved plan is stale: the state moved on since" in result.stderr
    assert "Apply complete" not in result.stdout
    assert meta_of(state) == before and records_of(state) == recorded
    assert "prod/logs" not in entries(vols)


def test_a_saved_plan_is_stale_after_state_rm(rs, saved):
    _src, vols, state, plan_file = saved
    removed = rs("state", "rm", "volume/prod/db", "--state", str(state))
    assert removed.code == 0, removed.stderr
    before, recorded = meta_of(state), records_of(state)

    result = rs("apply", str(plan_file), "--state", str(state), "--auto-approve")
    assert result.code == 4
    assert "stale" in result.stderr and "the state moved on since" in result.stderr
    assert meta_of(state) == before and records_of(state) == recorded
    assert "prod/logs" not in entries(vols)


def test_a_saved_plan_is_stale_after_the_source_changed(rs, saved):
    src, vols, state, plan_file = saved
    (src / "more.yaml").write_text(volume_list(["logs", "tmp"]), encoding="utf-8")
    before, recorded = meta_of(state), records_of(state)

    result = rs("apply", str(plan_file), "--state", str(state), "--auto-approve")
    assert result.code == 4
    assert "stale" in result.stderr and "the source changed since" in result.stderr
    assert meta_of(state) == before and records_of(state) == recorded
    assert entries(vols) == {"prod/web", "prod/db"}


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("hello, world\n", "is not a rune-sync plan (not JSON)"),
        ('{"format": "something-else", "version": 1}\n', "is not a rune-sync plan"),
        (b"\xff\xfe\x00binary", "is not a rune-sync plan (not JSON)"),
        ("storage:\n  localVolumeRoot: /tmp/x\n", "is not a rune-sync plan"),
    ],
    ids=["text", "other-json", "binary", "a-runefile"],
)
def test_a_file_that_is_not_a_plan_is_refused(rs, tmp_path, content, why):
    path = tmp_path / "not-a-plan.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    state = tmp_path / "state.db"
    result = rs("apply", str(path), "--state", str(state), "--auto-approve")
    assert result.code == 1
    assert f"{path} {why}" in result.stderr
    assert result.stdout == ""
    assert not state.exists()


def test_json_output_is_one_event_object_per_line(rs, tmp_path):
    vols = tmp_path / "vols"
    src = write_source(tmp_path / "src", {"runefile.yaml": runefile(vols), **QUICKSTART})
    state = tmp_path / "state.db"
    result = rs("apply", str(src), "--state", str(state), "--auto-approve", "--format", "json")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    events = [json.loads(line) for line in lines]  # every line parses
    assert all(isinstance(e, dict) for e in events)
    assert events[0]["event"] == "plan"
    assert events[-1]["event"] == "summary"
    assert [e["event"] for e in events].count("plan") == 1
    assert [e["event"] for e in events].count("summary") == 1
    plan = events[0]["plan"]
    changed = {c["address"] for c in plan["changes"] if c["action"] != "no-op"}
    assert changed == set(EXPECTED_STATUS)
    for address in changed:
        phases = [e["event"] for e in events[1:-1] if e["address"] == address]
        assert phases == ["start", "done"], (address, phases)
    done = {e["address"]: e for e in events if e["event"] == "done"}
    assert (
        done["volume/prod/web-data"]["handle"] == records_of(state)["volume/prod/web-data"].handle
    )
    summary = events[-1]
    assert summary["ok"] is True and summary["stopped"] is False
    assert summary["counts"]["created"] == 8 and summary["counts"]["failed"] == 0
    assert summary["message"].startswith("Apply complete: 8 created")
    assert LOG_LINE.search(result.stderr) is None  # no text log lines besides the JSON

    again = rs("apply", str(src), "--state", str(state), "--auto-approve", "--format", "json")
    assert again.code == 0
    quiet = [json.loads(line) for line in again.stdout.splitlines()]
    assert [e["event"] for e in quiet] == ["plan", "summary"]
    assert quiet[-1]["message"].startswith("No changes")


# --------------------------------------------------------------------------- destroy, forget


@pytest.fixture
def doomed(rs, tmp_path) -> tuple[Path, Path, Path]:
    """(source, volume root, state): ``keep`` and ``scratch`` (reclaimPolicy delete, with
    data) applied, then ``scratch`` removed from the source."""
    vols = tmp_path / "vols"
    files = {
        "runefile.yaml": runefile(vols),
        "keep.yaml": volume_list(["keep"], policy="delete"),
        "scratch.yaml": volume_list(["scratch"], policy="delete"),
    }
    src = write_source(tmp_path / "src", files)
    state = tmp_path / "state.db"
    assert rs("apply", str(src), "--state", str(state), "--auto-approve").code == 0
    data = vols / "prod" / "scratch"
    (data / "sub").mkdir()
    (data / "sub" / "rows.csv").write_text("id,name\n1,ada\n", encoding="utf-8")
    (src / "scratch.yaml").unlink()
    return src, vols, state


def test_a_destroy_without_allow_destroy_is_refused(rs, doomed):
    src, vols, state = doomed
    before, recorded = meta_of(state), records_of(state)
    result = rs("apply", str(src), "--state", str(state), "--auto-approve")
    assert result.code == 1
    assert "nothing was changed" in result.stderr
    assert "volume/prod/scratch: destroy needs --allow-destroy" in result.stderr
    assert (vols / "prod" / "scratch" / "sub" / "rows.csv").read_text() == "id,name\n1,ada\n"
    assert meta_of(state) == before and records_of(state) == recorded


def test_allow_destroy_takes_a_snapshot_first_then_removes_the_directory(rs, doomed):
    src, vols, state = doomed
    result = rs("apply", str(src), "--state", str(state), "--auto-approve", "--allow-destroy")
    assert result.code == 0, result.stderr
    assert "Apply complete: 0 created, 0 updated, 0 replaced, 1 destroyed" in result.stdout
    assert not (vols / "prod" / "scratch").exists()
    assert (vols / "prod" / "keep").is_dir()
    taken = entries(vols / ".snapshots")
    assert len(taken) == 1, taken
    (name,) = taken
    assert re.fullmatch(r"prod/scratch-predestroy-\d{8}t\d{6}z", name), name
    copy = vols / ".snapshots" / name
    assert (copy / "sub" / "rows.csv").read_text() == "id,name\n1,ada\n"
    assert "taken first" in result.log()["volume/prod/scratch"]

    recorded = records_of(state)
    assert "volume/prod/scratch" not in recorded
    snap = recorded[f"snapshot/{name}"]
    assert (snap.status, snap.retained, snap.intent) == ("Ready", True, None)
    assert snap.handle == os.path.realpath(copy)
    # the pre-destroy snapshot belongs to the operator: later plans leave it alone
    again = rs("plan", str(src), "--state", str(state), "--detailed-exitcode")
    assert again.code == 0, again.stdout


def test_no_snapshot_before_destroy_takes_none(rs, doomed):
    src, vols, state = doomed
    result = rs(
        "apply",
        str(src),
        "--state",
        str(state),
        "--auto-approve",
        "--allow-destroy",
        "--no-snapshot-before-destroy",
    )
    assert result.code == 0, result.stderr
    assert not (vols / "prod" / "scratch").exists()
    assert entries(vols / ".snapshots") == set()
    assert set(records_of(state)) == {"volume/prod/keep"}


def test_a_removed_retain_volume_is_forgotten_and_its_data_stays(rs, small, tmp_path):
    src, vols, state = small
    assert rs("apply", str(src), "--state", str(state), "--auto-approve").code == 0
    (vols / "prod" / "db" / "table").write_text("rows", encoding="utf-8")
    (src / "v.yaml").write_text(volume_list(["web"]), encoding="utf-8")

    result = rs("apply", str(src), "--state", str(state), "--auto-approve")
    assert result.code == 0, result.stderr
    assert "0 destroyed, 1 forgotten." in result.stdout
    assert (vols / "prod" / "db" / "table").read_text() == "rows"
    listed = state_list(rs, state)
    assert listed["volume/prod/db"]["retained"] is True
    assert listed["volume/prod/db"]["handle"] == os.path.realpath(vols / "prod" / "db")
    table = rs("state", "list", "--state", str(state))
    assert re.search(r"^volume/prod/db\s+Available \(retained\)", table.stdout, re.MULTILINE)

    # back in the source: re-adopted with its data, nothing provisioned anew
    (src / "v.yaml").write_text(volume_list(["web", "db"]), encoding="utf-8")
    back = rs("apply", str(src), "--state", str(state), "--auto-approve")
    assert back.code == 0, back.stderr
    assert (vols / "prod" / "db" / "table").read_text() == "rows"
    assert records_of(state)["volume/prod/db"].retained is False


def test_a_replace_is_refused_without_allow_replace_and_snapshotted_with_it(rs, small):
    src, vols, state = small
    assert rs("apply", str(src), "--state", str(state), "--auto-approve").code == 0
    (vols / "prod" / "web" / "index.html").write_text("<h1>hi</h1>", encoding="utf-8")
    (src / "fast.yaml").write_text(
        "storageClass: {name: fast, driver: local, reclaimPolicy: retain}\n", encoding="utf-8"
    )
    (src / "v.yaml").write_text(
        volume_list(["db"]) + "  - {name: web, namespace: prod, storageClassName: fast, size: 1Gi, "
        "accessMode: ReadWriteOnce}\n",
        encoding="utf-8",
    )
    before, recorded = meta_of(state), records_of(state)

    refused = rs("apply", str(src), "--state", str(state), "--auto-approve")
    assert refused.code == 1
    assert "volume/prod/web: replace needs --allow-replace" in refused.stderr
    assert "nothing was changed" in refused.stderr
    assert meta_of(state) == before and records_of(state) == recorded
    assert "storageclass/fast" not in records_of(state)  # not even the harmless class
    assert (vols / "prod" / "web" / "index.html").exists()

    allowed = rs("apply", str(src), "--state", str(state), "--auto-approve", "--allow-replace")
    assert allowed.code == 0, allowed.stderr
    assert "1 replaced" in allowed.stdout
    assert (vols / "prod" / "web").is_dir()
    assert list((vols / "prod" / "web").iterdir()) == []  # a new, empty volume
    (kept,) = entries(vols / ".snapshots")
    assert (vols / ".snapshots" / kept / "index.html").read_text() == "<h1>hi</h1>"
    web = records_of(state)["volume/prod/web"]
    assert (web.status, web.intent, web.spec["storageClassName"]) == ("Available", None, "fast")


def test_emptying_the_source_is_refused_unless_allow_mass_delete(rs, small):
    src, vols, state = small
    assert rs("apply", str(src), "--state", str(state), "--auto-approve").code == 0
    (src / "v.yaml").unlink()
    before, recorded = meta_of(state), records_of(state)

    refused = rs("apply", str(src), "--state", str(state), "--auto-approve")
    assert refused.code == 1
    assert "nothing was changed" in refused.stderr and "--allow-mass-delete" in refused.stderr
    assert meta_of(state) == before and records_of(state) == recorded

    allowed = rs("apply", str(src), "--state", str(state), "--auto-approve", "--allow-mass-delete")
    assert allowed.code == 0, allowed.stderr
    assert "2 forgotten" in allowed.stdout
    assert entries(vols) == {"prod/web", "prod/db"}  # retain: the data stays
    assert all(r.retained for r in records_of(state).values())


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "flags",
    [
        ("--parallelism", "0"),
        ("--parallelism", "many"),
        ("--stall-after", "x"),
        ("--stall-after", "0"),
        ("--lock-timeout", "soon"),
        ("--lock-timeout", "10"),
        ("--format", "yaml"),
        ("--refresh=maybe",),
        ("--target", "not-an-address"),
        ("--no-such-flag",),
        ("--parallelism",),
    ],
    ids=lambda f: " ".join(f),
)
def test_usage_errors_exit_64_and_change_nothing(rs, small, flags):
    src, vols, state = small
    result = rs("apply", str(src), "--state", str(state), "--auto-approve", *flags)
    assert result.code == 64, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert not state.exists() and not vols.exists()


def test_a_broken_source_gets_diagnostics_and_no_state(rs, tmp_path):
    vols = tmp_path / "vols"
    src = write_source(
        tmp_path / "src",
        {
            "runefile.yaml": runefile(vols),
            "v.yaml": """\
                volumes:
                  - name: web
                    namespace: prod
                    size: 1Gi
                    accessMode: ReadWriteMany
                  - name: db
                    namespace: prod
                    sise: 1Gi
                    accessMode: ReadWriteOnce
            """,
        },
    )
    state = tmp_path / "state.db"
    result = rs("apply", str(src), "--state", str(state), "--auto-approve")
    assert result.code == 1
    problems = re.findall(r"^(\S*v\.yaml):(\d+):(\d+): error\[(RS\d{3})\]", result.stderr, re.M)
    assert len(problems) >= 2, result.stderr
    assert {int(line) for _, line, _, _ in problems} >= {5, 8}  # accessMode, the typo
    assert "ReadWriteMany" in result.stderr
    assert result.stdout == ""
    assert not state.exists() and not vols.exists()


# --------------------------------------------------------------------------- failures


def test_a_failing_volume_fails_the_run_stalls_and_recovers_after_retry(rs, tmp_path):
    vols, host = tmp_path / "vols", tmp_path / "host"
    host.mkdir()
    missing = host / "data"
    src = write_source(
        tmp_path / "src",
        {
            "runefile.yaml": runefile(vols, allowlist=host),
            "v.yaml": volume_list(["a", "b"]),
            "host.yaml": f"""\
                volume:
                  name: hostvol
                  namespace: prod
                  storageClassName: local-host
                  size: 1Gi
                  accessMode: ReadWriteOnce
                  parameters: {{hostPath: {missing}, createIfMissing: "false"}}
            """,
        },
    )
    state = tmp_path / "state.db"
    apply = ("apply", str(src), "--state", str(state), "--auto-approve", "--stall-after", "3")
    address = "volume/prod/hostvol"

    first = rs(*apply)
    assert first.code == 1
    assert "Apply failed: 2 created, 0 updated, 0 replaced, 0 destroyed, 0 forgotten; " in (
        first.stdout
    )
    assert "1 failed" in first.stdout
    failure = re.search(rf"^  {address}: (.*)$", first.stdout, re.MULTILINE)
    assert failure is not None, first.stdout
    assert f"hostPath {missing} does not exist" in failure[1]
    assert first.log()[address].startswith("FAILED: local-host: hostPath")
    assert entries(vols) == {"prod/a", "prod/b"}  # the healthy ones were applied
    assert not missing.exists()  # createIfMissing false: never created
    record = records_of(state)[address]
    assert (record.status, record.failed_runs, record.handle, record.intent) == (
        "Failed",
        1,
        None,
        None,
    )
    assert f"hostPath {missing} does not exist" in (record.failure_message or "")

    second = rs(*apply)
    assert second.code == 1
    assert records_of(state)[address].status == "Failed"
    assert records_of(state)[address].failed_runs == 2

    third = rs(*apply)
    assert third.code == 1
    assert "Stalled after 3 failed runs" in third.stdout
    assert f"rune-sync state retry {address}" in third.stdout
    assert state_list(rs, state)[address]["status"] == "Stalled"

    # the fourth run skips it: a no-op that says why, and no driver call
    fourth = rs(*apply, "--format", "json")
    events = [json.loads(line) for line in fourth.stdout.splitlines()]
    skipped = [c for c in events[0]["plan"]["changes"] if c["address"] == address]
    assert skipped[0]["action"] == "no-op"
    assert "Stalled after 3 failed runs" in skipped[0]["reason"]
    assert [e for e in events[1:] if e.get("address") == address] == []
    assert records_of(state)[address].failed_runs == 3
    assert records_of(state)[address].status == "Stalled"

    retried = rs("state", "retry", address, "--state", str(state))
    assert retried.code == 0, retried.stderr
    assert state_list(rs, state)[address]["status"] != "Stalled"

    missing.mkdir()
    fixed = rs(*apply)
    assert fixed.code == 0, fixed.stdout + fixed.stderr
    assert "Apply complete: 1 created" in fixed.stdout
    record = records_of(state)[address]
    assert (record.status, record.handle, record.failed_runs, record.intent) == (
        "Available",
        os.path.realpath(missing),
        0,
        None,
    )
    assert rs("plan", str(src), "--state", str(state), "--detailed-exitcode").code == 0


def test_failures_in_json_output(rs, tmp_path):
    vols, host = tmp_path / "vols", tmp_path / "host"
    host.mkdir()
    src = write_source(
        tmp_path / "src",
        {
            "runefile.yaml": runefile(vols, allowlist=host),
            "v.yaml": volume_list(["a"]),
            "host.yaml": f"""\
                volume:
                  name: hostvol
                  namespace: prod
                  storageClassName: local-host
                  size: 1Gi
                  accessMode: ReadWriteOnce
                  parameters: {{hostPath: {host / "gone"}}}
            """,
        },
    )
    state = tmp_path / "state.db"
    result = rs("apply", str(src), "--state", str(state), "--auto-approve", "--format", "json")
    assert result.code == 1
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["event"] == "plan" and events[-1]["event"] == "summary"
    failed = [e for e in events if e["event"] == "failed"]
    assert [e["address"] for e in failed] == ["volume/prod/hostvol"]
    summary = events[-1]
    assert summary["ok"] is False
    assert summary["counts"]["created"] == 1 and summary["counts"]["failed"] == 1
    assert [f["address"] for f in summary["failures"]] == ["volume/prod/hostvol"]
    assert "does not exist" in summary["failures"][0]["message"]


def test_the_text_plan_names_a_stalled_volume(rs, tmp_path):
    vols, host = tmp_path / "vols", tmp_path / "host"
    host.mkdir()
    src = write_source(
        tmp_path / "src",
        {
            "runefile.yaml": runefile(vols, allowlist=host),
            "host.yaml": f"""\
                volume:
                  name: hostvol
                  namespace: prod
                  storageClassName: local-host
                  size: 1Gi
                  accessMode: ReadWriteOnce
                  parameters: {{hostPath: {host / "gone"}}}
            """,
        },
    )
    state = tmp_path / "state.db"
    apply = ("apply", str(src), "--state", str(state), "--auto-approve", "--stall-after", "1")
    assert rs(*apply).code == 1
    assert records_of(state)["volume/prod/hostvol"].status == "Stalled"
    skipped = rs(*apply)
    assert "volume/prod/hostvol" in skipped.stdout
    assert "Stalled" in skipped.stdout
    assert "The storage matches the source" not in skipped.stdout
