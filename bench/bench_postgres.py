"""Benchmark: PostgreSQL state next to SQLite — a no-change plan and a fresh apply.

Target (issue: Step 8): within 2× of SQLite. Measured: a no-change ``rune-sync plan``
of 10,000 volumes (with refresh and without) and ``rune-sync apply --auto-approve`` of
1,000 new local volumes, each as a separate process, best of ``--repeat``, against a
throwaway PostgreSQL server on 127.0.0.1 (TCP, scram password, fsync and
synchronous_commit on — the server's defaults) and against an SQLite file.

    python -m bench.bench_postgres [--plan-volumes 10000] [--apply-volumes 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.generate import generate
from bench.measure import Run, best_of, compile_package, run_once
from bench.seed import seed
from tests.pgserver import PgServer, start_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plan-volumes", type=int, default=10_000)
    parser.add_argument("--apply-volumes", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=10)
    args = parser.parse_args()
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="rune-sync-bench-pg-"))
    server = start_server(durable=True)
    env = {**os.environ, "RUNE_SYNC_STATE": ""}
    try:
        print(f"{'measure':<48} {'SQLite s':>9} {'PostgreSQL s':>13} {'ratio':>6} {'PG MB':>6}")
        n = args.plan_volumes
        repo = generate(work / "plan-repo", volumes=n, volume_root=work / "plan-vols")
        sqlite_state = str(work / "plan.db")
        pg_state = server.fresh_url()
        seed(repo, sqlite_state)  # type: ignore[arg-type]  # open_backend takes a URL too
        seed(repo, pg_state)  # type: ignore[arg-type]
        for label, extra in (("plan, refresh", []), ("plan --refresh=false", ["--refresh=false"])):
            runs = [
                best_of(
                    [sys.executable, "-m", "rune_sync", "plan", str(repo), "--state", state,
                     "--detailed-exitcode", *extra],
                    repeat=args.repeat, env=env,
                )[0]
                for state in (sqlite_state, pg_state)
            ]  # fmt: skip
            _row(f"{label}, {n} volumes, no change", *runs)

        m = args.apply_volumes
        root = work / "apply-vols"
        apply_repo = generate(work / "apply-repo", volumes=m, volume_root=root)

        def fresh_apply(target: Callable[[], str]) -> Run:
            best: Run | None = None
            for _ in range(args.repeat):
                shutil.rmtree(root, ignore_errors=True)
                argv = [
                    sys.executable, "-m", "rune_sync", "apply", str(apply_repo), "--state",
                    target(), "--auto-approve", "--parallelism", str(args.parallelism),
                ]  # fmt: skip
                run = run_once(argv, env=env)
                if run.returncode != 0:
                    raise SystemExit(f"apply exited {run.returncode}")
                best = run if best is None or run.wall_s < best.wall_s else best
            assert best is not None
            return best

        counter = iter(range(1_000_000))
        sqlite_apply = fresh_apply(lambda: str(work / f"apply-{next(counter)}.db"))
        pg_apply = fresh_apply(server.fresh_url)
        _row(f"apply, {m} new volumes", sqlite_apply, pg_apply)
    finally:
        _stop(server)
        shutil.rmtree(work, ignore_errors=True)


def _row(label: str, sqlite: Run, postgres: Run) -> None:
    ratio = postgres.wall_s / sqlite.wall_s
    print(
        f"{label:<48} {sqlite.wall_s:>9.3f} {postgres.wall_s:>13.3f} {ratio:>6.2f} "
        f"{postgres.peak_mb:>6.1f}"
    )


def _stop(server: PgServer) -> None:
    server.stop(mode="immediate")
    shutil.rmtree(server.root, ignore_errors=True)


if __name__ == "__main__":
    main()
