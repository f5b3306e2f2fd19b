"""What a running watcher exposes: Prometheus metrics and its health.

Both are observers of finished cycles (:class:`~rune_sync.watch.loop.Finished`) and are
read by the HTTP server's threads. Metrics live in a registry of their own (never
prometheus_client's global one). Health: "starting" until the first cycle ends, then
healthy while the last cycle succeeded or the loop is retrying fewer than
``unhealthy_after`` consecutive failed cycles; stalled (HTTP 503) from that many on,
until a cycle succeeds again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from rune_sync.watch.loop import Finished, Result

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The classic text exposition format, which ``generate_latest`` writes."""

_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)


class Metrics:
    """The watcher's Prometheus metrics (names in the README's ``Watch`` section)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, resident memory, fds
        self.cycles = Counter(
            "rune_sync_watch_cycles", "Reconcile cycles by result.", ["result"], registry=r
        )
        self.actions = Counter(
            "rune_sync_watch_actions",
            "Changes by action and outcome (done, failed, skipped, withheld).",
            ["action", "outcome"],
            registry=r,
        )
        self.last_success = Gauge(
            "rune_sync_watch_last_success_timestamp_seconds",
            "Unix time the last successful cycle ended (0: none yet).",
            registry=r,
        )
        self.failures = Gauge(
            "rune_sync_watch_consecutive_failures",
            "Failed cycles in a row (0 after a success).",
            registry=r,
        )
        self.resources = Gauge(
            "rune_sync_resources",
            "State records by kind and status after the last cycle that read them.",
            ["kind", "status"],
            registry=r,
        )
        self.cycle_seconds = Histogram(
            "rune_sync_watch_cycle_duration_seconds",
            "Duration of a whole cycle (load, plan, apply).",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.apply_seconds = Histogram(
            "rune_sync_watch_apply_duration_seconds",
            "Duration of the apply phase of cycles that had changes to carry out.",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "rune_sync_watch_change_to_applied_seconds",
            "From a change detected (files, webhook) to its cycle applied.",
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.webhooks = Counter(
            "rune_sync_watch_webhook_requests",
            "Webhook deliveries by outcome (accepted, rejected).",
            ["outcome"],
            registry=r,
        )
        self.polls = Counter(
            "rune_sync_watch_git_polls",
            "Polls of a git source's ref by outcome (unchanged, moved, unreachable).",
            ["outcome"],
            registry=r,
        )
        self.healthy = Gauge(
            "rune_sync_watch_healthy", "1 unless the watcher is stalled.", registry=r
        )
        self.healthy.set(1)
        for result in Result:
            self.cycles.labels(result=result.value)
        for outcome in ("accepted", "rejected"):
            self.webhooks.labels(outcome=outcome)

    def count_poll(self, outcome: str) -> None:
        """One poll of a git source (a trigger thread calls it)."""
        self.polls.labels(outcome=outcome).inc()

    def observe(self, done: Finished, *, now: float, healthy: bool) -> None:
        """Record a finished cycle; ``now`` is Unix time."""
        report = done.report
        self.cycles.labels(result=report.result.value).inc()
        self.cycle_seconds.observe(done.duration)
        if "apply" in report.phases:
            self.apply_seconds.observe(report.phases["apply"])
        self.failures.set(done.failures)
        self.healthy.set(1 if healthy else 0)
        for key, count in report.actions.items():
            action, _, outcome = key.partition(":")
            self.actions.labels(action=action, outcome=outcome or "done").inc(count)
        if report.result is Result.OK:
            self.last_success.set(now)
        if done.latency is not None:
            self.latency.observe(done.latency)
        if report.statuses is not None:
            self.resources.clear()
            for (kind, status), count in sorted(report.statuses.items()):
                self.resources.labels(kind=kind, status=status).set(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthView:
    ok: bool
    state: str
    """``starting``, ``ok``, ``retrying`` or ``stalled``."""
    failures: int
    last_error: str | None


class Health:
    """Healthy or stalled, from the cycles seen so far (thread-safe)."""

    def __init__(self, *, unhealthy_after: int) -> None:
        if unhealthy_after < 1:
            raise ValueError("unhealthy_after must be at least 1")
        self._limit = unhealthy_after
        self._lock = threading.Lock()
        self._seen = False
        self._failures = 0
        self._last_error: str | None = None

    def observe(self, done: Finished) -> None:
        with self._lock:
            self._seen = True
            self._failures = done.failures
            self._last_error = done.report.error if done.failures else None

    def view(self) -> HealthView:
        with self._lock:
            if not self._seen:
                state = "starting"
            elif self._failures == 0:
                state = "ok"
            elif self._failures < self._limit:
                state = "retrying"
            else:
                state = "stalled"
            return HealthView(
                ok=state != "stalled",
                state=state,
                failures=self._failures,
                last_error=self._last_error,
            )
