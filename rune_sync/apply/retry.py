"""Retrying driver calls: transient errors with exponential backoff and jitter (tenacity).

Owned here: which errors are retried (only :class:`~rune_sync.errors.DriverTransientError`
— timeouts, HTTP 5xx, 429; configuration, authentication and unsupported operations fail
at once), how long to wait (exponential with jitter, never less than the backend's
``Retry-After``), how many attempts (at least five, DESIGN §7), and that a stop request
(Ctrl-C, SIGTERM) cuts a wait short. Callers get the result or the last error, and the
number of attempts made.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from rune_sync.errors import DriverError, DriverTransientError

_T = TypeVar("_T")


class Interrupted(DriverError):
    """A stop was requested while waiting to retry; carries the last transient error."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How transient errors are retried. ``attempts`` counts the first call too."""

    attempts: int = 5
    initial: float = 0.5
    maximum: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a retry policy needs at least one attempt")


@dataclass(slots=True)
class Attempts:
    """How many calls were made (shared with the caller, so a failure still reports it)."""

    count: int = 0


def call(
    fn: Callable[[], _T],
    *,
    policy: RetryPolicy,
    attempts: Attempts,
    stop: threading.Event | None = None,
    on_retry: Callable[[DriverTransientError, float], None] | None = None,
) -> _T:
    """``fn()``, retried on transient errors as ``policy`` says.

    Raises the last error when attempts run out, any non-transient error at once, and
    :class:`Interrupted` when ``stop`` is set during a wait. ``on_retry(error, wait)``
    is told before each wait.
    """
    backoff = tenacity.wait_exponential(
        multiplier=policy.initial, max=policy.maximum
    ) + tenacity.wait_random(0, policy.jitter)

    def wait(state: tenacity.RetryCallState) -> float:
        seconds = backoff(state)
        error = _error_of(state)
        if error is not None and error.retry_after is not None:
            seconds = max(seconds, error.retry_after)
        return seconds

    def sleep(seconds: float) -> None:
        if stop is None:
            time.sleep(seconds)
        elif stop.wait(seconds):
            raise Interrupted(f"stopped while waiting to retry after: {last_error}")

    last_error: DriverTransientError | None = None

    def before_sleep(state: tenacity.RetryCallState) -> None:
        nonlocal last_error
        last_error = _error_of(state)
        if on_retry is not None and last_error is not None and state.next_action is not None:
            on_retry(last_error, state.next_action.sleep)

    def counted() -> _T:
        attempts.count += 1
        return fn()

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=wait,
        retry=tenacity.retry_if_exception_type(DriverTransientError),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(counted)


def _error_of(state: tenacity.RetryCallState) -> DriverTransientError | None:
    outcome = state.outcome
    if outcome is None or not outcome.failed:
        return None
    error = outcome.exception()
    return error if isinstance(error, DriverTransientError) else None
