"""Bring a state and a volume root to "everything applied" for the plan benchmarks.

The apply engine is not part of the package yet, so this walks the plan the real
planner makes for an empty state and, for each create, provisions through the real
local driver and writes the record the way apply will (one transaction for the lot,
which is faster than apply's one-per-step and irrelevant to what is being measured).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rune_sync.cli import pipeline, wiring
from rune_sync.drivers.base import OpContext, ProvisionRequest
from rune_sync.plan.model import Action, Options
from rune_sync.spec.model import AccessMode, Kind
from rune_sync.spec.quantity import Quantity
from rune_sync.state.backend import open_backend
from rune_sync.state.model import StateRecord


def seed(repo: Path, state: Path) -> int:
    """Apply every create of ``repo``'s first plan into ``state``; returns the count."""
    loaded = pipeline.load_source(pipeline.SourceArgs(source=str(repo)))
    registry = wiring.driver_registry(loaded.runefile.storage)
    plan = pipeline.make_plan(loaded, pipeline.StateView(meta=None), Options(refresh=False))
    now = datetime.now(UTC)
    count = 0
    with open_backend(state, create=True) as backend, backend.transaction() as tx:
        for change in plan.changes:
            if change.action is not Action.CREATE:
                continue
            handle = None
            if change.address.kind is Kind.VOLUME:
                after = change.after or {}
                driver = registry.get(change.driver)
                handle = driver.provision(
                    OpContext(parameters=change.parameters, address=str(change.address)),
                    ProvisionRequest(
                        name=change.address.name,
                        namespace=change.address.namespace,
                        size=Quantity(int(after["sizeBytes"]), str(after["size"])),
                        access_mode=AccessMode(after["accessMode"]),
                    ),
                )
            tx.put(
                StateRecord(
                    address=change.address,
                    spec=change.after or {},
                    driver=change.driver,
                    status=change.status or "Available",
                    handle=handle,
                    bound_claim=change.bound_claim,
                    owner_service=change.owner_service,
                    driver_parameters=change.parameters,
                    created_at=now,
                    updated_at=now,
                )
            )
            count += 1
        tx.bump_serial()
    return count
