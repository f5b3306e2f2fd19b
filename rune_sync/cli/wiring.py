"""Builds the pipeline's collaborators (driver registry, schemas) for the commands.

The one place that knows which concrete pieces exist; commands call these and pass
the results down explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping

from rune_sync.drivers.registry import DriverRegistry
from rune_sync.spec.model import Capabilities, ParameterRules, StorageSettings


def driver_registry(settings: StorageSettings | None = None) -> DriverRegistry:
    return DriverRegistry.from_entry_points(settings=settings or StorageSettings())


def driver_declarations() -> tuple[Mapping[str, Capabilities], Mapping[str, ParameterRules]]:
    """Capabilities and parameter rules of every installed driver (none is constructed)."""
    registry = driver_registry()
    return registry.capabilities(), registry.parameter_rules()
