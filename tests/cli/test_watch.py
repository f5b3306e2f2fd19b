"""``rune-sync watch`` as a real process: local driver into tmp dirs, state in tmp.

Each test starts the watcher with ``--log-format json`` (stderr into a file it polls),
changes the source, and waits — with a timeout, never a fixed sleep — for the log
records, the volume directories and the state to follow.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rune_sync.state.backend import StateNotFoundError, open_backend
from rune_sync.state.model import LockInfo, StateRecord
from rune_sync.watch.http import signature
from tests.conftest import run_cli

SECRET = "s3cret-hook-value"


def volume(name: str, *, policy: str = "retain", labels: str = "") -> str:
    extra = f", labels: {{{labels}}}" if labels else ""
    return (
        f"volume: {{name: {name}, namespace: prod, size: 1Gi, accessMode: ReadWriteOnce, "
        f"reclaimPolicy: {policy}{extra}}}\n"
    )


def many(count: int) -> str:
    rows = [
        f"  - {{name: v{i:04d}, namespace: bulk, size: 1Gi, accessMode: ReadWriteOnce, "
        "reclaimPolicy: retain}"
        for i in range(count)
    ]
    return "volumes:\n" + "\n".join(rows) + "\n"


def save(path: Path, text: str) -> None:
    """Save like an editor that writes a hidden temporary file and renames it: the
    watcher sees the whole new content in one event, never a half-written file."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def runefile(vols: Path) -> str:
    return f"storage:\n  localVolumeRoot: {vols}\n"


def records_of(state: Path) -> dict[str, StateRecord]:
    try:
        backend = open_backend(state, create=False)
    except StateNotFoundError:
        return {}
    with backend:
        return {str(a): r for a, r in backend.load_all().items()}


def lock_holder(state: Path) -> object:
    with open_backend(state, create=False) as backend:
        return backend.lock_info()


