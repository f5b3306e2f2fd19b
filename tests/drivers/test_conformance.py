"""Every built-in driver passes the public conformance suite (rune_sync.testing)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from rune_sync.drivers.base import Driver
from rune_sync.drivers.local import LocalDriver
from rune_sync.drivers.local_host import LocalHostDriver
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

    def make_driver(self, tmp_path: Path) -> Driver:
        settings = StorageSettings(
            host_path_allowlist=(str(tmp_path / "host"),), allow_create_missing=True
        )
        return LocalHostDriver(settings=settings)

    def volume_parameters(self, tmp_path: Path, *, namespace: str, name: str) -> Mapping[str, str]:
        return {"hostPath": str(tmp_path / "host" / namespace / name), "createIfMissing": "true"}
