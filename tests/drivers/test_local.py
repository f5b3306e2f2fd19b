"""The ``local`` driver on real directories: layout, confinement, copies, failures."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rune_sync import errors
from rune_sync.drivers.base import (
    ExpandRequest,
    MountRequest,
    ObservedKind,
    OpContext,
    ProvisionRequest,
    RestoreRequest,
    SnapshotHandle,
    SnapshotRequest,
    VolumeHandle,
)
from rune_sync.drivers.local import LocalDriver, roots_problem
from rune_sync.spec.model import AccessMode, StorageSettings
from rune_sync.spec.quantity import Quantity

CTX = OpContext(address="volume/prod/web")
RWO = AccessMode.READ_WRITE_ONCE
NOBODY = 65534


def make_driver(
    root: Path, snapshots: Path | None = None, *, preserve_on_delete: bool = False
) -> LocalDriver:
    settings = StorageSettings(
        local_volume_root=root, snapshot_root=snapshots, preserve_on_delete=preserve_on_delete
    )
    return LocalDriver(settings=settings)


def provision(driver: LocalDriver, name: str = "web", namespace: str = "prod") -> VolumeHandle:
    request = ProvisionRequest(name=name, namespace=namespace, size=Quantity(1), access_mode=RWO)
    return driver.provision(CTX, request)


def snapshot(
    driver: LocalDriver, source: str, name: str = "snap", namespace: str = "prod"
) -> SnapshotHandle:
    request = SnapshotRequest(name=name, namespace=namespace, source=VolumeHandle(source))
    return driver.snapshot(CTX, request)


def restore(driver: LocalDriver, source: str, name: str = "restored") -> VolumeHandle:
    request = RestoreRequest(
        name=name,
        namespace="prod",
        size=Quantity(1),
        access_mode=RWO,
        source=SnapshotHandle(source),
    )
    return driver.restore_from_snapshot(CTX, request)


def outside_dir(tmp_path: Path) -> Path:
    """A directory outside every root, with content that must survive."""
    victim = tmp_path / "outside"
    (victim / "keep").mkdir(parents=True)
    (victim / "keep" / "precious.txt").write_text("precious")
    (victim / "precious.txt").write_text("precious")
    return victim


def assert_intact(victim: Path) -> None:
    assert (victim / "precious.txt").read_text() == "precious"
    assert (victim / "keep" / "precious.txt").read_text() == "precious"


def listing(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything cp -a keeps, per relative path; hard links share a group name."""
    groups: dict[tuple[int, int], str] = {}
    result: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            st = path.lstat()
            detail: object = None
            if stat.S_ISLNK(st.st_mode):
                detail = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                group = groups.setdefault((st.st_dev, st.st_ino), rel)
                detail = (path.read_bytes(), group, os.listxattr(path))
            result[rel] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, detail)
    top = root.stat()
    result["."] = (top.st_mode, top.st_uid, top.st_gid, top.st_mtime_ns)
    return result


def atimes(root: Path) -> dict[str, int]:
    """Access times of non-directories, taken without reading them.

    Directories are left out: listing them to find the files changes their atime.
    """
    return {
        str(p.relative_to(root)): p.lstat().st_atime_ns
        for p in root.rglob("*")
        if p.is_symlink() or not p.is_dir()
    }


