"""Every built-in driver passes the public conformance suite (rune_sync.testing)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import pytest

from rune_sync.drivers.base import Driver, SnapshotHandle, VolumeHandle
from rune_sync.drivers.local import LocalDriver
from rune_sync.drivers.local_host import LocalHostDriver
from rune_sync.drivers.registry import DriverFactory
from rune_sync.spec.model import StorageSettings
from rune_sync.testing import DriverConformance


class TestLocalConformance(DriverConformance):
    def make_driver(self, tmp_path: Path) -> Driver:
        return LocalDriver(settings=StorageSettings(local_volume_root=tmp_path / "volumes"))


class TestLocalWithSeparateSnapshotRootConformance(DriverConformance):
    def make_driver(self, tmp_path: Path) -> Driver:
        settings = StorageSettings(
            local_volume_root=tmp_path / "volumes", snapshot_root=tmp_path / "snapshots"
        )
        return LocalDriver(settings=settings)


class TestLocalHostConformance(DriverConformance):
    retains_data_on_delete = True
    invalid_parameters = MappingProxyType({"hostPath": "relative/path"})

    def make_driver(self, tmp_path: Path) -> Driver:
        settings = StorageSettings(
            host_path_allowlist=(str(tmp_path / "host"),), allow_create_missing=True
        )
        return LocalHostDriver(settings=settings)

    def volume_parameters(self, tmp_path: Path, *, namespace: str, name: str) -> Mapping[str, str]:
        return {"hostPath": str(tmp_path / "host" / namespace / name), "createIfMissing": "true"}


# The suite must catch broken drivers, or passing it proves nothing. These drivers break
# one promise each on purpose; they are deliberately faulty implementations, not mocks.


class _ForgetfulDriver(LocalDriver):
    """Claims to delete but keeps the data."""

    def delete(self, ctx, handle):
        return None


class _NewHandleEachTimeDriver(LocalDriver):
    """Provision is not idempotent."""

    calls = 0

    def provision(self, ctx, request):
        type(self).calls += 1
        return VolumeHandle(f"{super().provision(ctx, request)}-{type(self).calls}")


class _SilentSnapshotDriver(LocalHostDriver):
    """Has no snapshots but does not say so."""

    def snapshot(self, ctx, request):
        return SnapshotHandle("/nowhere")


class _ExpandIgnoringDriver(LocalHostDriver):
    """Does not advertise expand, yet accepts it."""

    CAPABILITIES = dataclasses.replace(
        LocalHostDriver.CAPABILITIES, expand=False, online_expand=False
    )

    def expand(self, ctx, request):
        return None


class _OfflineOnlyDriver(LocalDriver):
    """Advertises offline expand only, yet expands attached volumes."""

    CAPABILITIES = dataclasses.replace(LocalDriver.CAPABILITIES, online_expand=False)

    def expand(self, ctx, request):
        return None


class _Suite(DriverConformance):
    def __init__(self, driver_class: DriverFactory) -> None:
        self.driver_class = driver_class

    def make_driver(self, tmp_path: Path) -> Driver:
        settings = StorageSettings(
            local_volume_root=tmp_path / "volumes",
            host_path_allowlist=(str(tmp_path / "host"),),
            allow_create_missing=True,
        )
        return self.driver_class(settings=settings)

    def volume_parameters(self, tmp_path: Path, *, namespace: str, name: str) -> Mapping[str, str]:
        return {"hostPath": str(tmp_path / "host" / namespace / name), "createIfMissing": "true"}


@pytest.mark.parametrize(
    ("driver_class", "test_name", "message"),
    [
        (_ForgetfulDriver, "test_observe_is_stable_and_reports_absence", "observe after delete"),
        (_ForgetfulDriver, "test_lifecycle", "observe after delete"),
        (_NewHandleEachTimeDriver, "test_provision_twice_returns_the_same_handle", "idempotent"),
        (_ExpandIgnoringDriver, "test_expand_follows_capabilities", "UnsupportedOperation"),
        (_OfflineOnlyDriver, "test_expand_follows_capabilities", "OnlineExpandUnsupported"),
        (
            _SilentSnapshotDriver,
            "test_snapshot_operations_without_snapshots_are_unsupported",
            "expected UnsupportedOperation",
        ),
    ],
)
def test_the_suite_fails_a_driver_that_breaks_a_promise(tmp_path, driver_class, test_name, message):
    suite = _Suite(driver_class)
    with pytest.raises(AssertionError, match=message):
        getattr(suite, test_name)(tmp_path)
