"""Benchmark: a no-change ``rune-sync plan`` from a git repository against the same plan
from a directory, on 1k and 10k volumes.

Target (issue: Step 6): a plan against a cached repository whose ref did not move clones
nothing and costs at most 0.3 s more than the same plan on a directory. Each size is
generated (bench/generate.py), committed to a bare repository, brought to "all applied"
(bench/seed.py), then planned as separate processes: from the directory, from file://
with an empty cache (the clone), from file:// with the cache warm, and from git://
(``git daemon`` on 127.0.0.1) with the cache warm.

    python -m bench.bench_git [--sizes 1000,10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.generate import generate
from bench.measure import best_of, compile_package, run_once
from bench.seed import seed
from tests import gitserve

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def _git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(
        ["git", *args], cwd=cwd, env={**os.environ, **_GIT_ENV}, check=True, capture_output=True
    )


def _publish(repo: Path, bare: Path) -> None:
    _git("init", "--quiet", "--initial-branch=main", str(repo))
    _git("add", "-A", cwd=repo)
    _git("commit", "--quiet", "-m", "generated", cwd=repo)
    _git("clone", "--quiet", "--bare", str(repo), str(bare))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    compile_package()
    work = Path(tempfile.mkdtemp(prefix="rune-sync-bench-git-"))
    served = work / "served"
    served.mkdir()
    print(
        f"{'volumes':>8} {'directory s':>12} {'clone s':>8} {'file:// s':>10} "
        f"{'git:// s':>9} {'extra s':>8}"
    )
    try:
        with gitserve.git_daemon(served) as daemon_base:
            _measure(args, work=work, served=served, daemon_base=daemon_base)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure(args: argparse.Namespace, *, work: Path, served: Path, daemon_base: str) -> None:
    exe = [sys.executable, "-m", "rune_sync", "plan"]
    for n in [int(s) for s in args.sizes.split(",")]:
        repo = generate(work / f"repo-{n}", volumes=n, volume_root=work / f"vols-{n}")
        bare = served / f"repo-{n}.git"
        _publish(repo, bare)
        state = work / f"state-{n}.db"
        seed(repo, state)
        cache = work / f"cache-{n}"
        env = {**os.environ, "RUNE_SYNC_CACHE_DIR": str(cache)}
        tail = ["--state", str(state), "--detailed-exitcode"]
        directory, _ = best_of([*exe, str(repo), *tail], repeat=args.repeat, env=env)
        cold = run_once([*exe, bare.as_uri(), "--ref", "main", *tail], env=env)
        git_dir = next(p for p in cache.iterdir() if p.is_dir()) / "git"
        inode = git_dir.stat().st_ino
        warm, _ = best_of(
            [*exe, bare.as_uri(), "--ref", "main", *tail], repeat=args.repeat, env=env
        )
        daemon_url = f"{daemon_base}repo-{n}.git"
        run_once([*exe, daemon_url, *tail], env=env)  # its own cache entry
        over_daemon, _ = best_of([*exe, daemon_url, *tail], repeat=args.repeat, env=env)
        if git_dir.stat().st_ino != inode:
            raise SystemExit("the warm runs cloned again")
        for run in (directory, cold, warm, over_daemon):
            if run.returncode != 0:
                raise SystemExit(f"the plan for {n} volumes is not a no-op")
        print(
            f"{n:>8} {directory.wall_s:>12.3f} {cold.wall_s:>8.3f} {warm.wall_s:>10.3f} "
            f"{over_daemon.wall_s:>9.3f} {warm.wall_s - directory.wall_s:>8.3f}"
        )


if __name__ == "__main__":
    main()