def fill_rich_tree(volume: Path, outside: Path) -> None:
    """Modes, owners, times, hard links, symlinks (in, out, dangling), a FIFO, xattrs."""
    (volume / "sub" / "deeper").mkdir(parents=True)
    (volume / "empty").mkdir()
    (volume / "a.txt").write_text("alpha")
    (volume / "sub" / "b.bin").write_bytes(os.urandom(70_000))
    os.link(volume / "a.txt", volume / "sub" / "deeper" / "a-hardlink.txt")
    os.link(volume / "a.txt", volume / "a-second.txt")
    (volume / "script.sh").write_text("#!/bin/sh\n")
    os.chmod(volume / "script.sh", 0o4755)
    os.chown(volume / "sub" / "b.bin", 1234, 5678)
    os.chmod(volume / "sub", 0o700)
    os.symlink("a.txt", volume / "rel-link")
    os.symlink(outside, volume / "escape")
    os.symlink(outside / "precious.txt", volume / "escape-file")
    os.symlink("/nonexistent/target", volume / "dangling")
    os.mkfifo(volume / "pipe", 0o620)
    with contextlib.suppress(OSError):  # user xattrs are optional on some filesystems
        os.setxattr(volume / "a.txt", "user.rune", b"kept")
    for i, path in enumerate(sorted(volume.rglob("*"), reverse=True)):
        os.utime(
            path,
            ns=(1_600_000_000_000_000_000 + i, 1_500_000_000_000_000_000 + i),
            follow_symlinks=False,
        )
    os.utime(volume, ns=(1_400_000_000_000_000_000, 1_400_000_000_000_000_000))


# --- layout -------------------------------------------------------------------------


def test_nothing_is_created_before_the_first_provision(tmp_path):
    driver = make_driver(tmp_path / "volumes")
    handle = VolumeHandle(str(tmp_path / "volumes" / "prod" / "web"))
    assert driver.observe(CTX, handle).kind is ObservedKind.MISSING
    driver.delete(CTX, handle)
    driver.delete_snapshot(CTX, SnapshotHandle(str(tmp_path / "volumes/.snapshots/prod/s")))
    driver.detach(CTX, handle)
    assert list(tmp_path.iterdir()) == []


def test_provision_creates_mode_0750_directories_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        handle = provision(make_driver(tmp_path / "volumes"))
    finally:
        os.umask(old)
    assert handle == str(tmp_path / "volumes" / "prod" / "web")
    for path in (tmp_path / "volumes", tmp_path / "volumes" / "prod", Path(handle)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o750, path


def test_provision_of_an_existing_directory_returns_it_with_its_data(tmp_path):
    driver = make_driver(tmp_path / "volumes")
    handle = provision(driver)
    (Path(handle) / "data").write_text("kept")
    assert provision(driver) == handle
    assert (Path(handle) / "data").read_text() == "kept"


def test_provision_refuses_a_file_where_the_volume_directory_belongs(tmp_path):
    (tmp_path / "volumes" / "prod").mkdir(parents=True)
    (tmp_path / "volumes" / "prod" / "web").write_text("not a volume")
    with pytest.raises(errors.DriverError, match="exists and is not a directory"):
        provision(make_driver(tmp_path / "volumes"))
    assert (tmp_path / "volumes" / "prod" / "web").read_text() == "not a volume"


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("prod", ".."),
        ("..", "web"),
        ("prod", "a/../../x"),
        ("prod", ".hidden"),
        (".snapshots", "web"),
        ("prod", ""),
        ("Prod", "web"),
        ("prod", "/etc"),
    ],
)
def test_names_that_are_not_dns_labels_are_refused(tmp_path, namespace, name):
    driver = make_driver(tmp_path / "volumes")
    with pytest.raises(errors.DriverConfigError, match="must"):
        provision(driver, name=name, namespace=namespace)
    with pytest.raises(errors.DriverConfigError):
        snapshot(driver, str(tmp_path / "volumes/prod/web"), name=name, namespace=namespace)
    assert list(tmp_path.iterdir()) == []


def test_a_symlinked_root_is_resolved_once_and_handles_use_the_real_path(tmp_path):
    (tmp_path / "disk").mkdir()
    (tmp_path / "volumes").symlink_to(tmp_path / "disk")
    driver = make_driver(tmp_path / "volumes")
    handle = provision(driver)
    assert handle == str(tmp_path / "disk" / "prod" / "web")
    driver.delete(CTX, handle)
    assert not Path(handle).exists()
    assert (tmp_path / "volumes").is_symlink()


