"""Execution order of a plan's changes (graphlib).

Creates and updates run after what they depend on (class → volume → snapshot →
restored volume); destroys run in reverse (a snapshot before its source volume, a
volume before its class). Independent changes keep a stable, sorted order so the same
inputs always print the same plan.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable

from rune_sync.plan.model import Action, Change
from rune_sync.spec.model import Address, Kind

_KIND_RANK = {Kind.STORAGE_CLASS: 0, Kind.VOLUME: 1, Kind.SNAPSHOT: 2}


def order(changes: Iterable[Change]) -> tuple[Change, ...]:
    """Changes in an order that respects every dependency; raises ValueError on a cycle."""
    by_address = {c.address: c for c in changes}
    sorter: graphlib.TopologicalSorter[Address] = graphlib.TopologicalSorter()
    for change in by_address.values():
        sorter.add(change.address)
        for dep in change.depends_on:
            if dep not in by_address:
                continue
            if _is_teardown(change) and _is_teardown(by_address[dep]):
                sorter.add(dep, change.address)  # reversed: the dependent goes first
            else:
                sorter.add(change.address, dep)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise ValueError(f"dependency cycle between {exc.args[1]}") from None
    out: list[Change] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=_sort_key)
        out.extend(by_address[a] for a in ready)
        sorter.done(*ready)
    return tuple(out)


def layers(changes: Iterable[Change]) -> list[list[Change]]:
    """The same order as groups whose members do not depend on each other (for apply)."""
    ordered = order(changes)
    position = {c.address: i for i, c in enumerate(ordered)}
    depth: dict[Address, int] = {}
    by_address = {c.address: c for c in ordered}
    for change in ordered:
        parents = [d for d in change.depends_on if d in by_address]
        edges = [p for p in parents if position[p] < position[change.address]] + [
            c.address
            for c in ordered
            if change.address in c.depends_on and position[c.address] < position[change.address]
        ]
        depth[change.address] = 1 + max((depth[e] for e in edges), default=-1)
    grouped: dict[int, list[Change]] = {}
    for change in ordered:
        grouped.setdefault(depth[change.address], []).append(change)
    return [grouped[k] for k in sorted(grouped)]


def _is_teardown(change: Change) -> bool:
    return change.action in (Action.DESTROY, Action.FORGET)


def _sort_key(address: Address) -> tuple[int, str, str]:
    return (_KIND_RANK.get(address.kind, 9), address.namespace, address.name)
