"""Guarded drivers: calls pass through, errors come back without secret values."""

from __future__ import annotations

from pathlib import Path

import pytest

from rune_sync import errors
from rune_sync.drivers.base import (
    OpContext,
    ProvisionRequest,
    SnapshotVerifier,
    VolumeHandle,
)
from rune_sync.drivers.local import LocalDriver
from rune_sync.drivers.local_host import LocalHostDriver
from rune_sync.drivers.registry import DriverRegistry
from rune_sync.secrets import GuardedDrivers, Redactor
from rune_sync.spec.model import AccessMode, StorageSettings
from rune_sync.spec.quantity import parse

CANARY_DIR = "CANARY-gu4rd-5ecret"


def registry(tmp_path: Path) -> DriverRegistry:
    settings = StorageSettings(
        local_volume_root=tmp_path / "volumes", host_path_allowlist=(str(tmp_path / "allowed"),)
    )
    return DriverRegistry(
        {"local": LocalDriver(settings=settings), "local-host": LocalHostDriver(settings=settings)}
    )


def request(name: str = "web") -> ProvisionRequest:
    return ProvisionRequest(
        name=name, namespace="prod", size=parse("1Gi"), access_mode=AccessMode.READ_WRITE_ONCE
    )


def test_calls_pass_through_to_the_real_driver(tmp_path):
    drivers = GuardedDrivers(registry(tmp_path).get, Redactor())
    local = drivers.get("local")
    assert local.name == "local"
    assert local.capabilities == LocalDriver.CAPABILITIES
    handle = local.provision(OpContext(address="volume/prod/web"), request())
    assert Path(handle).is_dir()
    assert local.observe(OpContext(), VolumeHandle(handle)).exists


def test_a_verifying_driver_stays_one_and_others_do_not(tmp_path):
    drivers = GuardedDrivers(registry(tmp_path).get, Redactor())
    assert isinstance(drivers.get("local"), SnapshotVerifier)
    assert not isinstance(drivers.get("local-host"), SnapshotVerifier)


def test_a_driver_error_quoting_a_resolved_parameter_is_cleaned(tmp_path):
    # local-host names the hostPath it refuses; here that path is a secret's value.
    secret_path = str(tmp_path / "elsewhere" / CANARY_DIR)
    redactor = Redactor()
    redactor.remember(secret_path)
    host = GuardedDrivers(registry(tmp_path).get, redactor).get("local-host")
    ctx = OpContext(parameters={"hostPath": secret_path}, address="volume/prod/web")
    with pytest.raises(errors.DriverConfigError) as refused:
        host.provision(ctx, request())
    assert CANARY_DIR not in str(refused.value)
    assert "hostPath *** " in str(refused.value)
    assert refused.value.driver == "local-host"


def test_unguarded_the_same_call_would_show_the_value(tmp_path):
    # The reason for the guard: the real driver does quote the path.
    secret_path = str(tmp_path / "elsewhere" / CANARY_DIR)
    host = registry(tmp_path).get("local-host")
    ctx = OpContext(parameters={"hostPath": secret_path}, address="volume/prod/web")
    with pytest.raises(errors.DriverConfigError, match=CANARY_DIR):
        host.provision(ctx, request())