def test_a_root_resolving_to_slash_is_refused(tmp_path):
    # Were the refusal missing, provision would create /tmp/<name>: a unique, empty
    # directory, which the finally block removes again.
    name = f"rune-sync-test-{tmp_path.name}".lower().replace("_", "-")[:63].strip("-")
    stray = Path("/tmp", name)
    (tmp_path / "volumes").symlink_to("/")
    driver = make_driver(tmp_path / "volumes", snapshots=tmp_path / "snaps")
    try:
        with pytest.raises(errors.DriverError, match="resolves to /"):
            provision(driver, namespace="tmp", name=name)
        assert not stray.exists()
        stray.mkdir()
        with pytest.raises(errors.DriverError, match="resolves to /"):
            driver.delete(CTX, VolumeHandle(str(stray)))
        assert stray.is_dir()
    finally:
        if stray.is_dir():
            stray.rmdir()


@pytest.mark.parametrize(
    ("volumes", "snapshots", "problem"),
    [
        ("/v", "/v", "must differ"),
        ("/v", "/v/snaps", "inside"),
        ("/s/v", "/s", "inside"),
        ("/v", "/v/.snapshots", None),
        ("/v", "/snaps", None),
        ("/v", "/v2", None),
    ],
)
def test_roots_inside_each_other_must_be_dot_named(volumes, snapshots, problem):
    found = roots_problem(volumes, snapshots)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_driver_refuses_a_snapshot_root_that_could_be_a_namespace(tmp_path):
    with pytest.raises(errors.DriverConfigError, match="dot-named"):
        make_driver(tmp_path / "v", snapshots=tmp_path / "v" / "snaps")


# --- delete: confinement --------------------------------------------------------------


def test_delete_removes_the_volume_but_never_what_its_symlinks_point_to(tmp_path):
    victim = outside_dir(tmp_path)
    driver = make_driver(tmp_path / "volumes")
    handle = Path(provision(driver))
    (handle / "sub").mkdir()
    os.symlink(victim, handle / "escape")
    os.symlink(victim / "precious.txt", handle / "sub" / "escape-file")
    os.symlink(tmp_path, handle / "sub" / "escape-parent")
    driver.delete(CTX, VolumeHandle(str(handle)))
    assert not handle.exists()
    assert_intact(victim)
    assert (tmp_path / "volumes" / "prod").is_dir()


@pytest.mark.parametrize(
    "handle",
    [
        "{root}",
        "{root}/prod",
        "/",
        "{outside}",
        "{root}/prod/web/../../..",
        "{root}/prod/web/",
        "{root}/prod/web/sub",
        "prod/web",
        "{root}/.snapshots/prod/snap",
        "{root}//prod/web",
        "{outside}/prod/web",
        "",
    ],
)
def test_delete_refuses_anything_but_a_volume_directory(tmp_path, handle):
    victim = outside_dir(tmp_path)
    (victim / "prod" / "web").mkdir(parents=True)
    root = tmp_path / "volumes"
    driver = make_driver(root)
    volume = Path(provision(driver))
    (volume / "sub").mkdir()
    snap = snapshot(driver, str(volume))
    with pytest.raises(errors.DriverConfigError, match="not a localVolumeRoot entry"):
        driver.delete(CTX, VolumeHandle(handle.format(root=root, outside=victim)))
    assert_intact(victim)
    assert (volume / "sub").is_dir() and Path(snap).is_dir()


def test_delete_refuses_a_volume_directory_replaced_by_a_symlink(tmp_path):
    victim = outside_dir(tmp_path)
    driver = make_driver(tmp_path / "volumes")
    handle = provision(driver)
    os.rmdir(handle)
    os.symlink(victim, handle)
    with pytest.raises(errors.DriverError, match="is a symlink"):
        driver.delete(CTX, handle)
    assert_intact(victim)
    assert Path(handle).is_symlink()
    assert driver.observe(CTX, handle).kind is ObservedKind.SYMLINK
    with pytest.raises(errors.DriverError, match="is a symlink"):
        driver.mount(CTX, MountRequest(handle=handle, target="/mnt/x"))


