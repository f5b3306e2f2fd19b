"""What wakes the loop: each trigger is a thread that pushes requests into the inbox.

- :class:`FileChanges` — filesystem events below a directory source (watchfiles,
  inotify on Linux), batched: a burst of events within ``debounce`` seconds is one
  request. Hidden paths (the loader skips them; the default state lives in
  ``.rune-sync/``) and files that are not ``*.yaml``/``*.yml``/``*.toml`` are ignored,
  so the watcher's own writes never wake it. A folder moved away wakes it too. A
  runefile outside the source (``--runefile``) is not watched: SIGHUP (``systemctl
  reload``) or any other cycle reads it again.
- :class:`Periodic` — every N seconds (the resync). The git poller is a Periodic with
  a ``check`` that says whether anything moved (:class:`rune_sync.watch.poll.GitPoll`).

The webhook trigger lives in :mod:`rune_sync.watch.http`. A trigger never runs a
cycle itself and never raises into the loop: problems are logged and it keeps going.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import watchfiles

from rune_sync.watch.logs import Log
from rune_sync.watch.loop import Inbox, Request, Trigger

WATCHED_SUFFIXES = (".yaml", ".yml", ".toml")


class Source(Protocol):
    """A trigger: started once, closed once (close waits for its thread)."""

    def start(self) -> None: ...

    def close(self) -> None: ...


class FileChanges:
    """Pushes a :attr:`Trigger.CHANGE` for every batch of relevant file events."""

    def __init__(
        self,
        *,
        root: Path,
        inbox: Inbox,
        log: Log,
        clock: Callable[[], float],
        debounce: float,
    ) -> None:
        self._root = root.resolve()
        self._inbox = inbox
        self._log = log
        self._clock = clock
        self._debounce_ms = max(1, int(debounce * 1000))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watch-files", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def relevant(self, change: watchfiles.Change, path: str) -> bool:
        """Whether an event at ``path`` may change what the source declares."""
        where = Path(path)
        try:
            inside = where.relative_to(self._root)
        except ValueError:
            return False
        if any(part.startswith(".") for part in inside.parts):
            return False
        if where.suffix in WATCHED_SUFFIXES:
            return True
        return change is watchfiles.Change.deleted and not where.suffix

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for changes in watchfiles.watch(
                    self._root,
                    watch_filter=self.relevant,
                    debounce=self._debounce_ms,
                    # How long the watcher waits for a quiet moment; it also wakes this
                    # often when idle, so it is kept ≥ 10 ms (idle CPU).
                    step=max(10, min(50, self._debounce_ms)),
                    stop_event=self._stop,
                    raise_interrupt=False,
                ):
                    detail = ",".join(sorted({_short(p, self._root) for _, p in changes}))
                    self._inbox.push(
                        Request(trigger=Trigger.CHANGE, at=self._clock(), detail=detail)
                    )
            except Exception as exc:
                # The watcher must survive a vanished or unreadable folder: log, wait,
                # and watch again (the loop's resync still runs meanwhile).
                self._log.record("watch-error", level="error", error=str(exc))
                self._stop.wait(5.0)


class Periodic:
    """Every ``every`` seconds, push ``trigger`` — when ``check`` (if given) says so.

    ``check`` returns a detail for the request (e.g. the new commit), or None for "nothing
    moved"; an exception it raises is logged and the next tick tries again.
    """

    def __init__(
        self,
        *,
        every: float,
        trigger: Trigger,
        inbox: Inbox,
        log: Log,
        clock: Callable[[], float],
        check: Callable[[], str | None] | None = None,
    ) -> None:
        if every <= 0:
            raise ValueError("a periodic trigger needs a positive interval")
        self._every = every
        self._trigger = trigger
        self._inbox = inbox
        self._log = log
        self._clock = clock
        self._check = check
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"watch-{trigger.value}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                detail = self._check() if self._check is not None else ""
            except Exception as exc:
                # A check that fails (a remote out of reach) is retried at the next tick;
                # the trigger thread must outlive it.
                self._log.record(
                    "trigger-error", level="error", trigger=self._trigger.value, error=str(exc)
                )
                continue
            if detail is not None:
                self._inbox.push(Request(trigger=self._trigger, at=self._clock(), detail=detail))


def _short(path: str, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return path
