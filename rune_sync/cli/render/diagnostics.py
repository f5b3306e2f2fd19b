"""Diagnostics as text (one compiler-style line each) or as one JSON document."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rune_sync.diagnostics import Diagnostic, Severity

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow"}


def text_lines(items: Sequence[Diagnostic]) -> list[str]:
    return [str(d) for d in items]


def rich_markup(item: Diagnostic) -> str:
    """One diagnostic with rich markup (only used when writing to a terminal)."""
    from rich.markup import escape

    head = f"{item.severity.value}[{item.code}]"
    where = f"[bold]{escape(str(item.location))}:[/bold] " if item.location else ""
    what = f" {escape(item.resource)}:" if item.resource else ""
    return f"{where}[{_STYLE[item.severity]}]{escape(head)}[/]{what} {escape(item.message)}"


def summary(items: Sequence[Diagnostic], files: int) -> str:
    errors = sum(1 for d in items if d.is_error)
    warnings = len(items) - errors
    noun = "file" if files == 1 else "files"
    if not items:
        return f"No problems found in {files} {noun}."
    parts = [f"{errors} error{'s' if errors != 1 else ''}"]
    parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    return f"{', '.join(parts)} in {files} {noun}."


def to_json(items: Sequence[Diagnostic]) -> str:
    return json.dumps([d.to_json() for d in items], indent=2)
