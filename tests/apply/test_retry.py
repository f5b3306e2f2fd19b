"""``retry.call``: which errors are retried, how often, how long it waits, and how a stop
request cuts a wait short (DESIGN §7: at least five attempts, never sooner than
``Retry-After``, permanent errors at once)."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable

import pytest

from rune_sync import errors
from rune_sync.apply import retry
from rune_sync.apply.retry import Attempts, Interrupted, RetryPolicy
from tests.apply import FAST_RETRY


def failing(*outcomes: Exception | str) -> Callable[[], str]:
    """A function that raises (or returns) the given outcomes in turn, the last one after."""
    queue = list(outcomes)

    def fn() -> str:
        outcome = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return fn


def transient(message: str = "HTTP 503", retry_after: float | None = None) -> Exception:
    return errors.DriverTransientError(message, driver="test", retry_after=retry_after)


def call(
    fn: Callable[[], str],
    policy: RetryPolicy = FAST_RETRY,
    stop: threading.Event | None = None,
) -> tuple[str, Attempts, list[float]]:
    attempts = Attempts()
    waits: list[float] = []
    result = retry.call(
        fn, policy=policy, attempts=attempts, stop=stop, on_retry=lambda e, w: waits.append(w)
    )
    return result, attempts, waits


def test_success_at_first_is_one_attempt_and_no_wait():
    result, attempts, waits = call(failing("ok"))
    assert (result, attempts.count, waits) == ("ok", 1, [])


@pytest.mark.parametrize("failures", [1, 2, 3, 4])
def test_transient_errors_are_retried_until_success(failures: int):
    result, attempts, waits = call(failing(*[transient()] * failures, "ok"))
    assert result == "ok"
    assert attempts.count == failures + 1
    assert len(waits) == failures


def test_waits_grow_exponentially_and_stop_at_the_maximum():
    policy = RetryPolicy(attempts=6, initial=0.001, maximum=0.005, jitter=0)
    _, _, waits = call(failing(*[transient()] * 5, "ok"), policy)
    assert waits == pytest.approx([0.001, 0.002, 0.004, 0.005, 0.005])


def test_jitter_adds_at_most_jitter_seconds():
    policy = RetryPolicy(attempts=5, initial=0.001, maximum=1.0, jitter=0.002)
    _, _, waits = call(failing(*[transient()] * 4, "ok"), policy)
    for n, wait in enumerate(waits):
        base = 0.001 * 2**n
        assert base <= wait <= base + 0.002 + 1e-9


def test_exhausted_attempts_raise_the_last_error():
    errs = [transient(f"HTTP 503 #{n}") for n in range(5)]
    attempts = Attempts()
    with pytest.raises(errors.DriverTransientError) as caught:
        retry.call(failing(*errs, "never"), policy=FAST_RETRY, attempts=attempts)
    assert caught.value is errs[-1]
    assert attempts.count == 5


@pytest.mark.parametrize(
    "error",
    [
        errors.DriverConfigError("bad parameter"),
        errors.AccessModeUnsupported("no RWX"),
        errors.DriverAuthError("token rejected"),
        errors.ResourceNotFound("gone"),
        errors.UnsupportedOperation("no snapshots"),
        errors.DriverError("plain driver error"),
        ValueError("not a driver error at all"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_other_errors_are_raised_at_once(error: Exception):
    attempts = Attempts()
    told: list[float] = []
    with pytest.raises(type(error)) as caught:
        retry.call(
            failing(error, "never"),
            policy=FAST_RETRY,
            attempts=attempts,
            on_retry=lambda e, w: told.append(w),
        )
    assert caught.value is error
    assert attempts.count == 1
    assert told == []


def test_retry_after_is_a_lower_bound_of_the_wait():
    started = time.monotonic()
    result, attempts, waits = call(failing(transient(retry_after=0.05), "ok"))
    elapsed = time.monotonic() - started
    assert (result, attempts.count) == ("ok", 2)
    assert waits == [pytest.approx(0.05)]
    assert elapsed >= 0.05


def test_retry_after_shorter_than_the_backoff_does_not_shorten_it():
    policy = RetryPolicy(attempts=3, initial=0.03, maximum=1.0, jitter=0)
    _, _, waits = call(failing(transient(retry_after=0.001), "ok"), policy)
    assert waits == [pytest.approx(0.03)]


def test_a_stop_during_a_wait_interrupts_it_with_the_last_error():
    stop = threading.Event()
    attempts = Attempts()
    timer = threading.Timer(0.05, stop.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(Interrupted) as caught:
            retry.call(
                failing(transient("HTTP 429 slow down", retry_after=30), "never"),
                policy=FAST_RETRY,
                attempts=attempts,
                stop=stop,
            )
    finally:
        timer.cancel()
    assert time.monotonic() - started < 5
    assert attempts.count == 1
    assert "HTTP 429 slow down" in str(caught.value)
    assert isinstance(caught.value, errors.DriverError)  # so a step records it as a failure


def test_a_stop_set_before_the_call_still_makes_the_call_but_no_retry():
    stop = threading.Event()
    stop.set()
    assert call(failing("ok"), stop=stop)[0] == "ok"
    attempts = Attempts()
    with pytest.raises(Interrupted):
        retry.call(failing(transient(), "never"), policy=FAST_RETRY, attempts=attempts, stop=stop)
    assert attempts.count == 1


def test_default_policy_makes_at_least_five_attempts():
    assert RetryPolicy().attempts >= 5


@pytest.mark.parametrize("attempts", [0, -1])
def test_a_policy_needs_an_attempt(attempts: int):
    with pytest.raises(ValueError, match="at least one attempt"):
        RetryPolicy(attempts=attempts)


def test_single_attempt_policy_never_waits():
    attempts = Attempts()
    with pytest.raises(errors.DriverTransientError):
        retry.call(failing(transient(), "ok"), policy=RetryPolicy(attempts=1), attempts=attempts)
    assert attempts.count == 1


def test_retry_call_emits_no_deprecation_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        retry.call(failing("ok"), policy=RetryPolicy(), attempts=Attempts())
    assert [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)] == []
