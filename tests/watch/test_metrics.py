"""Metrics and health as observers of finished cycles; the exposition parses."""

from __future__ import annotations

import threading

from prometheus_client.parser import text_string_to_metric_families

from rune_sync.watch.loop import CycleReport, CycleRequest, Finished, Request, Result, Trigger
from rune_sync.watch.metrics import Health, Metrics


def finished(
    *,
    failures: int = 0,
    error: str | None = None,
    result: Result | None = None,
    actions: dict[str, int] | None = None,
    statuses: dict[tuple[str, str], int] | None = None,
    triggers: tuple[Request, ...] = (),
    phases: dict[str, float] | None = None,
) -> Finished:
    outcome = result or (Result.ERROR if failures else Result.OK)
    return Finished(
        request=CycleRequest(triggers=triggers, refresh=False, stop=threading.Event()),
        report=CycleReport(
            result=outcome,
            error=error,
            actions=actions or {},
            statuses=statuses,
            phases=phases or {},
        ),
        started=100.0,
        duration=0.25,
        failures=failures,
        retry_in=None,
    )


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_a_cycle_is_counted_with_its_actions_resources_and_latency():
    metrics = Metrics()
    done = finished(
        actions={"create": 3, "update": 1, "destroy:withheld": 1, "create:failed": 2},
        statuses={("volume", "Available"): 4, ("volume", "retained"): 1},
        triggers=(Request(trigger=Trigger.CHANGE, at=99.5),),
        phases={"load": 0.1, "apply": 0.125},
    )
    metrics.observe(done, now=1_700_000_000.0, healthy=True)
    metrics.observe(finished(), now=1_700_000_001.0, healthy=True)
    got = samples(metrics)
    assert got[("rune_sync_watch_cycles_total", (("result", "ok"),))] == 2
    assert got[("rune_sync_watch_cycles_total", (("result", "error"),))] == 0
    actions = "rune_sync_watch_actions_total"
    assert got[(actions, (("action", "create"), ("outcome", "done")))] == 3
    assert got[(actions, (("action", "destroy"), ("outcome", "withheld")))] == 1
    assert got[(actions, (("action", "create"), ("outcome", "failed")))] == 2
    assert got[("rune_sync_resources", (("kind", "volume"), ("status", "Available")))] == 4
    assert got[("rune_sync_watch_last_success_timestamp_seconds", ())] == 1_700_000_001.0
    assert got[("rune_sync_watch_apply_duration_seconds_count", ())] == 1
    assert got[("rune_sync_watch_apply_duration_seconds_sum", ())] == 0.125
    assert got[("rune_sync_watch_change_to_applied_seconds_count", ())] == 1
    assert got[("rune_sync_watch_change_to_applied_seconds_sum", ())] == 0.75
    assert got[("rune_sync_watch_cycle_duration_seconds_count", ())] == 2
    assert got[("rune_sync_watch_healthy", ())] == 1
    assert got[("process_cpu_seconds_total", ())] > 0


def test_resources_are_replaced_not_accumulated_and_failures_keep_last_success():
    metrics = Metrics()
    metrics.observe(finished(statuses={("volume", "Failed"): 1}), now=10.0, healthy=True)
    metrics.observe(finished(statuses={("volume", "Available"): 1}), now=20.0, healthy=True)
    metrics.observe(finished(failures=1, error="x"), now=30.0, healthy=True)
    got = samples(metrics)
    assert ("rune_sync_resources", (("kind", "volume"), ("status", "Failed"))) not in got
    assert got[("rune_sync_watch_last_success_timestamp_seconds", ())] == 20.0
    assert got[("rune_sync_watch_consecutive_failures", ())] == 1


def test_health_is_stalled_from_the_configured_count_of_failures():
    health = Health(unhealthy_after=3)
    assert health.view().state == "starting" and health.view().ok
    for failures, state in ((1, "retrying"), (2, "retrying"), (3, "stalled"), (0, "ok")):
        health.observe(finished(failures=failures, error="e" if failures else None))
        assert health.view().state == state
        assert health.view().ok is (state != "stalled")
