"""Warnings met while resolving secrets, each given at most once per run.

The sources add them (a secrets directory readable by others, RS403; one environment
variable serving two secrets, RS404); whoever prints warnings takes them. Safe to use
from the apply worker threads. Like every diagnostic, a notice names paths, variables
and references, never a value.
"""

from __future__ import annotations

import threading

from rune_sync.diagnostics import Diagnostic


class Notices:
    """A once-per-key collection of warning diagnostics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._pending: list[Diagnostic] = []

    def add(self, key: str, diagnostic: Diagnostic) -> None:
        """Keep ``diagnostic`` unless one was already added under ``key``."""
        with self._lock:
            if key in self._seen:
                return
            self._seen.add(key)
            self._pending.append(diagnostic)

    def take(self) -> tuple[Diagnostic, ...]:
        """The notices added since the last call, oldest first."""
        with self._lock:
            out, self._pending = tuple(self._pending), []
            return out
