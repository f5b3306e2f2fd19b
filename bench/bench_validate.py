"""Benchmark: ``rune-sync validate`` as a whole process on 1k, 10k and 100k volumes.

Targets (issue: Step 1): 10,000 volumes in at most 1.5 s wall and 250 MB peak RSS;
100,000 must finish and stay linear.

    python -m bench.bench_validate [--sizes 1000,10000,100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bench.generate import generate
from bench.measure import best_of, compile_package


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    compile_package()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="rune-sync-bench-"))
    exe = [sys.executable, "-m", "rune_sync"]
    print(f"{'volumes':>8} {'best s':>8} {'median s':>9} {'peak MB':>8} {'µs/volume':>10}")
    try:
        for n in sizes:
            repo = generate(work / f"repo-{n}", volumes=n)
            best, median = best_of([*exe, "validate", str(repo)], repeat=args.repeat)
            print(
                f"{n:>8} {best.wall_s:>8.3f} {median:>9.3f} {best.peak_mb:>8.1f} "
                f"{best.wall_s / n * 1e6:>10.1f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
