"""Benchmark: ``rune-sync watch`` polling a git repository served by ``git daemon``.

Measures, for a repository of N volumes (default 1,000 in 10 files): from ``git push``
to the cycle that applied it (poll interval 1 s, so ≤ interval + a cycle), over K
pushes each adding one volume; and the watcher's idle CPU while polling a ref that does
not move (``/proc/<pid>/stat`` utime + stime of it and its git children, over S
seconds).

    python -m bench.bench_watch_git [--volumes 1000] [--pushes 10] [--idle 20]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests import gitserve


def cycles(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(encoding="utf-8").splitlines():
        record = json.loads(line) if line.startswith("{") else None
        if record and record["event"] == "cycle":
            out.append(record)
    return out


def wait_cycles(log: Path, count: int, timeout: float = 120.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = cycles(log)
        if len(found) >= count:
            return found
        time.sleep(0.01)
    raise SystemExit(f"timed out waiting for cycle {count}:\n{log.read_text()[-2000:]}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime + stime, and cutime + cstime: the git ls-remote children count too
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def volume_file(namespace: str, names: list[str]) -> str:
    rows = [
        f"  - {{name: {n}, namespace: {namespace}, size: 1Gi, accessMode: ReadWriteOnce, "
        "reclaimPolicy: retain}"
        for n in names
    ]
    return "volumes:\n" + "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--volumes", type=int, default=1000)
    parser.add_argument("--pushes", type=int, default=10)
    parser.add_argument("--idle", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-watch-git-") as tmp:
        root = Path(tmp)
        (root / "served").mkdir()
        repo = gitserve.make_repo(root / "served")
        files: dict[str, str | None] = {
            "runefile.yaml": f"storage:\n  localVolumeRoot: {root / 'vols'}\n"
        }
        per = max(1, args.volumes // 10)
        for f in range(10):
            names = [f"v{f}{i:04d}" for i in range(per)]
            files[f"ns-{f}.yaml"] = volume_file(f"n{f}", names)
        repo.commit(files, "seed")
        repo.push()
        env = {**os.environ, "RUNE_SYNC_CACHE_DIR": str(root / "cache")}
        log = root / "watch.log"
        with gitserve.git_daemon(root / "served") as url, open(log, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "rune_sync", "watch", f"{url}repo.git",
                 "--state", str(root / "state.db"), "--interval", "1s", "--resync", "0",
                 "--log-format", "json"],
                env=env, stdout=subprocess.DEVNULL, stderr=err,
            )  # fmt: skip
            try:
                wait_cycles(log, 1, timeout=600)
                latencies = []
                for k in range(args.pushes):
                    repo.commit({f"extra-{k}.yaml": volume_file("extra", [f"e{k}"])}, f"e{k}")
                    pushed = time.monotonic()
                    repo.push()
                    wait_cycles(log, 2 + k)
                    latencies.append(time.monotonic() - pushed)
                before, started = cpu_seconds(proc.pid), time.monotonic()
                time.sleep(args.idle)
                idle = (cpu_seconds(proc.pid) - before) / (time.monotonic() - started)
                assert len(cycles(log)) == 1 + args.pushes, "an idle poll ran a cycle"
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        phases = [c["phases_s"] for c in cycles(log)[1:]]
        print(f"volumes: {args.volumes}, pushes: {args.pushes}, interval 1s")
        print(
            f"push → applied: median {statistics.median(latencies):.2f} s, "
            f"max {max(latencies):.2f} s"
        )
        load = [p.get("load", 0.0) for p in phases]
        print(f"cycle load phase (ls-remote, fetch, export, validate): median "
              f"{statistics.median(load):.2f} s")  # fmt: skip
        print(f"idle CPU while polling every 1s: {idle * 100:.2f} % of a core")


if __name__ == "__main__":
    main()
