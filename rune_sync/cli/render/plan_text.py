"""A plan as text: Terraform-like symbols, field diffs, the summary line, the verdict.

Returns lines with rich markup when ``color`` is set and plain text otherwise; the
words are the same either way, so scripts can read either. Computes nothing: every
fact comes from the plan value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from rune_sync.plan.model import Action, Change, DiffOp, FieldDiff, Plan

_STYLE = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.REPLACE: "bold red",
    Action.DESTROY: "bold red",
    Action.FORGET: "cyan",
    Action.NOOP: "dim",
}

NO_DATA_DESTROYED = "No data will be destroyed."


def _value(value: Any) -> str:
    """A field's value in full: output for scripts and logs never cuts information."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


class _Writer:
    def __init__(self, color: bool) -> None:
        self.color = color
        self.lines: list[str] = []

    def text(self, text: str, style: str | None = None) -> str:
        if not self.color:
            return text
        from rich.markup import escape

        return f"[{style}]{escape(text)}[/]" if style else escape(text)

    def add(self, *parts: str) -> None:
        self.lines.append("".join(parts))


def _diff_line(d: FieldDiff) -> str:
    if d.op is DiffOp.ADD:
        return f"+ {d.path}: {_value(d.new)}"
    if d.op is DiffOp.REMOVE:
        return f"- {d.path}: {_value(d.old)}"
    return f"~ {d.path}: {_value(d.old)} → {_value(d.new)}"


def headline_facts(change: Change) -> str:
    """``local, 10Gi, ReadWriteOnce``: the driver, size and access mode a change is about,
    and the snapshot a new volume is restored from."""
    after = change.after or change.before or {}
    facts = [str(after[k]) for k in ("driver", "size", "accessMode") if after.get(k)]
    if isinstance(after.get("restoreFrom"), str):
        facts.append(f"from snapshot {after['restoreFrom']}")
    return ", ".join(facts)


def _headline(change: Change) -> str:
    facts = headline_facts(change)
    return f" ({facts})" if facts else ""


def _change(w: _Writer, change: Change) -> None:
    style = _STYLE[change.action]
    symbol = change.action.symbol.rjust(3)
    blocked = f"  [blocked: needs {change.blocked}]" if change.blocked else ""
    w.add(
        w.text(f"{symbol} {change.address}", style),
        w.text(_headline(change), "dim"),
        w.text(blocked, "bold red"),
    )
    w.add(f"      {change.action.value}: {w.text(change.reason)}")
    if change.drift:
        w.add(f"      {w.text('drift: ' + change.drift, 'magenta')}")
    for d in change.diffs:
        w.add(f"      {w.text(_diff_line(d), style)}")
    if change.action in (Action.DESTROY, Action.REPLACE) and change.handle:
        w.add(f"      data at {change.handle}")
    if change.snapshot_first:
        w.add("      a snapshot is taken first and checked before anything is destroyed")


def verdict_lines(plan: Plan) -> Iterator[str]:
    victims = plan.victims
    if not victims:
        yield NO_DATA_DESTROYED
        return
    yield f"This plan would destroy the data of {len(victims)} resource(s):"
    for v in victims:
        blocked = f" — blocked: needs {v.blocked}" if v.blocked else ""
        handle = v.handle or "no handle recorded"
        yield f"  {v.address} ({handle}): {v.action.value}{blocked}"


def provenance_lines(source: Mapping[str, Any] | None) -> list[str]:
    """Where a git plan came from: URL, ref and path, the commit, its author, date and
    subject. Nothing for a directory source (its path is in the plan's JSON)."""
    if not source or source.get("kind") != "git" or not source.get("commit"):
        return []
    where = [f"ref {source['ref']}" if source.get("ref") else "remote HEAD"]
    if source.get("path"):
        where.append(f"path {source['path']}")
    lines = [
        f"Source: {source.get('url')} ({', '.join(where)})",
        f"Commit: {source['commit']}",
    ]
    if source.get("author"):
        lines.append(f"Author: {source['author']}")
    if source.get("date"):
        lines.append(f"Date:   {source['date']}")
    if source.get("subject") is not None:
        lines.append(f"        {source['subject']}")
    return lines


def render(plan: Plan, *, color: bool = False, header: str | None = None) -> list[str]:
    """The plan as lines of text (with rich markup when ``color``); a git plan opens
    with its provenance."""
    w = _Writer(color)
    provenance = provenance_lines(plan.source)
    for line in provenance:
        w.add(w.text(line, "bold" if line.startswith("Commit:") else None))
    if provenance:
        w.add("")
    if header:
        w.add(header)
        w.add("")
    active = [c for c in plan.changes if c.action is not Action.NOOP]
    stalled = [c for c in plan.changes if c.action is Action.NOOP and c.status == "Stalled"]
    if active:
        w.add("rune-sync will perform these actions:")
        w.add("")
        for change in active:
            _change(w, change)
            w.add("")
    elif stalled:
        w.add("No changes to make, but Stalled resources are skipped:")
        w.add("")
    else:
        w.add("No changes. The storage matches the source.")
        w.add("")
    for change in stalled:
        w.add(w.text(f"! {change.address} is skipped: {change.reason}", "bold yellow"))
    if stalled:
        w.add("")
    unchanged = len(plan.changes) - len(active)
    if unchanged:
        w.add(w.text(f"{unchanged} resource(s) unchanged.", "dim"))
    if plan.blocked:
        flags = ", ".join(sorted({c.blocked or "" for c in plan.blocked}))
        w.add(
            w.text(
                f"{len(plan.blocked)} change(s) are blocked until you pass {flags}; "
                "apply will refuse them.",
                "bold red",
            )
        )
    w.add(w.text(plan.summary.line(), "bold"))
    for line in verdict_lines(plan):
        w.add(w.text(line, "bold red" if plan.victims else "green"))
    return w.lines
