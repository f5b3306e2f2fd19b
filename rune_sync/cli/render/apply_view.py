"""How apply's events are shown: JSON lines, plain log lines, or a progress bar.

- ``--format json``: every event is one JSON object on its own line on stdout, and the
  run ends with a ``summary`` object — stdout holds nothing else (DESIGN §12);
- text on a terminal (stderr): a rich progress bar, with failures, retries and notes
  printed above it as they happen;
- text elsewhere (CI logs): one quiet line per finished resource on stderr.

Reporters are called from worker threads; each serialises its own output.
"""

from __future__ import annotations

import json
import sys
import threading
from types import TracebackType
from typing import Any, TextIO

import click

from rune_sync.apply.engine import Result
from rune_sync.apply.events import Event, Phase
from rune_sync.plan.model import Action, Plan

_LINE_PHASES = frozenset({Phase.DONE, Phase.FAILED, Phase.SKIPPED, Phase.RETRY, Phase.NOTE})


def line(event: Event) -> str:
    """One log line for an event (no colour)."""
    took = f" [{event.seconds:.2f}s]" if event.phase in (Phase.DONE, Phase.FAILED) else ""
    label = {
        Phase.DONE: "",
        Phase.FAILED: "FAILED: ",
        Phase.SKIPPED: "",
        Phase.RETRY: "retrying: ",
        Phase.NOTE: "",
        Phase.START: "starting ",
    }[event.phase]
    return f"{event.address}: {label}{event.message}{took}"


class JsonLines:
    """One JSON object per line on ``stream`` (stdout)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()

    def emit(self, obj: dict[str, Any]) -> None:
        text = json.dumps(obj, ensure_ascii=False, sort_keys=False)
        with self._lock:
            self._stream.write(text + "\n")
            self._stream.flush()

    def event(self, event: Event) -> None:
        self.emit(event.to_json())

    def plan(self, plan: Plan) -> None:
        self.emit({"event": "plan", "plan": plan.to_json()})

    def summary(self, result: Result, *, message: str) -> None:
        self.emit(summary_json(result, message=message))


class LogLines:
    """One line per finished resource (and per retry or note) on stderr."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def event(self, event: Event) -> None:
        if event.phase not in _LINE_PHASES:
            return
        text = line(event)
        with self._lock:
            click.echo(text, err=True)


class ProgressBar:
    """A rich progress bar on stderr for a terminal; problems are printed above it."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr, highlight=False),
            transient=False,
        )
        self._task = self._progress.add_task("Applying", total=total)
        self._lock = threading.Lock()

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def event(self, event: Event) -> None:
        from rich.markup import escape

        with self._lock:
            if event.phase in (Phase.DONE, Phase.FAILED, Phase.SKIPPED):
                self._progress.advance(self._task)
            style = {Phase.FAILED: "red", Phase.RETRY: "yellow", Phase.NOTE: "cyan"}.get(
                event.phase
            )
            if style is not None:
                self._progress.console.print(f"[{style}]{escape(line(event))}[/]")


NOT_RUN_SHOWN = 20
"""Changes not run (skipped or never started) listed by name; the rest are counted."""


def summary_lines(result: Result) -> list[str]:
    """The closing summary: counts, each failure with its reason, then what did not run."""
    lines = [result.summary()]
    not_run = []
    for outcome in result.failed:
        if outcome.skipped:
            not_run.append(outcome)
        else:
            lines.append(f"  {outcome.address}: {outcome.message}")
    for outcome in not_run[:NOT_RUN_SHOWN]:
        lines.append(f"  {outcome.address}: {outcome.message}")
    if len(not_run) > NOT_RUN_SHOWN:
        lines.append(f"  … and {len(not_run) - NOT_RUN_SHOWN} more not run")
    return lines


def summary_json(result: Result, *, message: str) -> dict[str, Any]:
    return {
        "event": "summary",
        "ok": result.ok,
        "stopped": result.stopped,
        "message": message,
        "counts": {
            "created": result.count(Action.CREATE),
            "updated": result.count(Action.UPDATE),
            "replaced": result.count(Action.REPLACE),
            "destroyed": result.count(Action.DESTROY),
            "forgotten": result.count(Action.FORGET),
            "failed": len(result.failed),
        },
        "failures": [
            {"address": str(o.address), "action": o.action.value, "message": o.message}
            for o in result.failed
        ],
    }