def test_delete_refuses_a_namespace_directory_replaced_by_a_symlink(tmp_path):
    victim = outside_dir(tmp_path)
    (victim / "web").mkdir()
    (victim / "web" / "data").write_text("precious")
    driver = make_driver(tmp_path / "volumes")
    handle = provision(driver)
    shutil.rmtree(tmp_path / "volumes" / "prod")
    os.symlink(victim, tmp_path / "volumes" / "prod")
    with pytest.raises(errors.DriverError, match="is a symlink"):
        driver.delete(CTX, handle)
    assert (victim / "web" / "data").read_text() == "precious"
    assert driver.observe(CTX, handle).kind is ObservedKind.NOT_A_DIRECTORY


def test_delete_after_the_root_symlink_was_repointed_refuses_the_old_handle(tmp_path):
    (tmp_path / "disk-a").mkdir()
    other = tmp_path / "disk-b" / "prod" / "web"
    other.mkdir(parents=True)
    (other / "data").write_text("someone else's")
    (tmp_path / "volumes").symlink_to(tmp_path / "disk-a")
    driver = make_driver(tmp_path / "volumes", snapshots=tmp_path / "snaps")
    handle = provision(driver)
    (tmp_path / "volumes").unlink()
    (tmp_path / "volumes").symlink_to(tmp_path / "disk-b")
    with pytest.raises(errors.DriverConfigError, match="not a localVolumeRoot entry"):
        driver.delete(CTX, handle)
    assert Path(handle).is_dir()
    assert (other / "data").read_text() == "someone else's"


def mount(*args: str) -> None:
    """Run mount(8), skipping the test where this machine does not allow it."""
    try:
        done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        pytest.skip("no mount command")
    if done.returncode != 0:
        pytest.skip(f"mounting is not permitted here: {done.stderr.strip()}")


@pytest.mark.parametrize("kind", ["tmpfs", "bind"])
def test_delete_refuses_a_volume_with_something_mounted_inside(tmp_path, kind):
    victim = outside_dir(tmp_path)
    driver = make_driver(tmp_path / "volumes")
    handle = provision(driver)
    point = Path(handle) / "sub" / "mnt"
    point.mkdir(parents=True)
    if kind == "tmpfs":
        mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point))
        (point / "precious.txt").write_text("precious")
    else:
        mount("--bind", str(victim), str(point))
    try:
        with pytest.raises(errors.DriverError, match=f"has mounts inside \\({point}\\)"):
            driver.delete(CTX, handle)
        assert (point / "precious.txt").read_text() == "precious"
    finally:
        subprocess.run(["umount", str(point)], check=True)
    assert_intact(victim)
    driver.delete(CTX, handle)
    assert not Path(handle).exists()


def test_preserve_on_delete_keeps_the_volume(tmp_path):
    driver = make_driver(tmp_path / "volumes", preserve_on_delete=True)
    handle = provision(driver)
    (Path(handle) / "data").write_text("kept")
    driver.delete(CTX, handle)
    assert (Path(handle) / "data").read_text() == "kept"


def test_delete_removes_leftover_partial_copies_of_that_volume_only(tmp_path):
    driver = make_driver(tmp_path / "volumes")
    handle = provision(driver)
    prod = tmp_path / "volumes" / "prod"
    (prod / ".web.partial" / "x").mkdir(parents=True)
    (prod / ".webby.partial").mkdir()
    driver.delete(CTX, handle)
    assert sorted(p.name for p in prod.iterdir()) == [".webby.partial"]


# --- snapshots and restores --------------------------------------------------------------


def test_snapshot_and_restore_keep_modes_owners_times_links_fifos_and_xattrs(tmp_path):
    victim = outside_dir(tmp_path)
    driver = make_driver(tmp_path / "volumes")
    volume = Path(provision(driver))
    fill_rich_tree(volume, victim)
    accessed = atimes(volume)
    snap = Path(snapshot(driver, str(volume)))
    assert snap == tmp_path / "volumes" / ".snapshots" / "prod" / "snap"
    assert atimes(snap) == accessed
    before = listing(volume)
    assert listing(snap) == before
    restored = Path(restore(driver, str(snap)))
    assert listing(restored) == before
    linked = restored / "sub" / "deeper" / "a-hardlink.txt"
    assert linked.stat().st_ino == (restored / "a.txt").stat().st_ino
    assert linked.stat().st_nlink == 3
    assert os.readlink(restored / "escape") == str(victim)
    assert_intact(victim)


