"""What apply reports while it runs: one :class:`Event` per step of a resource.

Views (text lines, a progress bar, JSON lines) subscribe through :class:`Reporter`;
the engine never prints. Events never carry secret values: messages come from driver
errors, which never hold them, and parameters are not part of an event.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

from rune_sync.plan.model import Action
from rune_sync.spec.model import Address


class Phase(enum.StrEnum):
    START = "start"
    """A change began (its intent is recorded)."""
    RETRY = "retry"
    """A transient error; the call will be tried again after ``seconds``."""
    NOTE = "note"
    """Something the operator should see, e.g. the pre-destroy snapshot taken."""
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Not run: something it depends on failed, or the run was stopped first."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    phase: Phase
    address: Address
    action: Action
    message: str = ""
    handle: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.phase.value,
            "address": str(self.address),
            "action": self.action.value,
            "message": self.message,
            "handle": self.handle,
            "seconds": round(self.seconds, 6),
        }


class Reporter(Protocol):
    """Receives events, possibly from several worker threads at once."""

    def event(self, event: Event) -> None: ...


class Silent:
    """A reporter that drops everything (library use, tests that only read the state)."""

    def event(self, event: Event) -> None:
        return None