def wait_for(what: str, check: Callable[[], Any], *, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Watcher:
    """A running ``rune-sync watch`` and its JSON log records."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log_path = log

    def records(self) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(encoding="utf-8").splitlines()
        out = []
        for line in lines:
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
        return out

    def text(self) -> str:
        return self.log_path.read_text(encoding="utf-8")

    def cycles(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["event"] == "cycle"]

    def next_cycle(self, after: int, *, timeout: float = 20.0) -> dict[str, Any]:
        """The first cycle record after the ``after`` ones seen so far."""
        found = wait_for(
            f"cycle #{after + 1}\n{self.text()[-3000:]}",
            lambda: self.cycles()[after:],
            timeout=timeout,
        )
        return found[0]

    def address(self, serves: str) -> str:
        record = wait_for(
            f"a server for {serves}",
            lambda: [
                r for r in self.records() if r["event"] == "listening" and serves in r["serves"]
            ],
        )[0]
        return f"http://{record['address']}"


@contextlib.contextmanager
def watcher(tmp_path: Path, src: Path, *args: str) -> Iterator[Watcher]:
    log = tmp_path / f"watch-{time.monotonic_ns()}.log"
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("RUNE_SYNC_STATE", None)
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rune_sync", "watch", str(src), "--log-format", "json", *args],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        yield Watcher(proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    src = tmp_path / "src"
    vols = tmp_path / "vols"
    src.mkdir()
    save(src / "runefile.yaml", runefile(vols))
    return src, vols, tmp_path / "state.db"


def test_storage_follows_edits_additions_and_removals(tmp_path, setup):
    src, vols, state = setup
    for name in ("a", "c", "d"):
        save(src / f"{name}.yaml", volume(name))
    save(src / "b.yaml", volume("b", policy="delete"))
    with watcher(tmp_path, src, "--state", str(state), "--debounce", "50ms") as w:
        first = w.next_cycle(0)
        assert first["result"] == "ok", first
        assert first["trigger"] == "start" and first["commit"] is None and first["refresh"]
        assert first["actions"] == {"create": 4}
        assert {p.name for p in (vols / "prod").iterdir()} == {"a", "b", "c", "d"}

        save(src / "e.yaml", volume("e"))
        added = w.next_cycle(1)
        assert (added["trigger"], added["result"], added["refresh"]) == ("change", "ok", False)
        assert added["actions"] == {"create": 1}
        assert (vols / "prod" / "e").is_dir()

        save(src / "c.yaml", volume("c", labels="tier: gold"))
        edited = w.next_cycle(2)
        assert edited["actions"] == {"update": 1}, edited
        assert records_of(state)["volume/prod/c"].spec["labels"] == {"tier": "gold"}

        (src / "a.yaml").unlink()
        forgot = w.next_cycle(3)
        assert forgot["actions"] == {"forget": 1}, forgot
        assert records_of(state)["volume/prod/a"].retained
        assert (vols / "prod" / "a").is_dir(), "a forgotten volume keeps its data"

        (src / "b.yaml").unlink()
        held = w.next_cycle(4)
        assert held["result"] == "ok" and held["actions"] == {"destroy:withheld": 1}, held
        withheld = [r for r in w.records() if r["event"] == "withheld"]
        assert "volume/prod/b: destroy withheld: needs --allow-destroy" in withheld[-1]["detail"]
        assert (vols / "prod" / "b").is_dir()
        assert not records_of(state)["volume/prod/b"].retained
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(timeout=20) == 0


def test_a_burst_of_saves_coalesces_into_few_cycles(tmp_path, setup):
    src, vols, state = setup
    with watcher(tmp_path, src, "--state", str(state)) as w:
        assert w.next_cycle(0)["result"] == "ok"
        for i in range(20):
            save(src / f"burst-{i:02d}.yaml", volume(f"burst-{i:02d}"))
        wait_for(
            "all 20 volumes",
            lambda: sum(c["actions"].get("create", 0) for c in w.cycles()) == 20,
        )
        bursts = [c for c in w.cycles() if c["trigger"] == "change"]
        assert 1 <= len(bursts) < 20, bursts
        assert len(list((vols / "prod").iterdir())) == 20
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(timeout=20) == 0


def test_a_destroy_runs_only_once_the_source_has_settled(tmp_path, setup):
    """With --allow-destroy, a file that vanishes and comes back while the plan waits
    (a checkout under way, an editor's slow save) destroys nothing."""
    src, vols, state = setup
    save(src / "a.yaml", volume("a"))
    save(src / "b.yaml", volume("b", policy="delete"))
    args = ("--state", str(state), "--allow-destroy", "--debounce", "1s")
    with watcher(tmp_path, src, *args) as w:
        assert w.next_cycle(0)["actions"] == {"create": 2}
        (src / "b.yaml").unlink()
        wait_for("the settle wait", lambda: [r for r in w.records() if r["event"] == "settle"])
        save(src / "b.yaml", volume("b", policy="delete"))
        wait_for(
            "the superseded plan",
            lambda: [r for r in w.records() if r["event"] == "superseded"],
        )
        superseded = w.next_cycle(1)
        assert (superseded["result"], superseded["actions"]) == ("ok", {})
        calm = w.next_cycle(2)  # the restored file's own cycle: nothing to do
        assert (calm["trigger"], calm["result"], calm["actions"]) == ("change", "ok", {})
        assert (vols / "prod" / "b").is_dir() and "volume/prod/b" in records_of(state)

        seen = len(w.cycles())
        (src / "b.yaml").unlink()
        destroyed = wait_for(
            "the destroy",
            lambda: [c for c in w.cycles()[seen:] if c["actions"].get("destroy")],
        )[0]
        assert destroyed["result"] == "ok"
        assert not (vols / "prod" / "b").exists()
        assert "volume/prod/b" not in records_of(state)
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(timeout=20) == 0


def test_a_broken_file_is_logged_retried_and_recovered_and_health_follows(tmp_path, setup):
    src, vols, state = setup
    save(src / "a.yaml", volume("a"))
    args = ("--state", str(state), "--listen", "127.0.0.1:0", "--unhealthy-after", "2")
    with watcher(tmp_path, src, *args) as w:
        base = w.address("/healthz")
        assert w.next_cycle(0)["result"] == "ok"
        assert httpx.get(f"{base}/healthz").json()["status"] == "ok"

        save(src / "b.yaml", "volume: {name: b, size: [\n")
        broken = w.next_cycle(1)
        assert broken["result"] == "error" and broken["failures"] == 1
        assert "b.yaml:" in broken["error"] and broken["retry_in_s"] == 1.0
        health = httpx.get(f"{base}/healthz")
        assert health.status_code == 200 and health.json()["status"] == "retrying"

        stalled = wait_for(
            "two failures in a row",
            lambda: [c for c in w.cycles() if c.get("failures", 0) >= 2],
        )[0]
        assert stalled["result"] == "error"
        health = httpx.get(f"{base}/healthz")
        assert health.status_code == 503 and health.json()["status"] == "stalled"
        assert w.proc.poll() is None, "a failing cycle never ends the watcher"

        seen = len(w.cycles())
        save(src / "b.yaml", volume("b"))
        fixed = wait_for(
            "a good cycle after the fix",
            lambda: [c for c in w.cycles()[seen:] if c["result"] == "ok"],
        )[0]
        assert fixed["actions"] == {"create": 1}
        assert (vols / "prod" / "b").is_dir()
        assert httpx.get(f"{base}/healthz").status_code == 200

        families = {
            f.name: f for f in text_string_to_metric_families(httpx.get(f"{base}/metrics").text)
        }
        cycles = {
            s.labels["result"]: s.value
            for s in families["rune_sync_watch_cycles"].samples
            if s.name.endswith("_total")
        }
        assert cycles["ok"] >= 2 and cycles["error"] >= 2
        resources = {
            (s.labels["kind"], s.labels["status"]): s.value
            for s in families["rune_sync_resources"].samples
        }
        assert resources[("volume", "Available")] == 2
        last = families["rune_sync_watch_last_success_timestamp_seconds"].samples[0].value
        assert abs(last - time.time()) < 60
        assert families["rune_sync_watch_consecutive_failures"].samples[0].value == 0
        latency = families["rune_sync_watch_change_to_applied_seconds"].samples
        assert any(s.name.endswith("_count") and s.value >= 1 for s in latency)
        w.proc.send_signal(signal.SIGINT)
        assert w.proc.wait(timeout=20) == 0


def test_a_signed_webhook_runs_a_cycle_and_a_bad_signature_is_refused(tmp_path, setup):
    src, _, state = setup
    secret_file = tmp_path / "hook.secret"
    secret_file.write_text(SECRET + "\n", encoding="utf-8")
    args = (
        "--state",
        str(state),
        "--webhook-listen",
        "127.0.0.1:0",
        "--webhook-secret-file",
        str(secret_file),
    )
    with watcher(tmp_path, src, *args) as w:
        url = w.address("/webhook") + "/webhook"
        assert w.next_cycle(0)["result"] == "ok"
        body = json.dumps({"ref": "refs/heads/main"}).encode()

        missing = httpx.post(url, content=body)
        assert missing.status_code == 401
        wrong = httpx.post(
            url, content=body, headers={"X-Hub-Signature-256": signature(b"guess", body)}
        )
        assert wrong.status_code == 401
        other_body = httpx.post(
            url,
            content=b"{}",
            headers={"X-Hub-Signature-256": signature(SECRET.encode(), body)},
        )
        assert other_body.status_code == 401
        rejected = [r for r in w.records() if r["event"] == "webhook"]
        assert [r["result"] for r in rejected] == ["rejected"] * 3
        # A rejected delivery queued nothing: the next cycle is the file change's alone.
        save(src / "a.yaml", volume("a"))
        changed = w.next_cycle(1)
        assert changed["trigger"] == "change", changed

        save(src / "b.yaml", volume("b"))
        w.next_cycle(2)
        good = httpx.post(
            url,
            content=body,
            headers={
                "X-Hub-Signature-256": signature(SECRET.encode(), body),
                "X-GitHub-Event": "push",
            },
        )
        assert good.status_code == 202
        hooked = w.next_cycle(3)
        assert hooked["trigger"] == "webhook" and hooked["result"] == "ok"
        assert SECRET not in w.text()
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(timeout=20) == 0
    assert SECRET not in w.text()


def test_one_address_can_serve_health_metrics_and_the_webhook(tmp_path, setup):
    src, _, state = setup
    secret_file = tmp_path / "hook.secret"
    secret_file.write_text(SECRET, encoding="utf-8")
    args = ("--state", str(state), "--listen", "127.0.0.1:0", "--webhook-listen", "127.0.0.1:0")
    with watcher(tmp_path, src, *args, "--webhook-secret-file", str(secret_file)) as w:
        base = w.address("/webhook")
        assert w.next_cycle(0)["result"] == "ok"
        servers = [r for r in w.records() if r["event"] == "listening"]
        assert [r["serves"] for r in servers] == ["/healthz,/metrics,/webhook"]
        assert httpx.get(f"{base}/healthz").status_code == 200
        body = b"{}"
        hook = httpx.post(
            f"{base}/webhook",
            content=body,
            headers={"X-Hub-Signature-256": signature(SECRET.encode(), body)},
        )
        assert hook.status_code == 202
        assert w.next_cycle(1)["trigger"] == "webhook"
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(timeout=20) == 0


def test_sigterm_mid_apply_finishes_in_flight_work_and_exits_0(tmp_path, setup):
    src, vols, state = setup
    total = 600
    save(src / "bulk.yaml", many(total))
    with watcher(tmp_path, src, "--state", str(state), "--parallelism", "1") as w:
        wait_for(
            "the first volume created",
            lambda: any(r["event"] == "change" for r in w.records()),
        )
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(timeout=30) == 0, w.text()[-2000:]
        stopped = w.cycles()[-1]
        assert stopped["result"] == "stopped"
        assert any(r["event"] == "stopping" for r in w.records())
        assert w.records()[-1]["event"] == "stopped"
    records = records_of(state)
    assert 0 < len(records) < total, "the signal did not land mid-apply"
    for address, record in records.items():
        assert record.intent is None, address
        assert record.status == "Available", (address, record.status)
        assert record.handle and os.path.isdir(record.handle), address
    on_disk = {f"volume/bulk/{p.name}" for p in (vols / "bulk").iterdir()}
    assert on_disk == set(records)
    assert lock_holder(state) is None
    rerun = run_cli(
        "apply",
        str(src),
        "--state",
        str(state),
        "--auto-approve",
        "--lock-timeout",
        "0",
        cwd=tmp_path,
    )
    assert rerun.code == 0, rerun.stderr[-2000:]
    assert len(records_of(state)) == total


def test_sighup_reads_the_runefile_again(tmp_path, setup):
    """The runefile outside the source is not watched: SIGHUP makes the next cycle read it."""
    src, vols, state = setup
    (src / "runefile.yaml").unlink()
    outside = tmp_path / "etc" / "runefile.yaml"
    outside.parent.mkdir()
    outside.write_text("storage: [\n", encoding="utf-8")
    save(src / "a.yaml", volume("a"))
    args = ("--state", str(state), "--runefile", str(outside))
    with watcher(tmp_path, src, *args) as w:
        assert w.next_cycle(0)["result"] == "error"
        second = w.next_cycle(1)
        assert second["trigger"] == "retry" and second["result"] == "error"
        outside.write_text(runefile(vols), encoding="utf-8")
        w.proc.send_signal(signal.SIGHUP)
        reloaded = wait_for(
            "the reload cycle",
            lambda: [c for c in w.cycles() if "reload" in c["trigger"]],
        )[0]
        assert reloaded["result"] == "ok" and reloaded["refresh"] is True
        assert reloaded["actions"] == {"create": 1}
        assert (vols / "prod" / "a").is_dir()
        assert any(r["event"] == "reload" for r in w.records())
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(timeout=20) == 0


def test_a_held_lock_fails_the_cycle_naming_the_holder_until_it_is_released(tmp_path, setup):
    src, vols, state = setup
    save(src / "a.yaml", volume("a"))
    holder = LockInfo.for_this_process(command="rune-sync apply by hand", now=datetime.now(UTC))
    with open_backend(state, create=True) as backend:
        backend.acquire(holder)
        with watcher(tmp_path, src, "--state", str(state)) as w:
            locked = w.next_cycle(0)
            assert locked["result"] == "error", locked
            assert "rune-sync apply by hand" in locked["error"]
            assert not (vols / "prod" / "a").exists()
            backend.release()
            recovered = wait_for(
                "a good cycle once the lock is free",
                lambda: [c for c in w.cycles() if c["result"] == "ok"],
            )[0]
            assert recovered["trigger"] == "retry" and recovered["actions"] == {"create": 1}
            assert (vols / "prod" / "a").is_dir()
            w.proc.send_signal(signal.SIGTERM)
            assert w.proc.wait(timeout=20) == 0


def test_a_driver_error_fails_the_cycle_and_the_retry_converges(tmp_path, setup):
    src, vols, state = setup
    vols.write_text("not a folder\n", encoding="utf-8")  # the volume root is a file
    save(src / "a.yaml", volume("a"))
    with watcher(tmp_path, src, "--state", str(state), "--stall-after", "10") as w:
        failed = w.next_cycle(0)
        assert failed["result"] == "failed", failed
        assert failed["actions"] == {"create:failed": 1}
        assert failed["error"].startswith("Apply failed:")
        [change] = [r for r in w.records() if r["event"] == "change"]
        assert change["level"] == "error" and change["address"] == "volume/prod/a"
        vols.unlink()
        recovered = wait_for(
            "a good cycle after the fix",
            lambda: [c for c in w.cycles() if c["result"] == "ok"],
        )[0]
        assert recovered["trigger"] == "retry" and recovered["refresh"] is True
        assert (vols / "prod" / "a").is_dir()
        assert records_of(state)["volume/prod/a"].status == "Available"
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(timeout=20) == 0


def test_the_resync_refreshes_and_corrects_drift(tmp_path, setup):
    src, vols, state = setup
    save(src / "a.yaml", volume("a"))
    with watcher(tmp_path, src, "--state", str(state), "--resync", "500ms") as w:
        assert w.next_cycle(0)["result"] == "ok"
        (vols / "prod" / "a").rmdir()  # drift: the directory deleted by hand
        healed = wait_for(
            "a resync that re-creates the volume",
            lambda: [
                c for c in w.cycles() if c["actions"].get("create") and c["trigger"] == "resync"
            ],
        )[0]
        assert healed["refresh"] is True and healed["result"] == "ok"
        assert (vols / "prod" / "a").is_dir()
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(timeout=20) == 0


def test_plan_runs_beside_a_watcher_between_cycles(tmp_path, setup):
    src, _, state = setup
    save(src / "a.yaml", volume("a"))
    with watcher(tmp_path, src, "--state", str(state)) as w:
        assert w.next_cycle(0)["result"] == "ok"
        assert lock_holder(state) is None
        planned = run_cli(
            "plan", str(src), "--state", str(state), "--detailed-exitcode", cwd=tmp_path
        )
        assert planned.code == 0, planned.stderr
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(timeout=20) == 0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("--webhook-listen", "127.0.0.1:0"), 64, "go together"),
        (("--listen", "nowhere"), 64, "is not HOST:PORT"),
        (("--debounce", "soon"), 64, "is not a duration"),
        (
            ("--webhook-listen", "127.0.0.1:0", "--webhook-secret-file", "/nonexistent/s"),
            1,
            "cannot read the webhook secret file",
        ),
    ],
)
def test_bad_options_fail_before_watching(tmp_path, setup, args, code, message):
    src, _, state = setup
    result = run_cli("watch", str(src), "--state", str(state), *args, cwd=tmp_path)
    assert result.code == code, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_source_fails_with_one_message(tmp_path):
    result = run_cli("watch", str(tmp_path / "nope"), cwd=tmp_path)
    assert result.code == 1
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_an_address_in_use_fails_at_start_with_one_message(tmp_path, setup):
    src, _, state = setup
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            "watch", str(src), "--state", str(state), "--listen", f"127.0.0.1:{port}", cwd=tmp_path
        )
    assert result.code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
