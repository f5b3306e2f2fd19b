"""The driver contract's values and shared checks."""

from __future__ import annotations

import pytest

from rune_sync import errors
from rune_sync.drivers.base import (
    ErrorScope,
    ExpandRequest,
    Observation,
    ObservedKind,
    OpContext,
    VolumeHandle,
    merge_parameters,
    require_access_mode,
    require_expand,
    require_snapshots,
)
from rune_sync.spec.model import AccessMode, Capabilities
from rune_sync.spec.quantity import Quantity

SCOPE = ErrorScope("demo", "provision", "volume/prod/web")


def test_volume_parameters_override_class_parameters_by_exact_key():
    merged = merge_parameters(
        {"region": "nyc3", "fsType": "ext4"}, {"fsType": "xfs", "FSTYPE": "x"}
    )
    assert dict(merged) == {"region": "nyc3", "fsType": "xfs", "FSTYPE": "x"}
    with pytest.raises(TypeError):
        merged["region"] = "fra1"  # type: ignore[index]


def test_op_context_never_shows_resolved_parameters():
    ctx = OpContext(parameters={"apiToken": "s3cr3t-token"}, address="volume/prod/web")
    assert "s3cr3t-token" not in repr(ctx)
    assert "s3cr3t-token" not in str(ctx)
    assert ctx.parameters["apiToken"] == "s3cr3t-token"


def test_errors_carry_driver_operation_and_address():
    error = SCOPE.error(errors.ResourceNotFound, "gone")
    assert isinstance(error, LookupError)
    assert (str(error), error.driver, error.operation, error.address) == (
        "demo: gone",
        "demo",
        "provision",
        "volume/prod/web",
    )


def test_unadvertised_access_mode_names_the_supported_ones():
    caps = Capabilities(access_modes=frozenset({AccessMode.READ_WRITE_ONCE}))
    require_access_mode(caps, AccessMode.READ_WRITE_ONCE, SCOPE)
    with pytest.raises(errors.AccessModeUnsupported, match="supports ReadWriteOnce"):
        require_access_mode(caps, AccessMode.READ_WRITE_MANY, SCOPE)


def test_capability_checks_raise_unsupported_operation():
    none = Capabilities(access_modes=frozenset({AccessMode.READ_WRITE_ONCE}))
    offline = Capabilities(access_modes=none.access_modes, expand=True)
    request = ExpandRequest(handle=VolumeHandle("h"), size=Quantity(1), attached=True)
    with pytest.raises(errors.UnsupportedOperation, match="snapshots"):
        require_snapshots(none, SCOPE)
    with pytest.raises(errors.UnsupportedOperation, match="expanding"):
        require_expand(none, request, SCOPE)
    with pytest.raises(errors.OnlineExpandUnsupported, match="attached"):
        require_expand(offline, request, SCOPE)
    require_expand(offline, ExpandRequest(handle=VolumeHandle("h"), size=Quantity(1)), SCOPE)


def test_only_missing_observations_do_not_exist():
    assert not Observation(kind=ObservedKind.MISSING).exists
    assert all(Observation(kind=k).exists for k in ObservedKind if k is not ObservedKind.MISSING)
