"""Benchmark: ``rune-sync apply --auto-approve`` of N new local volumes (1k, 10k, 100k).

Targets (issue: Step 4): 1,000 new volumes in at most 2 s wall (Terraform 1.11 applying
1,000 built-in ``terraform_data`` resources took 26 s on this machine); 10,000 in at
most 20 s; time per volume must not grow with the size of the state. Each size is
generated (bench/generate.py), applied once into an empty state and an empty volume
root as a separate process, then applied again (the no-change run) — best of
``--repeat`` fresh runs each.

    python -m bench.bench_apply [--sizes 1000,10000,100000] [--repeat 3] [--parallelism 10]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bench.generate import generate
from bench.measure import Run, compile_package, run_once


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parallelism", type=int, default=10)
    args = parser.parse_args()
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="rune-sync-bench-apply-"))
    print(
        f"{'volumes':>8} {'apply s':>8} {'peak MB':>8} {'µs/volume':>10} "
        f"{'re-apply s':>11} {'peak MB':>8}"
    )
    try:
        for n in [int(s) for s in args.sizes.split(",")]:
            root = work / f"vols-{n}"
            repo = generate(work / f"repo-{n}", volumes=n, volume_root=root)
            state = work / f"state-{n}.db"
            fresh: list[Run] = []
            again: Run | None = None
            for _ in range(args.repeat):
                shutil.rmtree(root, ignore_errors=True)
                for leftover in work.glob(f"state-{n}.db*"):
                    leftover.unlink()
                argv = [
                    sys.executable, "-m", "rune_sync", "apply", str(repo), "--state", str(state),
                    "--auto-approve", "--parallelism", str(args.parallelism),
                ]  # fmt: skip
                fresh.append(_checked(run_once(argv), argv))
                again_run = _checked(run_once(argv), argv)
                if again is None or again_run.wall_s < again.wall_s:
                    again = again_run
            best = min(fresh, key=lambda r: r.wall_s)
            assert again is not None
            print(
                f"{n:>8} {best.wall_s:>8.2f} {best.peak_mb:>8.1f} "
                f"{best.wall_s / n * 1e6:>10.1f} {again.wall_s:>11.2f} {again.peak_mb:>8.1f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _checked(run: Run, argv: list[str]) -> Run:
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {run.returncode}")
    return run


if __name__ == "__main__":
    main()
