"""Which changes of a plan a watch cycle carries out, and which it withholds.

``apply`` refuses a whole plan that holds a blocked destroy or replace, or trips the
mass-delete breaker; a watcher cannot ask anyone, so it carries out everything else and
reports the rest each cycle until the operator passes the flag (or changes the source).
Withheld: every blocked change; with a tripped breaker (and no ``--allow-mass-delete``)
every forget and destroy of a volume or snapshot; and every change that must wait for a
withheld one (the plan's own dependency order). Pure: called by the cycle, never writes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rune_sync.plan import graph
from rune_sync.plan.model import Action, Change, Plan

_TEARDOWN = (Action.FORGET, Action.DESTROY)


@dataclass(frozen=True, slots=True, kw_only=True)
class Split:
    """``runnable`` has no blocked change and no breaker; ``withheld`` says why per change."""

    runnable: Plan
    withheld: tuple[Change, ...] = ()
    reasons: tuple[str, ...] = ()
    """One line per withheld change: address, action and the flag or change it waits for."""


def split(plan: Plan) -> Split:
    """Split ``plan`` into what may run unattended and what waits for a flag."""
    changes = plan.changes
    why: dict[int, str] = {}
    for i, change in enumerate(changes):
        if change.blocked:
            why[i] = f"needs {change.blocked} ({change.reason})"
        elif plan.mass_delete and change.action in _TEARDOWN:
            why[i] = f"needs --allow-mass-delete ({plan.mass_delete})"
    if not why:
        return Split(runnable=plan)
    before = graph.predecessors(changes)
    # ``changes`` is in dependency order, but reversed teardown edges can point forward,
    # so spread the withholding until nothing new is reached.
    grew = True
    while grew:
        grew = False
        for i, preds in enumerate(before):
            if i in why:
                continue
            blocker = next((p for p in preds if p in why), None)
            if blocker is not None:
                why[i] = f"waits for {changes[blocker].address}, which is withheld"
                grew = True
    kept = tuple(c for i, c in enumerate(changes) if i not in why)
    held = [i for i in sorted(why) if _acts(changes[i])]
    return Split(
        runnable=replace(plan, changes=kept, mass_delete=None),
        withheld=tuple(changes[i] for i in held),
        reasons=tuple(_note(changes[i], why[i]) for i in held),
    )


def _acts(change: Change) -> bool:
    return change.action is not Action.NOOP


def _note(change: Change, why: str) -> str:
    return f"{change.address}: {change.action.value} withheld: {why}"
