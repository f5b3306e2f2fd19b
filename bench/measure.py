"""Run a command as a separate process and report wall time and peak memory (RSS)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Run:
    wall_s: float
    peak_mb: float
    returncode: int


def compile_package() -> None:
    """Write rune-sync's bytecode, as an installed package has it (with
    PYTHONDONTWRITEBYTECODE set, every run would otherwise compile every module again)."""
    import compileall

    import rune_sync

    compileall.compile_dir(os.path.dirname(rune_sync.__file__), quiet=1)


def run_once(
    argv: Sequence[str], *, cwd: str | None = None, env: dict[str, str] | None = None
) -> Run:
    """Time one process; peak RSS comes from wait4's rusage of that child alone
    (``ru_maxrss`` is in kilobytes on Linux)."""
    # stderr goes to a file: a pipe nobody reads fills up and blocks the child.
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0, 2):
            err.seek(0)
            tail = err.read()[-2000:].decode("utf-8", "replace")
            print(f"{' '.join(argv)} exited {proc.returncode}:\n{tail}", file=sys.stderr)
    return Run(wall, usage.ru_maxrss / 1024, proc.returncode)


def best_of(
    argv: Sequence[str], *, repeat: int, cwd: str | None = None, env: dict[str, str] | None = None
) -> tuple[Run, float]:
    """The fastest of ``repeat`` runs, and the median wall time."""
    runs = [run_once(argv, cwd=cwd, env=env) for _ in range(repeat)]
    for r in runs:
        if r.returncode not in (0, 2):
            raise SystemExit(f"{' '.join(argv)} exited {r.returncode}")
    best = min(runs, key=lambda r: r.wall_s)
    return best, statistics.median(r.wall_s for r in runs)
