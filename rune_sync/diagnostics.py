"""Diagnostics: a problem in the user's input, with its code, place and resource.

Produced by the loader, the schema pass and the rules; rendered by the CLI. A
diagnostic never holds a secret value: messages quote field names and references,
not resolved values.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """A place in a file: 1-based line and column; 0 means unknown."""

    file: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{max(self.column, 1)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    """One problem: ``file:line:col: severity[code] resource: message``."""

    code: str
    message: str
    severity: Severity = Severity.ERROR
    location: Location | None = None
    resource: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str, str]:
        loc = self.location
        if loc is None:
            return ("", 0, 0, self.code, self.message)
        return (loc.file, loc.line, loc.column, self.code, self.message)

    def __str__(self) -> str:
        head = f"{self.severity.value}[{self.code}]"
        where = f"{self.location}: " if self.location is not None else ""
        what = f" {self.resource}:" if self.resource else ""
        return f"{where}{head}{what} {self.message}"

    def to_json(self) -> dict[str, object]:
        loc = self.location
        return {
            "file": loc.file if loc else None,
            "line": loc.line if loc and loc.line > 0 else None,
            "column": loc.column if loc and loc.line > 0 else None,
            "severity": self.severity.value,
            "code": self.code,
            "resource": self.resource or None,
            "message": self.message,
        }


def sorted_diagnostics(items: Iterable[Diagnostic]) -> tuple[Diagnostic, ...]:
    """Sort by file, line and column, dropping exact duplicates."""
    return tuple(sorted(set(items), key=Diagnostic.sort_key))


def has_errors(items: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in items)


def errors_only(items: Iterable[Diagnostic]) -> Iterator[Diagnostic]:
    return (d for d in items if d.is_error)
