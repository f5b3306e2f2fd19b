"""Benchmark: the ``local`` driver's snapshot/restore against ``cp -a``, and provisioning.

(a) A tree of ``--files`` files totalling ``--size-mb`` MiB is snapshotted and restored
through the driver; each step races ``cp -a`` of the same tree on the same filesystem,
in the same run and at the same disk and memory footprint, the order alternating
between rounds. The table shows MiB/s and the cp/driver time ratio on the best and on
the median round (target: >= 0.8). Medians matter here: in a VM a copy into freshly
faulted memory can take several times as long as the same copy into reused pages.
(b) ``--volumes`` volumes are provisioned (then deleted) through the driver API.

Caches are warm for every copy alike (the source was just written), dirty pages are
flushed before each timed step, and a step ends when its copy is in the page cache.
``--workdir`` puts the work on another filesystem (a tmpfs shows CPU cost alone).
Work directories live under a temporary directory that is removed at the end.

    python -m bench.bench_local_driver [--size-mb 1024] [--files 10000] [--volumes 10000]
    python -m bench.bench_local_driver --size-mb 20 --files 1000 --volumes 1000   # smoke
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
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
H = TypeVar("H", bound=str)
# Each driver step is compared with cp -a of the same tree at the same footprint.
ROWS = {
    "cp -a of the volume": "cp -a of the volume",
    "driver snapshot": "cp -a of the volume",
    "cp -a of the snapshot": "cp -a of the snapshot",
    "driver restore": "cp -a of the snapshot",
}


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


def race(
    step: Callable[[], H], undo: Callable[[H], None], copy: Path, into: Path, *, step_first: bool
) -> tuple[H, float, float]:
    """Time a driver step and ``cp -a copy into`` at the same disk and memory footprint.

    Whichever runs second reuses the pages the first one freed, which is faster in a
    VM, so callers alternate ``step_first``. Returns the step's result (kept) and both
    times.
    """
    if step_first:
        result, step_s = timed(step)
        undo(result)
    _, cp_s = timed(partial(cp_a, copy, into))
    shutil.rmtree(into)
    if step_first:
        result = step()  # taken again, untimed, for the steps that follow
    else:
        result, step_s = timed(step)
    return result, step_s, cp_s


def bench_copies(work: Path, *, total_bytes: int, files: int, repeat: int) -> None:
    driver = LocalDriver(settings=StorageSettings(local_volume_root=work / "volumes"))
    request = ProvisionRequest(name="src", namespace="bench", size=Quantity(1), access_mode=RWO)
    source = driver.provision(CTX, request)
    fill(Path(source), total_bytes=total_bytes, files=files)
    times: dict[str, list[float]] = {label: [] for label in ROWS}
    for attempt in range(repeat):
        first = attempt % 2 == 1
        snap_req = SnapshotRequest(name="snap", namespace="bench", source=source)
        snap, step_s, cp_s = race(
            partial(driver.snapshot, CTX, snap_req),
            partial(driver.delete_snapshot, CTX),
            Path(source),
            work / "cp",
            step_first=first,
        )
        times["driver snapshot"].append(step_s)
        times["cp -a of the volume"].append(cp_s)
        restore_req = RestoreRequest(
            name="restored", namespace="bench", size=Quantity(1), access_mode=RWO, source=snap
        )
        restored, step_s, cp_s = race(
            partial(driver.restore_from_snapshot, CTX, restore_req),
            partial(driver.delete, CTX),
            Path(snap),
            work / "cp",
            step_first=first,
        )
        times["driver restore"].append(step_s)
        times["cp -a of the snapshot"].append(cp_s)
        driver.delete(CTX, restored)
        driver.delete_snapshot(CTX, snap)
    mib = total_bytes / MIB
    print(f"(a) copy of {mib:,.0f} MiB in {files:,} files, {repeat} rounds")
    header = f"{'step':<22} {'best s':>7} {'median s':>9} {'MiB/s':>6}"
    print(f"    {header} {'vs cp -a (best, median)':>24}")
    for label, peer in ROWS.items():
        best, median = min(times[label]), statistics.median(times[label])
        ratio = ""
        if peer != label:
            ratio = (
                f"{min(times[peer]) / best:.2f}x, {statistics.median(times[peer]) / median:.2f}x"
            )
        print(f"    {label:<22} {best:>7.2f} {median:>9.2f} {mib / best:>6.0f} {ratio:>24}")


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
    parser.add_argument(
        "--repeat", type=int, default=4, help="rounds (the order alternates); best wins"
    )
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
