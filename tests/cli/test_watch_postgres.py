"""Several ``rune-sync watch`` processes on one PostgreSQL state (Step 8 §3): one applies
at a time, the others wait for the lock and plan again on the state they find, and a
server restart fails cycles cleanly until the watchers reconnect and converge.

Real watcher processes (``python -m rune_sync watch``), one directory source, the local
driver into a temp dir, the session's PostgreSQL server. While they run, a thread of the
test samples the server's advisory locks and ``rune_sync.locks`` every few milliseconds.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from rune_sync.state.backend import open_backend
from rune_sync.state.pglock import LOCK_CLASS
from tests.cli.test_apply_reliability import assert_converged, records_of, serial_of
from tests.cli.test_watch import Watcher, runefile, save, wait_for, watcher
from tests.pgserver import PASSWORD, PgServer

WATCHERS = 3


def rows(namespace: str, names: list[str]) -> str:
    listed = "\n".join(
        f"  - {{name: {n}, namespace: {namespace}, size: 1Gi, accessMode: ReadWriteOnce, "
        "reclaimPolicy: retain}"
        for n in names
    )
    return f"volumes:\n{listed}\n"


class LockSampler:
    """Samples, until stopped, how many rune-sync advisory locks are granted and which
    process ``rune_sync.locks`` names as the holder."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.most = 0
        self.holders: set[int] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LockSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            with (
                contextlib.suppress(psycopg.Error),
                psycopg.connect(self._url, autocommit=True, connect_timeout=2) as conn,
            ):
                while not self._stop.wait(0.005):
                    granted = conn.execute(
                        "SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory' "
                        "AND granted AND classid = %s::bigint::oid AND objsubid = 2",
                        (LOCK_CLASS,),
                    ).fetchone()
                    holder = conn.execute("SELECT pid FROM rune_sync.locks").fetchall()
                    self.most = max(self.most, granted[0] if granted else 0)
                    self.holders.update(int(r[0]) for r in holder)
                    self.samples += 1
            self._stop.wait(0.1)  # the server restarts: connect again


@contextlib.contextmanager
def watchers(tmp_path: Path, src: Path, url: str) -> Iterator[list[Watcher]]:
    args = ("--state", url, "--lock-timeout", "30s", "--debounce", "50ms", "--resync", "0")
    # The state exists before they start: first openings of an empty database at once
    # can race in creating the schema (state/pgschema.py's to_regclass check, under the
    # migration lock, reads a stale catalog: "relation schema_info already exists");
    # the failed cycle is retried and converges, but these tests are about applying.
    with open_backend(url, create=True):
        pass
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(watcher(tmp_path, src, *args)) for _ in range(WATCHERS)]


def stop_all(ws: list[Watcher]) -> None:
    """SIGTERM each watcher: a running cycle finishes and releases the lock; exit 0."""
    for w in ws:
        w.proc.send_signal(signal.SIGTERM)
    for w in ws:
        assert w.proc.wait(timeout=30) == 0, w.text()[-2000:]


def applying_cycles(ws: list[Watcher]) -> list[dict[str, Any]]:
    return [c for w in ws for c in w.cycles() if any(":" not in k for k in c["actions"])]


def created(ws: list[Watcher]) -> Counter[str]:
    return Counter(
        r["address"]
        for w in ws
        for r in w.records()
        if r["event"] == "change" and r.get("phase") == "done" and r.get("action") == "create"
    )


def test_three_watchers_apply_one_at_a_time_and_lose_nothing(tmp_path, pg_url):
    src, vols = tmp_path / "src", tmp_path / "vols"
    src.mkdir()
    save(src / "runefile.yaml", runefile(vols))
    save(src / "ns-a.yaml", rows("a", [f"v{i:03d}" for i in range(50)]))
    with LockSampler(pg_url) as sampler, watchers(tmp_path, src, pg_url) as ws:
        for w in ws:
            assert w.next_cycle(0, timeout=40)["result"] == "ok", w.text()[-2000:]
        expected = {f"a/v{i:03d}" for i in range(50)}
        for batch in range(4):
            names = [f"w{batch}{i:02d}" for i in range(20)]
            save(src / f"ns-b{batch}.yaml", rows(f"b{batch}", names))
            expected |= {f"b{batch}/{n}" for n in names}
            wait_for(
                f"batch {batch} applied",
                lambda want=frozenset(expected): (
                    {f"volume/{v}" for v in want} <= set(records_of(pg_url))
                ),
                timeout=30,
            )
        wait_for(
            "every watcher idle after the last change",
            lambda: all(w.cycles() and w.cycles()[-1]["result"] == "ok" for w in ws),
        )
        pids = {w.proc.pid for w in ws}
        stop_all(ws)
    assert sampler.samples > 0 and sampler.most == 1, "never two lock holders at once"
    assert sampler.holders and sampler.holders <= pids
    twice = {a: n for a, n in created(ws).items() if n > 1}
    assert twice == {}, f"created by more than one watcher: {twice}"
    assert len(created(ws)) == len(expected)
    assert serial_of(pg_url) == len(applying_cycles(ws)), "each apply moved the serial once"
    waited = [r for w in ws for r in w.records() if r["event"] == "lock-wait"]
    assert waited, "the others waited for the lock"
    assert_converged(vols, pg_url, expected, tmp_path)


def test_a_server_restart_fails_cycles_cleanly_and_the_watchers_reconnect_and_converge(
    tmp_path, pg_server: PgServer, pg_url
):
    src, vols = tmp_path / "src", tmp_path / "vols"
    src.mkdir()
    save(src / "runefile.yaml", runefile(vols))
    save(src / "ns-a.yaml", rows("a", ["first"]))
    with watchers(tmp_path, src, pg_url) as ws:
        for w in ws:
            assert w.next_cycle(0, timeout=40)["result"] == "ok", w.text()[-2000:]
        names = [f"v{i:04d}" for i in range(600)]
        save(src / "ns-big.yaml", rows("big", names))
        wait_for(
            "the big apply under way",
            lambda: any(a.startswith("volume/big/") for a in created(ws)),
            timeout=30,
        )
        pg_server.restart()
        failed = wait_for(
            "a cycle failed by the restart",
            lambda: [c for w in ws for c in w.cycles() if c["result"] in ("error", "failed")],
            timeout=30,
        )
        assert any("PostgreSQL" in (c.get("error") or "") for c in failed), failed
        expected = {"a/first"} | {f"big/{n}" for n in names}
        wait_for(
            "the watchers to converge after the restart",
            lambda: {f"volume/{v}" for v in expected} <= set(records_of(pg_url)),
            timeout=40,
        )
        wait_for(
            "every watcher healthy again",
            lambda: all(w.cycles()[-1]["result"] == "ok" for w in ws),
            timeout=30,
        )
        for w in ws:
            assert w.proc.poll() is None, "a lost connection never ends a watcher"
        stop_all(ws)
        for w in ws:
            assert "Traceback" not in w.text() and PASSWORD not in w.text()
    assert_converged(vols, pg_url, expected, tmp_path)


pytestmark = pytest.mark.usefixtures("pg_server")
