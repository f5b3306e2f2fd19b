"""Keeping resolved values out of error text.

Every value the resolver hands out is remembered here (in memory, for the run). A
driver may still put what it was given into an error — local-host names its
``hostPath``, a library may echo a header — so errors raised by driver calls are
cleaned before anyone prints, records or logs them: every remembered value in the
messages of the exception and of its causes becomes ``***``. An exception whose text
still shows a value after that (a custom ``__str__``) is replaced by a
:class:`~rune_sync.errors.DriverError` that says its text was withheld.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from rune_sync import errors

MASK = "***"


class Redactor:
    """The values to hide, and the cleaning of text and exceptions. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()

    def remember(self, value: str) -> None:
        """Hide ``value`` from now on (empty values hide nothing)."""
        if not value or value in self._values:
            return
        with self._lock:
            self._values = self._values | {value}

    def scrub(self, text: str) -> str:
        """``text`` with every remembered value replaced by ``***`` (longest first)."""
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, MASK)
        return text

    def shows_a_value(self, text: str) -> bool:
        return any(value in text for value in self._values)

    def clean(self, exc: BaseException) -> BaseException | None:
        """Scrub ``exc`` and its chain in place; a stand-in when that is not enough.

        Returns None when ``exc`` (now clean) can be raised as it is.
        """
        if not self._values:
            return None
        chain = list(_chain(exc))
        for link in chain:
            self._scrub_in_place(link)
        if not any(self._leaks(link) for link in chain):
            return None
        stand_in = errors.DriverError(
            f"{type(exc).__name__} raised by the driver; its text held a secret value "
            "and is withheld",
            driver=getattr(exc, "driver", ""),
            operation=getattr(exc, "operation", ""),
            address=getattr(exc, "address", ""),
        )
        return stand_in

    def _scrub_in_place(self, exc: BaseException) -> None:
        exc.args = tuple(self.scrub(a) if isinstance(a, str) else a for a in exc.args)
        if isinstance(exc, OSError):
            for attribute in ("filename", "filename2", "strerror"):
                value = getattr(exc, attribute, None)
                if isinstance(value, str):
                    setattr(exc, attribute, self.scrub(value))
        notes = getattr(exc, "__notes__", None)
        if isinstance(notes, list):
            exc.__notes__ = [self.scrub(n) if isinstance(n, str) else n for n in notes]

    def _leaks(self, exc: BaseException) -> bool:
        try:
            shown = f"{exc}\n{exc!r}\n" + "\n".join(map(str, getattr(exc, "__notes__", ())))
        except Exception:
            return True  # text that cannot even be built cannot be checked: withhold it
        return self.shows_a_value(shown)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it was raised from or while handling."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        link = todo.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        todo.extend(e for e in (link.__cause__, link.__context__) if e is not None)