def test_snapshot_leaves_no_temporary_entries_and_removes_old_leftovers(tmp_path):
    driver = make_driver(tmp_path / "volumes")
    volume = provision(driver)
    leftover = tmp_path / "volumes" / ".snapshots" / "prod" / ".snap.partial"
    (leftover / "half").mkdir(parents=True)
    snapshot(driver, volume)
    assert sorted(os.listdir(leftover.parent)) == ["snap"]


def test_an_existing_snapshot_is_returned_unchanged(tmp_path):
    driver = make_driver(tmp_path / "volumes")
    volume = Path(provision(driver))
    (volume / "v").write_text("one")
    first = snapshot(driver, str(volume))
    (volume / "v").write_text("two")
    assert snapshot(driver, str(volume)) == first
    assert (Path(first) / "v").read_text() == "one"


def test_restore_never_overwrites_an_existing_volume(tmp_path):
    driver = make_driver(tmp_path / "volumes")
    volume = Path(provision(driver))
    (volume / "v").write_text("from snapshot")
    snap = snapshot(driver, str(volume))
    target = Path(provision(driver, name="restored"))
    (target / "v").write_text("newer data")
    assert restore(driver, snap) == str(target)
    assert (target / "v").read_text() == "newer data"


def test_snapshot_and_restore_of_missing_sources_raise_not_found(tmp_path):
    driver = make_driver(tmp_path / "volumes")
    with pytest.raises(errors.ResourceNotFound):
        snapshot(driver, str(tmp_path / "volumes" / "prod" / "web"))
    with pytest.raises(errors.ResourceNotFound):
        restore(driver, str(tmp_path / "volumes" / ".snapshots" / "prod" / "snap"))
    assert not (tmp_path / "volumes" / ".snapshots").exists()


@pytest.mark.parametrize(
    "handle",
    ["{snaps}", "{snaps}/prod", "{root}/prod/web", "{outside}", "{snaps}/prod/../../prod/web"],
)
def test_delete_snapshot_refuses_anything_but_a_snapshot_directory(tmp_path, handle):
    victim = outside_dir(tmp_path)
    root = tmp_path / "volumes"
    driver = make_driver(root)
    volume = Path(provision(driver))
    (volume / "data").write_text("precious")
    snapshot(driver, str(volume))
    with pytest.raises(errors.DriverConfigError, match="not a snapshotRoot entry"):
        driver.delete_snapshot(
            CTX, SnapshotHandle(handle.format(snaps=root / ".snapshots", root=root, outside=victim))
        )
    assert (volume / "data").read_text() == "precious"
    assert_intact(victim)


def test_delete_snapshot_removes_only_the_snapshot(tmp_path):
    victim = outside_dir(tmp_path)
    driver = make_driver(tmp_path / "volumes")
    volume = Path(provision(driver))
    os.symlink(victim, volume / "escape")
    snap = snapshot(driver, str(volume))
    driver.delete_snapshot(CTX, snap)
    driver.delete_snapshot(CTX, snap)
    assert not Path(snap).exists()
    assert os.readlink(volume / "escape") == str(victim)
    assert_intact(victim)


