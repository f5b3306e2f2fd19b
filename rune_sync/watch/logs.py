"""The watcher's structured log: one line per record on a stream (stderr), text or JSON.

Text lines are ``TIME LEVEL EVENT key=value …`` (values with spaces are quoted); JSON
lines are one object with ``time``, ``level``, ``event`` and the fields. Every cycle
gives one ``cycle`` record (trigger, commit, actions by kind, duration, phases, latency
from the change detected to applied, result, error);
apply's per-resource events become ``change`` records. Callers pass only values that
are safe to print: secret values never reach here (driver errors are redacted before
they become events, and the webhook secret is never given to a logger).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from rune_sync.apply.events import Event, Phase
from rune_sync.watch.loop import Finished, Result

FORMATS = ("text", "json")

_PHASE_LEVEL = {
    Phase.FAILED: "error",
    Phase.RETRY: "warning",
    Phase.SKIPPED: "warning",
}


class Log:
    """Writes records to ``stream``; safe to call from several threads."""

    def __init__(
        self,
        stream: TextIO,
        *,
        fmt: str = "text",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
        self._stream = stream
        self._json = fmt == "json"
        self._clock = clock
        # Re-entrant: a signal handler on the main thread may log while it is logging.
        self._lock = threading.RLock()

    def record(self, event: str, *, level: str = "info", **fields: Any) -> None:
        stamp = self._clock().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if self._json:
            line = json.dumps(
                {"time": stamp, "level": level, "event": event, **fields},
                ensure_ascii=False,
                default=str,
            )
        else:
            parts = [stamp, level, event]
            parts.extend(f"{k}={_text(v)}" for k, v in fields.items() if v is not None)
            line = " ".join(parts)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def cycle(self, done: Finished) -> None:
        """The one record per cycle."""
        report = done.report
        level = {Result.OK: "info", Result.STOPPED: "warning"}.get(report.result, "error")
        self.record(
            "cycle",
            level=level,
            trigger=",".join(done.request.names),
            commit=report.commit,
            refresh=done.request.refresh,
            actions=dict(report.actions),
            duration_s=round(done.duration, 3),
            latency_s=None if done.latency is None else round(done.latency, 3),
            phases_s={k: round(v, 3) for k, v in report.phases.items()} or None,
            result=report.result.value,
            error=report.error,
            failures=done.failures,
            retry_in_s=done.retry_in,
        )
        for note in report.withheld:
            self.record("withheld", level="warning", detail=note)

    def event(self, event: Event) -> None:
        """Apply's reporter hook: one ``change`` record per step worth telling."""
        if event.phase is Phase.START:
            return
        self.record(
            "change",
            level=_PHASE_LEVEL.get(event.phase, "info"),
            phase=event.phase.value,
            address=str(event.address),
            action=event.action.value,
            handle=event.handle,
            message=event.message or None,
        )


def _text(value: object) -> str:
    if isinstance(value, dict):
        value = ",".join(f"{k}:{v}" for k, v in value.items()) or "-"
    if isinstance(value, float):
        value = f"{value:g}"
    text = str(value)
    if not text or any(c in text for c in ' "=\n'):
        return json.dumps(text, ensure_ascii=False)
    return text
