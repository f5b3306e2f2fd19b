"""Benchmark: the ``local`` driver's snapshot/restore against ``cp -a``, and provisioning.

(a) A tree of ``--files`` files totalling ``--size-mb`` MiB is snapshotted and restored
through the driver and copied with ``cp -a`` on the same filesystem in the same run;
the table shows MiB/s and the driver/cp ratio (target: >= 0.8).
(b) ``--volumes`` volumes are provisioned (then deleted) through the driver API.

Caches are warm for every copy alike (the source was just written) and dirty pages are
flushed before each timed step; a step ends when its copy is in the page cache.
Work directories live under a temporary directory that is removed at the end.

    python -m bench.bench_local_driver [--size-mb 1024] [--files 10000] [--volumes 10000]
    python -m bench.bench_local_driver --size-mb 20 --files 1000 --volumes 1000   # smoke
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from rune_sync.drivers.base import (
    OpContext,
    ProvisionRequest,
    RestoreRequest,
    SnapshotRequest,
    VolumeHandle,
)
from rune_sync.drivers.local import LocalDriver
from rune_sync.spec.model import AccessMode, StorageSettings
from rune_sync.spec.quantity import Quantity

CTX = OpContext(address="bench")
RWO = AccessMode.READ_WRITE_ONCE
FILES_PER_DIR = 100
MIB = 1 << 20
T = TypeVar("T")


def fill(volume: Path, *, total_bytes: int, files: int) -> None:
    """``files`` files of equal size in subdirectories of ``FILES_PER_DIR``."""
    size = max(total_bytes // files, 1)
    block = os.urandom(size + 4096)
    for i in range(files):
        sub = volume / f"d{i // FILES_PER_DIR:04d}"
        if i % FILES_PER_DIR == 0:
            sub.mkdir()
        with open(sub / f"f{i:06d}", "wb") as out:
            out.write(block[i % 4096 : i % 4096 + size])


def timed(step: Callable[[], T]) -> tuple[T, float]:
    """The step's result and its wall time; dirty pages are flushed before it starts."""
    os.sync()
    start = time.perf_counter()
    result = step()
    return result, time.perf_counter() - start


def cp_a(src: Path, dst: Path) -> None:
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)


def bench_copies(work: Path, *, total_bytes: int, files: int, repeat: int) -> None:
    driver = LocalDriver(settings=StorageSettings(local_volume_root=work / "volumes"))
    request = ProvisionRequest(name="src", namespace="bench", size=Quantity(1), access_mode=RWO)
    source = driver.provision(CTX, request)
    fill(Path(source), total_bytes=total_bytes, files=files)
    # One untimed copy first: in a VM, the first touch of fresh guest memory is slow,
    # and whichever step ran first would pay for it.
    cp_a(Path(source), work / "warm-up")
    shutil.rmtree(work / "warm-up")
    seconds: dict[str, list[float]] = {"cp -a": [], "driver snapshot": [], "driver restore": []}
    for attempt in range(repeat):
        dst = work / f"cp-{attempt}"
        _, took = timed(partial(cp_a, Path(source), dst))
        seconds["cp -a"].append(took)
        shutil.rmtree(dst)
        snap_req = SnapshotRequest(name=f"snap-{attempt}", namespace="bench", source=source)
        snap, took = timed(partial(driver.snapshot, CTX, snap_req))
        seconds["driver snapshot"].append(took)
        restore_req = RestoreRequest(
            name=f"restored-{attempt}",
            namespace="bench",
            size=Quantity(1),
            access_mode=RWO,
            source=snap,
        )
        restored, took = timed(partial(driver.restore_from_snapshot, CTX, restore_req))
        seconds["driver restore"].append(took)
        driver.delete(CTX, restored)
        driver.delete_snapshot(CTX, snap)
    mib = total_bytes / MIB
    cp_best = min(seconds["cp -a"])
    print(f"(a) copy of {mib:,.0f} MiB in {files:,} files, best of {repeat}")
    print(f"    {'step':<16} {'seconds':>8} {'MiB/s':>8} {'vs cp -a':>9}")
    for label, runs in seconds.items():
        best = min(runs)
        print(f"    {label:<16} {best:>8.2f} {mib / best:>8.0f} {cp_best / best:>8.2f}x")


def bench_provision(work: Path, *, volumes: int) -> None:
    driver = LocalDriver(settings=StorageSettings(local_volume_root=work / "many"))
    requests = [
        ProvisionRequest(name=f"vol-{i:05d}", namespace="bench", size=Quantity(1), access_mode=RWO)
        for i in range(volumes)
    ]
    handles: list[VolumeHandle] = []
    start = time.perf_counter()
    for req in requests:
        handles.append(driver.provision(CTX, req))
    provision_s = time.perf_counter() - start
    start = time.perf_counter()
    for handle in handles:
        driver.delete(CTX, handle)
    delete_s = time.perf_counter() - start
    print(f"(b) {volumes:,} local volumes through the driver API")
    print(f"    {'step':<16} {'seconds':>8} {'µs/volume':>10}")
    for label, seconds in (("provision", provision_s), ("delete", delete_s)):
        print(f"    {label:<16} {seconds:>8.2f} {seconds / volumes * 1e6:>10.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=1024, help="tree size in MiB")
    parser.add_argument("--files", type=int, default=10_000, help="number of files in the tree")
    parser.add_argument("--volumes", type=int, default=10_000, help="volumes to provision")
    parser.add_argument("--repeat", type=int, default=3, help="copies of each kind; best wins")
    parser.add_argument("--workdir", default=None, help="parent of the temporary work dir")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rune-sync-bench-", dir=args.workdir))
    try:
        bench_copies(
            work, total_bytes=int(args.size_mb * MIB), files=args.files, repeat=args.repeat
        )
        bench_provision(work, volumes=args.volumes)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
