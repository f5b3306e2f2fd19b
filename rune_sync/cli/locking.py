"""Holding the state's lock for a command that writes, and saying who holds it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import click

from rune_sync.cli.render import state_view
from rune_sync.state.backend import StateBackend
from rune_sync.state.model import LockInfo


@contextmanager
def hold(backend: StateBackend, *, command: str, timeout: float) -> Iterator[None]:
    """Hold the state's lock for the block. With a ``timeout`` and a holder, say on stderr
    who holds it before waiting; the lock error names the holder either way."""
    if timeout > 0:
        holder = backend.lock_info()
        if holder is not None:
            click.echo(state_view.waiting(holder, timeout), err=True)
    info = LockInfo.for_this_process(command=command, now=datetime.now(UTC))
    with backend.lock(info, timeout=timeout):
        yield
