"""Benchmark: a no-change ``rune-sync plan`` (with refresh) on 1k, 10k and 100k volumes.

Targets (issue: Step 3): 10,000 volumes in at most 2.0 s wall and 300 MB; 1,000 in at
most 0.4 s (Terraform 1.11 planning 1,000 ``terraform_data`` resources: 1.66 s on this
machine). Each size is generated, brought to "all applied" (bench/seed.py), then
planned as a separate process, with and without refresh.

    python -m bench.bench_plan [--sizes 1000,10000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bench.generate import generate
from bench.measure import best_of, compile_package
from bench.seed import seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="rune-sync-bench-plan-"))
    exe = [sys.executable, "-m", "rune_sync", "plan"]
    print(
        f"{'volumes':>8} {'refresh s':>10} {'median':>7} {'peak MB':>8} "
        f"{'no-refresh s':>13} {'µs/volume':>10}"
    )
    try:
        for n in [int(s) for s in args.sizes.split(",")]:
            repo = generate(work / f"repo-{n}", volumes=n, volume_root=work / f"vols-{n}")
            state = work / f"state-{n}.db"
            seed(repo, state)
            base = [*exe, str(repo), "--state", str(state), "--detailed-exitcode"]
            best, median = best_of(base, repeat=args.repeat)
            quick, _ = best_of([*base, "--refresh=false"], repeat=args.repeat)
            if best.returncode != 0:
                raise SystemExit(
                    f"the plan for {n} volumes is not a no-op (exit {best.returncode})"
                )
            print(
                f"{n:>8} {best.wall_s:>10.3f} {median:>7.3f} {best.peak_mb:>8.1f} "
                f"{quick.wall_s:>13.3f} {best.wall_s / n * 1e6:>10.1f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
