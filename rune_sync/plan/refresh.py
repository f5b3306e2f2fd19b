"""Refresh: ask each driver what exists behind the recorded handles (for drift).

Runs before planning; its result — a mapping of address → observation — is what the
pure planner reads. Only managed (not retained) volumes with a handle are observed;
classes and snapshots have nothing to observe. A driver that cannot answer is an
error naming the volume: a plan built on a guess would be worse than none. Recorded
parameters keep secret references; ``resolve`` (namespace, parameters) turns them into
what the driver needs just before each call, and a reference that does not resolve
fails the refresh naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from rune_sync.drivers.base import Driver, Observation, OpContext, VolumeHandle
from rune_sync.errors import DriverError, PlanError
from rune_sync.spec.model import Address, Kind
from rune_sync.state.model import StateRecord


class DriverSource(Protocol):
    """Where refresh gets drivers from (the registry)."""

    def get(self, name: str) -> Driver: ...


Resolver = Callable[[str, Mapping[str, str]], Mapping[str, str]]
"""(namespace, recorded parameters) → the parameters a driver gets."""


def _as_recorded(namespace: str, parameters: Mapping[str, str]) -> Mapping[str, str]:
    return parameters


def observe(
    records: Mapping[Address, StateRecord],
    drivers: DriverSource,
    *,
    resolve: Resolver = _as_recorded,
) -> dict[Address, Observation]:
    """Observations of every managed volume that has a handle."""
    out: dict[Address, Observation] = {}
    for address, record in records.items():
        if address.kind is not Kind.VOLUME or record.retained or not record.handle:
            continue
        try:
            parameters = resolve(address.namespace, record.driver_parameters)
            ctx = OpContext(parameters=parameters, address=str(address))
            driver = drivers.get(record.driver)
            out[address] = driver.observe(ctx, VolumeHandle(record.handle))
        except DriverError as exc:
            raise PlanError(f"refresh of {address} failed: {exc}") from exc
    return out
