"""Benchmark: the SQLite state — loading it, and the cost of one step (one put).

Targets (DESIGN §5, §11): loading a 10,000-record state in at most 0.2 s; a put is one
small write whose cost does not grow with the size of the state (no rewrite of the whole
document after every step). For 1k, 10k and 100k records it prints: open time, best
load_all time, the mean cost of single-record puts (each its own transaction, half
updates and half new records), the WAL bytes one put appends, and the time of 10,000
single-record puts in a row.

    python -m bench.bench_state [--sizes 1000,10000,100000] [--repeat 5] [--puts 10000]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rune_sync.spec.model import Address, Kind
from rune_sync.state import StateRecord, open_backend

NOW = datetime(2025, 11, 21, tzinfo=UTC)


def record(i: int, *, attempts: int = 0) -> StateRecord:
    """A realistic volume record (~600 bytes of spec and parameters)."""
    name = f"data-{i:07d}"
    namespace = f"team-{i % 50:02d}"
    return StateRecord(
        address=Address(Kind.VOLUME, namespace, name),
        spec={
            "name": name,
            "namespace": namespace,
            "size": f"{i % 100 + 1}Gi",
            "accessMode": "ReadWriteOnce",
            "storageClassName": "do-nyc3" if i % 2 else "local",
            "reclaimPolicy": "retain",
            "parameters": {"fsType": "ext4"},
            "labels": {"app": f"app-{i % 200}", "tier": "data", "owner": "platform"},
        },
        driver="do-volume" if i % 2 else "local",
        status="Bound",
        handle=f"vol-{i:012x}",
        bound_claim=f"{namespace}/app-{i % 200}",
        attempts=attempts,
        driver_parameters={
            "region": "nyc3",
            "fsType": "ext4",
            "apiToken": "secret:do-api-token.shared.rune/token",
        },
        created_at=NOW,
        updated_at=NOW + timedelta(seconds=i),
    )


def build(path: Path, count: int) -> None:
    with open_backend(path, create=True) as state, state.transaction() as tx:
        for i in range(count):
            tx.put(record(i))


def best(runs: list[float]) -> float:
    return min(runs)


def measure(path: Path, count: int, *, repeat: int, puts: int) -> dict[str, float]:
    build(path, count)
    start = time.perf_counter()
    state = open_backend(path, create=False)
    opened = time.perf_counter() - start
    try:
        loads = []
        for _ in range(repeat):
            gc.collect()
            start = time.perf_counter()
            loaded = state.load_all()
            loads.append(time.perf_counter() - start)
            if len(loaded) != count:
                raise SystemExit(f"loaded {len(loaded)} records, expected {count}")
            del loaded

        # One put = one transaction. Half updates of existing records, half new ones.
        sample = [record(i * 7919 % count, attempts=1) for i in range(500)]
        sample += [record(count + i) for i in range(500)]
        start = time.perf_counter()
        for r in sample:
            state.put(r)
        put_us = (time.perf_counter() - start) / len(sample) * 1e6

        # Bytes one put appends to the WAL, from an emptied WAL (no checkpoint in between).
        wal = Path(f"{path}-wal")
        with sqlite3.connect(path) as other:
            other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        other.close()
        before = wal.stat().st_size
        for i in range(100):
            state.put(record(i * 104729 % count, attempts=2))
        wal_per_put = (wal.stat().st_size - before) / 100

        start = time.perf_counter()
        for i in range(puts):
            state.put(record(i % count, attempts=3))
        run_s = time.perf_counter() - start
    finally:
        state.close()
    return {
        "open_s": opened,
        "load_best_s": best(loads),
        "load_median_s": statistics.median(loads),
        "put_us": put_us,
        "wal_bytes_per_put": wal_per_put,
        "puts_s": run_s,
        "db_mb": path.stat().st_size / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--puts", type=int, default=10_000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="rune-sync-bench-state-"))
    header = (
        f"{'records':>8} {'db MB':>7} {'open s':>7} {'load best s':>12} {'load med s':>11} "
        f"{'µs/put':>7} {'WAL B/put':>10} {f'{args.puts} puts s':>12}"
    )
    print(header)
    print("-" * len(header))
    try:
        for n in sizes:
            m = measure(work / f"state-{n}.db", n, repeat=args.repeat, puts=args.puts)
            print(
                f"{n:>8} {m['db_mb']:>7.1f} {m['open_s']:>7.3f} {m['load_best_s']:>12.3f} "
                f"{m['load_median_s']:>11.3f} {m['put_us']:>7.0f} {m['wal_bytes_per_put']:>10.0f} "
                f"{m['puts_s']:>12.2f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
