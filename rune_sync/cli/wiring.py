"""Builds the pipeline's collaborators (driver registry, schemas) for the commands.

The one place that knows which concrete pieces exist; commands call these and pass
the results down explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping

from rune_sync.drivers.registry import DriverRegistry
from rune_sync.spec.model import Capabilities, StorageSettings


def driver_registry(settings: StorageSettings | None = None) -> DriverRegistry:
    return DriverRegistry.from_entry_points(settings=settings or StorageSettings())


def driver_capabilities() -> Mapping[str, Capabilities]:
    """Declared capabilities of every installed driver (no driver is constructed)."""
    return driver_registry().capabilities()
