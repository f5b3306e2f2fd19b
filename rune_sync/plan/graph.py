"""Execution order of a plan's changes (graphlib).

Creates and updates run after what they depend on (class → volume → snapshot →
restored volume); destroys run in reverse (a snapshot before its source volume, a
volume before its class). Independent changes keep a stable, sorted order so the same
inputs always print the same plan.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Sequence

from rune_sync.plan.model import Action, Change
from rune_sync.spec.model import Address, Kind

_KIND_RANK = {Kind.STORAGE_CLASS: 0, Kind.VOLUME: 1, Kind.SNAPSHOT: 2}


def predecessors(changes: Sequence[Change]) -> list[list[int]]:
    """For each change (by index), the indices of the changes that must finish first."""
    index = {c.address: i for i, c in enumerate(changes)}
    before: list[list[int]] = [[] for _ in changes]
    for i, change in enumerate(changes):
        for dep in change.depends_on:
            j = index.get(dep)
            if j is None:
                continue
            if _is_teardown(change) and _is_teardown(changes[j]):
                before[j].append(i)  # reversed: the dependent goes first
            else:
                before[i].append(j)
    return before


def order(changes: Iterable[Change]) -> tuple[Change, ...]:
    """Changes in an order that respects every dependency; raises ValueError on a cycle."""
    # Nodes are indices: hashing ints keeps this linear and cheap at 100k changes.
    items = list({c.address: c for c in changes}.values())
    sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter()
    for i, preds in enumerate(predecessors(items)):
        sorter.add(i, *preds)
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = ", ".join(str(items[i].address) for i in exc.args[1])
        raise ValueError(f"dependency cycle between {cycle}") from None
    keys = [_sort_key(c.address) for c in items]
    out: list[Change] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=keys.__getitem__)
        out.extend(items[i] for i in ready)
        sorter.done(*ready)
    return tuple(out)


def layers(changes: Iterable[Change]) -> list[list[Change]]:
    """The same order as groups whose members do not depend on each other."""
    ordered = order(changes)
    depth: list[int] = []
    for preds in predecessors(ordered):
        # ``ordered`` is topological, so every predecessor's depth is already known.
        depth.append(1 + max((depth[p] for p in preds), default=-1))
    grouped: dict[int, list[Change]] = {}
    for change, level in zip(ordered, depth, strict=True):
        grouped.setdefault(level, []).append(change)
    return [grouped[k] for k in sorted(grouped)]


def _is_teardown(change: Change) -> bool:
    return change.action in (Action.DESTROY, Action.FORGET)


def _sort_key(address: Address) -> tuple[int, str, str]:
    return (_KIND_RANK.get(address.kind, 9), address.namespace, address.name)