# --- failures during a copy ----------------------------------------------------------------


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs, so a copy genuinely runs out of space."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("no mount command: the disk-full case cannot be staged here")
    if done.returncode != 0:
        pytest.skip(f"mounting a 1 MiB tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_disk_full_during_a_snapshot_leaves_no_snapshot_and_says_why(tmp_path, tiny_fs):
    driver = make_driver(tmp_path / "volumes", snapshots=tiny_fs / "snaps")
    volume = Path(provision(driver))
    for i in range(3):
        (volume / f"f{i}").write_bytes(os.urandom(600_000))
    with pytest.raises(errors.DriverError, match=r"No space left on device \[ENOSPC\]") as info:
        snapshot(driver, str(volume))
    assert str(volume) in str(info.value)
    assert os.listdir(tiny_fs / "snaps" / "prod") == []
    assert sum(f.stat().st_size for f in volume.iterdir()) == 1_800_000  # the volume is intact
    (volume / "f1").unlink()
    (volume / "f2").unlink()
    snap = snapshot(driver, str(volume))
    assert os.listdir(tiny_fs / "snaps" / "prod") == ["snap"]
    assert (Path(snap) / "f0").stat().st_size == 600_000


def test_disk_full_during_a_restore_leaves_no_volume(tmp_path, tiny_fs):
    driver = make_driver(tiny_fs / "volumes", snapshots=tmp_path / "snaps")
    volume = Path(provision(driver))
    (volume / "f").write_bytes(os.urandom(700_000))
    snap = snapshot(driver, str(volume))
    with pytest.raises(errors.DriverError, match=r"\[ENOSPC\]"):
        restore(driver, snap)
    assert os.listdir(tiny_fs / "volumes" / "prod") == ["web"]


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the unprivileged user can reach (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="rune-sync-test-"))
    os.chmod(path, 0o755)
    os.chown(path, NOBODY, NOBODY)
    try:
        yield path
    finally:
        shutil.rmtree(path)


@contextlib.contextmanager
def as_nobody() -> Iterator[None]:
    """Run as uid 65534 so permission bits apply; root reads every file regardless."""
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged uid")
def test_permission_denied_during_a_snapshot_leaves_no_snapshot(shared_dir):
    driver = make_driver(shared_dir / "volumes")
    with as_nobody():
        volume = Path(provision(driver))
        for i in range(20):
            (volume / f"readable-{i}").write_text("x" * 1000)
    (volume / "m-unreadable").write_text("root only")
    os.chmod(volume / "m-unreadable", 0o000)
    with as_nobody(), pytest.raises(errors.DriverError, match=r"Permission denied \[EACCES\]"):
        snapshot(driver, str(volume))
    assert os.listdir(shared_dir / "volumes" / ".snapshots" / "prod") == []
    assert (volume / "readable-0").read_text() == "x" * 1000


# --- the rest of the contract, local specifics -----------------------------------------------


def test_observe_identifies_the_directory_without_measuring_it(tmp_path):
    driver = make_driver(tmp_path / "volumes")
    handle = provision(driver)
    volume = Path(handle)
    (volume / "a").write_bytes(b"x" * 1000)
    seen = driver.observe(CTX, handle)
    st = volume.stat()
    # Size is informational for a directory: refresh never walks a volume's tree.
    assert (seen.kind, seen.size_bytes) == (ObservedKind.DIRECTORY, None)
    assert seen.fingerprint == f"{st.st_ino}:{st.st_mtime_ns}"
    shutil.rmtree(volume)
    volume.write_text("a file now")
    assert driver.observe(CTX, handle).kind is ObservedKind.NOT_A_DIRECTORY


def test_mount_returns_the_directory_and_attach_has_no_device(tmp_path):
    driver = make_driver(tmp_path / "volumes")
    handle = provision(driver)
    assert driver.attach(CTX, handle) == ""
    assert driver.mount(CTX, MountRequest(handle=handle, target="/var/lib/app")) == str(handle)
    driver.unmount(CTX, driver.mount(CTX, MountRequest(handle=handle, target="/x")))
    assert Path(handle).is_dir()


def test_expand_succeeds_online_and_needs_the_volume(tmp_path):
    driver = make_driver(tmp_path / "volumes")
    handle = provision(driver)
    driver.expand(CTX, ExpandRequest(handle=handle, size=Quantity(10**12), attached=True))
    driver.delete(CTX, handle)
    with pytest.raises(errors.ResourceNotFound):
        driver.expand(CTX, ExpandRequest(handle=handle, size=Quantity(10**12)))


def test_errors_name_the_driver_operation_and_address(tmp_path):
    driver = make_driver(tmp_path / "volumes")
    with pytest.raises(errors.DriverConfigError) as info:
        driver.delete(OpContext(address="volume/prod/web"), VolumeHandle("/etc"))
    assert (info.value.driver, info.value.operation, info.value.address) == (
        "local",
        "delete",
        "volume/prod/web",
    )
