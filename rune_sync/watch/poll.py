"""The git poller: is there anything new on the remote? One ``git ls-remote`` per tick.

Owned here: :class:`GitPoll`, the ``check`` of a :class:`~rune_sync.watch.triggers.Periodic`
that watches a git source. It asks the remote what the ref points to now
(:func:`rune_sync.source.git.remote_revision`, nothing is fetched) and compares it with
the commit the last cycle loaded: the same SHA → None (no cycle, nothing fetched);
another → the new SHA (a cycle runs, fetches and checks it out). A SHA is announced once:
a cycle that failed on it (invalid specs) is retried by the loop's backoff, not by every
poll; before any cycle loaded a commit, the first cycle (queued at start) serves what the
first poll sees. The remote going out of reach wakes one cycle (which fails, so health
shows it and the loop's backoff retries); it coming back wakes another at once.
Called from the trigger thread; must not fetch, plan or touch the state.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from rune_sync.errors import RuneSyncError
from rune_sync.source import git, urls


class Outcome(enum.StrEnum):
    UNCHANGED = "unchanged"
    MOVED = "moved"
    UNREACHABLE = "unreachable"


class GitPoll:
    """``check()`` for the poller of ``url``'s ``ref`` (None: the remote's HEAD)."""

    def __init__(
        self,
        *,
        url: str,
        ref: str | None,
        timeout: float,
        loaded: Callable[[], str | None],
        count: Callable[[Outcome], None] = lambda outcome: None,
    ) -> None:
        self._url = url
        self._ref = ref
        self._timeout = timeout
        self._loaded = loaded
        self._count = count
        self._reachable = True
        self._announced: str | None = None

    def __call__(self) -> str | None:
        """The new commit (or why a cycle must run), or None when nothing moved."""
        try:
            sha = git.remote_revision(url=self._url, ref=self._ref, timeout=self._timeout)
        except RuneSyncError as exc:
            self._count(Outcome.UNREACHABLE)
            if not self._reachable:
                return None  # the failed cycle's retries (with backoff) take it from here
            self._reachable = False
            return f"unreachable: {urls.redact(str(exc))}"
        if not self._reachable:
            self._reachable = True
            self._count(Outcome.MOVED)
            return f"reachable again: {sha}"
        loaded = self._loaded()
        if loaded is None and self._announced is None:
            self._announced = sha  # the start cycle serves it (or its retries do)
        if sha in (loaded, self._announced):
            self._count(Outcome.UNCHANGED)
            return None
        self._announced = sha
        self._count(Outcome.MOVED)
        return sha
