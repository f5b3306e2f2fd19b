"""The ``local-host`` driver and the host-path allowlist, on real directories."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rune_sync import errors
from rune_sync.drivers.base import (
    MountRequest,
    ObservedKind,
    OpContext,
    ProvisionRequest,
    SnapshotHandle,
    SnapshotRequest,
    VolumeHandle,
)
from rune_sync.drivers.local_host import LocalHostDriver
from rune_sync.spec.hostpath import host_path_problem, is_within
from rune_sync.spec.model import (
    AccessMode,
    ReclaimPolicy,
    StorageClass,
    StorageSettings,
    Volume,
)
from rune_sync.spec.quantity import Quantity

RWO = AccessMode.READ_WRITE_ONCE


def make_driver(*allowlist: Path | str, allow_create: bool = False) -> LocalHostDriver:
    settings = StorageSettings(
        host_path_allowlist=tuple(str(a) for a in allowlist), allow_create_missing=allow_create
    )
    return LocalHostDriver(settings=settings)


def context(
    params: dict[str, str],
    *,
    volume_policy: ReclaimPolicy | None = None,
    class_policy: ReclaimPolicy = ReclaimPolicy.RETAIN,
) -> OpContext:
    volume = Volume(
        name="web",
        namespace="prod",
        size=Quantity(1),
        access_mode=RWO,
        reclaim_policy=volume_policy,
    )
    cls = StorageClass(name="host", driver="local-host", reclaim_policy=class_policy)
    return OpContext(storage_class=cls, volume=volume, parameters=params, address="volume/prod/web")


def provision(driver: LocalHostDriver, ctx: OpContext, mode: AccessMode = RWO) -> VolumeHandle:
    request = ProvisionRequest(name="web", namespace="prod", size=Quantity(1), access_mode=mode)
    return driver.provision(ctx, request)


# --- the pure allowlist check ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allowlist"),
    [
        ("/srv/rune/a", ["/srv/rune"]),
        ("/srv/rune", ["/srv/rune"]),
        ("/srv/rune", ["/srv/rune/"]),
        ("/srv/rune/a/", ["/srv/rune"]),
        ("/srv/rune/./a", ["/srv/rune"]),
        ("/data/x", ["/srv/rune", "/data"]),
        ("/anything", ["/"]),
    ],
)
def test_paths_within_an_allowlist_entry_pass(path, allowlist):
    assert host_path_problem(path, allowlist) is None


@pytest.mark.parametrize(
    ("path", "allowlist", "message"),
    [
        (
            "/srv/rune2",
            ["/srv/rune"],
            "hostPath /srv/rune2 is not under hostPathAllowlist [/srv/rune]",
        ),
        ("/srv", ["/srv/rune"], "is not under hostPathAllowlist [/srv/rune]"),
        ("/srv/rune/a", [], "hostPathAllowlist is empty, which denies every host path"),
        ("srv/rune/a", ["/srv/rune"], "hostPath 'srv/rune/a' is not absolute"),
        (
            "/srv/rune/../../etc",
            ["/srv/rune"],
            "hostPath '/srv/rune/../../etc' has a '..' component",
        ),
        ("/srv/rune/a/..", ["/srv/rune"], "has a '..' component"),
        ("", ["/srv/rune"], "hostPath is empty"),
        ("/srv/rune/a", ["srv/rune"], "is not under hostPathAllowlist [srv/rune]"),
        ("/etc", ["/srv/rune/.."], "is not under"),
    ],
)
def test_paths_outside_the_allowlist_are_refused_with_path_and_allowlist(path, allowlist, message):
    assert message in (host_path_problem(path, allowlist) or "")


def test_containment_compares_whole_components():
    assert is_within("/srv/rune/a/b", "/srv/rune")
    assert not is_within("/srv/rune2/a", "/srv/rune")
    assert not is_within("/srv", "/srv/rune")


# --- provisioning ----------------------------------------------------------------------------


def test_provision_returns_the_resolved_existing_directory(tmp_path):
    (tmp_path / "allowed" / "web").mkdir(parents=True)
    driver = make_driver(tmp_path / "allowed")
    ctx = context({"hostPath": str(tmp_path / "allowed" / "web")})
    assert provision(driver, ctx) == str(tmp_path / "allowed" / "web")
    assert provision(driver, ctx, AccessMode.READ_ONLY_MANY) == str(tmp_path / "allowed" / "web")


def test_host_path_is_required(tmp_path):
    with pytest.raises(errors.DriverConfigError, match=r"parameters\.hostPath is required"):
        provision(make_driver(tmp_path), context({}))


@pytest.mark.parametrize("path", ["relative/web", "{allowed}/../outside", "{outside}", "/etc"])
def test_paths_failing_the_static_check_are_refused_before_any_io(tmp_path, path):
    (tmp_path / "allowed").mkdir()
    (tmp_path / "outside").mkdir()
    driver = make_driver(tmp_path / "allowed", allow_create=True)
    host = path.format(allowed=tmp_path / "allowed", outside=tmp_path / "outside")
    ctx = context({"hostPath": host, "createIfMissing": "true"})
    with pytest.raises(errors.DriverConfigError, match="hostPath") as info:
        provision(driver, ctx)
    assert host in str(info.value)
    assert str(tmp_path / "allowed") in str(info.value) or "absolute" in str(info.value)


def test_a_symlink_inside_the_allowlist_pointing_outside_is_refused(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text("root:x:0:0")
    (tmp_path / "allowed").mkdir()
    (tmp_path / "allowed" / "web").symlink_to(etc)
    driver = make_driver(tmp_path / "allowed", allow_create=True)
    ctx = context({"hostPath": str(tmp_path / "allowed" / "web"), "createIfMissing": "true"})
    with pytest.raises(errors.DriverConfigError) as info:
        provision(driver, ctx)
    message = str(info.value)
    assert f"hostPath {tmp_path / 'allowed' / 'web'} resolves to {etc}" in message
    assert f"hostPathAllowlist [{tmp_path / 'allowed'}]" in message
    assert (etc / "passwd").read_text() == "root:x:0:0"


def test_a_symlinked_parent_below_the_allowlist_cannot_smuggle_a_new_directory_out(tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "allowed").mkdir()
    (tmp_path / "allowed" / "link").symlink_to(tmp_path / "outside")
    driver = make_driver(tmp_path / "allowed", allow_create=True)
    ctx = context({"hostPath": str(tmp_path / "allowed/link/new"), "createIfMissing": "true"})
    with pytest.raises(errors.DriverConfigError, match="resolves to"):
        provision(driver, ctx)
    assert not (tmp_path / "outside" / "new").exists()


def test_an_allowlist_entry_that_is_a_symlink_is_resolved_too(tmp_path):
    (tmp_path / "real" / "web").mkdir(parents=True)
    (tmp_path / "allowed").symlink_to(tmp_path / "real")
    driver = make_driver(tmp_path / "allowed")
    handle = provision(driver, context({"hostPath": str(tmp_path / "allowed" / "web")}))
    assert handle == str(tmp_path / "real" / "web")


def test_a_missing_directory_needs_create_if_missing(tmp_path):
    (tmp_path / "allowed").mkdir()
    driver = make_driver(tmp_path / "allowed", allow_create=True)
    with pytest.raises(errors.DriverConfigError, match='createIfMissing: "true"'):
        provision(driver, context({"hostPath": str(tmp_path / "allowed" / "web")}))
    assert not (tmp_path / "allowed" / "web").exists()


def test_create_if_missing_is_not_honoured_without_allow_create_missing(tmp_path):
    (tmp_path / "allowed").mkdir()
    driver = make_driver(tmp_path / "allowed", allow_create=False)
    params = {"hostPath": str(tmp_path / "allowed" / "web"), "createIfMissing": "true"}
    with pytest.raises(errors.DriverConfigError, match="allowCreateMissing"):
        provision(driver, context(params))
    assert not (tmp_path / "allowed" / "web").exists()


def test_both_switches_create_the_directory_with_mode_0750(tmp_path):
    (tmp_path / "allowed").mkdir()
    driver = make_driver(tmp_path / "allowed", allow_create=True)
    params = {"hostPath": str(tmp_path / "allowed" / "a" / "web"), "createIfMissing": "true"}
    old = os.umask(0o077)
    try:
        handle = provision(driver, context(params))
    finally:
        os.umask(old)
    assert stat.S_IMODE(Path(handle).stat().st_mode) == 0o750


def test_a_file_as_host_path_is_refused(tmp_path):
    (tmp_path / "allowed").mkdir()
    (tmp_path / "allowed" / "web").write_text("a file")
    driver = make_driver(tmp_path / "allowed")
    with pytest.raises(errors.DriverConfigError, match="is not a directory"):
        provision(driver, context({"hostPath": str(tmp_path / "allowed" / "web")}))


@pytest.mark.parametrize(
    ("volume_policy", "class_policy", "refused"),
    [
        (ReclaimPolicy.DELETE, ReclaimPolicy.RETAIN, True),
        (None, ReclaimPolicy.DELETE, True),
        (ReclaimPolicy.RETAIN, ReclaimPolicy.DELETE, False),
        (None, ReclaimPolicy.RETAIN, False),
    ],
)
def test_reclaim_policy_delete_is_refused(tmp_path, volume_policy, class_policy, refused):
    (tmp_path / "web").mkdir()
    driver = make_driver(tmp_path)
    ctx = context(
        {"hostPath": str(tmp_path / "web")}, volume_policy=volume_policy, class_policy=class_policy
    )
    if refused:
        with pytest.raises(errors.DriverConfigError, match="reclaimPolicy delete"):
            provision(driver, ctx)
    else:
        assert provision(driver, ctx) == str(tmp_path / "web")


def test_read_write_many_is_refused(tmp_path):
    (tmp_path / "web").mkdir()
    ctx = context({"hostPath": str(tmp_path / "web")})
    with pytest.raises(errors.AccessModeUnsupported, match="ReadWriteMany"):
        provision(make_driver(tmp_path), ctx, AccessMode.READ_WRITE_MANY)


# --- after provisioning ---------------------------------------------------------------------


def test_delete_never_touches_the_directory(tmp_path):
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "data").write_text("operator's")
    driver = make_driver(tmp_path)
    ctx = context({"hostPath": str(tmp_path / "web")})
    handle = provision(driver, ctx)
    driver.delete(ctx, handle)
    driver.delete(ctx, handle)
    assert (tmp_path / "web" / "data").read_text() == "operator's"
    assert driver.observe(ctx, handle).kind is ObservedKind.DIRECTORY


def test_snapshots_are_unsupported(tmp_path):
    driver = make_driver(tmp_path)
    ctx = context({})
    request = SnapshotRequest(name="s", namespace="prod", source=VolumeHandle(str(tmp_path)))
    with pytest.raises(errors.UnsupportedOperation, match="snapshots are not supported"):
        driver.snapshot(ctx, request)
    with pytest.raises(NotImplementedError):
        driver.delete_snapshot(ctx, SnapshotHandle(str(tmp_path)))


def test_mount_checks_the_directory_again(tmp_path):
    (tmp_path / "allowed" / "web").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    driver = make_driver(tmp_path / "allowed")
    ctx = context({"hostPath": str(tmp_path / "allowed" / "web")})
    handle = provision(driver, ctx)
    assert driver.mount(ctx, MountRequest(handle=handle, target="/data")) == str(handle)
    narrower = make_driver(tmp_path / "allowed" / "other")
    with pytest.raises(errors.DriverConfigError, match="not under hostPathAllowlist"):
        narrower.mount(ctx, MountRequest(handle=handle, target="/data"))
    os.rmdir(handle)
    os.symlink(tmp_path / "outside", handle)
    with pytest.raises(errors.DriverConfigError, match="resolves to"):
        driver.mount(ctx, MountRequest(handle=handle, target="/data"))
    assert driver.observe(ctx, handle).kind is ObservedKind.SYMLINK


def test_observe_reports_kind_without_measuring(tmp_path):
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "big").write_bytes(b"x" * 4096)
    driver = make_driver(tmp_path)
    ctx = context({"hostPath": str(tmp_path / "web")})
    handle = provision(driver, ctx)
    seen = driver.observe(ctx, handle)
    assert (seen.kind, seen.size_bytes) == (ObservedKind.DIRECTORY, None)
    assert driver.observe(ctx, VolumeHandle(str(tmp_path / "gone"))).kind is ObservedKind.MISSING
