"""Refresh: ask each driver what exists behind the recorded handles (for drift).

Runs before planning; its result — a mapping of address → observation — is what the
pure planner reads. Only managed (not retained) volumes with a handle are observed;
classes and snapshots have nothing to observe. A driver that cannot answer is an
error naming the volume: a plan built on a guess would be worse than none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from rune_sync.drivers.base import Driver, Observation, OpContext, VolumeHandle
from rune_sync.errors import DriverError, PlanError
from rune_sync.spec.model import Address, Kind
from rune_sync.state.model import StateRecord


class DriverSource(Protocol):
    """Where refresh gets drivers from (the registry)."""

    def get(self, name: str) -> Driver: ...


def observe(
    records: Mapping[Address, StateRecord], drivers: DriverSource
) -> dict[Address, Observation]:
    """Observations of every managed volume that has a handle."""
    out: dict[Address, Observation] = {}
    for address, record in records.items():
        if address.kind is not Kind.VOLUME or record.retained or not record.handle:
            continue
        ctx = OpContext(parameters=record.driver_parameters, address=str(address))
        try:
            driver = drivers.get(record.driver)
            out[address] = driver.observe(ctx, VolumeHandle(record.handle))
        except DriverError as exc:
            raise PlanError(f"refresh of {address} failed: {exc}") from exc
    return out
