"""Benchmark: ``rune-sync watch`` on a 10,000-volume directory.

Targets (issue: Step 7): from saving one edited file (adding a volume) to the new
volume's directory existing on disk ≤ 1 s (median and max over 20 edits); idle CPU of
the watcher when nothing changes < 1 % of a core (``/proc/<pid>/stat`` utime + stime
over 30 s).

The repository is generated (bench/generate.py) and brought to "all applied"
(bench/seed.py); the watcher runs as a separate process with the default debounce,
``--log-format json``; its cycle records give where the time goes (phases).

    python -m bench.bench_watch [--volumes 10000] [--edits 20] [--idle 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.generate import generate
from bench.measure import compile_package
from bench.seed import seed

WATCH = (sys.executable, "-m", "rune_sync", "watch")


def cycles(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("event") == "cycle":
            out.append(record)
    return out


def wait(what: str, check: Any, *, timeout: float = 120.0, every: float = 0.001) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every)


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def memory(pid: int) -> str:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return f"RSS {fields['VmRSS'].strip()}, peak {fields['VmHWM'].strip()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--volumes", type=int, default=10_000)
    parser.add_argument("--edits", type=int, default=20)
    parser.add_argument("--idle", type=float, default=30.0)
    args = parser.parse_args()
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="rune-sync-bench-watch-"))
    repo = generate(work / "repo", volumes=args.volumes, volume_root=work / "vols")
    state = work / "state.db"
    seed(repo, state)
    log = work / "watch.log"
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("RUNE_SYNC_STATE", None)
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [*WATCH, str(repo), "--state", str(state), "--log-format", "json"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        start = time.monotonic()
        first = wait("the first cycle", lambda: cycles(log))[0]
        print(
            f"first cycle (refresh, {args.volumes} volumes, no changes): "
            f"{first['duration_s']:.2f} s in the cycle, {time.monotonic() - start:.2f} s "
            f"from start; result {first['result']}"
        )
        latencies: list[float] = []
        phases: list[dict[str, float]] = []
        files = sorted((repo / "volumes").glob("*.yaml"))
        for i in range(args.edits):
            seen = len(cycles(log))
            target = files[i % len(files)]
            name = f"bench-new-{i:03d}"
            text = target.read_text(encoding="utf-8") + (
                f"---\nvolume:\n  name: {name}\n  namespace: team-bench\n"
                "  storageClassName: local\n  size: 1Gi\n  accessMode: ReadWriteOnce\n"
                "  reclaimPolicy: retain\n"
            )
            made = work / "vols" / "team-bench" / name
            saved = time.monotonic()
            target.write_text(text, encoding="utf-8")
            wait(f"{made}", made.is_dir)
            latencies.append(time.monotonic() - saved)
            record = wait("the cycle record", lambda s=seen: cycles(log)[s:])[-1]
            if record["result"] != "ok":
                raise SystemExit(f"cycle failed: {record}")
            phases.append(record.get("phases_s") or {})
        latencies.sort()
        p90 = latencies[int(0.9 * (len(latencies) - 1))]
        print(
            f"save → volume directory over {len(latencies)} edits: "
            f"median {statistics.median(latencies):.3f} s, p90 {p90:.3f} s, "
            f"max {latencies[-1]:.3f} s, min {latencies[0]:.3f} s (target ≤ 1 s)"
        )
        names = sorted({k for p in phases for k in p})
        spent = {k: statistics.median(p.get(k, 0.0) for p in phases) for k in names}
        print(
            "median per phase of those cycles: "
            + ", ".join(f"{k} {v:.3f} s" for k, v in spent.items())
        )

        wait("quiet", lambda: len(cycles(log)) >= args.edits + 1)
        tick = os.sysconf("SC_CLK_TCK")
        before, t0 = cpu_ticks(proc.pid), time.monotonic()
        time.sleep(args.idle)  # measuring idle CPU: nothing to wait on by design
        after, t1 = cpu_ticks(proc.pid), time.monotonic()
        share = (after - before) / tick / (t1 - t0) * 100
        print(
            f"idle CPU over {t1 - t0:.0f} s: {share:.3f} % of a core "
            f"({after - before} ticks; target < 1 %); memory: {memory(proc.pid)}"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        print(f"watcher exited {code} after SIGTERM")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
