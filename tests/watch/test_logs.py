"""The watcher's log lines: text key=value or one JSON object per line."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime

from rune_sync.apply.events import Event, Phase
from rune_sync.plan.model import Action
from rune_sync.spec.model import Address
from rune_sync.watch.logs import Log
from rune_sync.watch.loop import CycleReport, CycleRequest, Finished, Request, Result, Trigger

NOW = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)


def done(result: Result = Result.OK, **report) -> Finished:
    return Finished(
        request=CycleRequest(
            triggers=(Request(trigger=Trigger.CHANGE, at=1.0),),
            refresh=False,
            stop=threading.Event(),
        ),
        report=CycleReport(result=result, **report),
        started=1.0,
        duration=0.1234,
        failures=0 if result is Result.OK else 1,
        retry_in=None if result is Result.OK else 1.0,
    )


def test_a_cycle_is_one_json_object_with_its_fields():
    out = io.StringIO()
    Log(out, fmt="json", clock=lambda: NOW).cycle(
        done(actions={"create": 2}, phases={"load": 0.01234, "plan": 0.2})
    )
    record = json.loads(out.getvalue())
    assert record == {
        "time": "2026-01-02T03:04:05.600Z",
        "level": "info",
        "event": "cycle",
        "trigger": "change",
        "commit": None,
        "refresh": False,
        "actions": {"create": 2},
        "duration_s": 0.123,
        "latency_s": 0.123,
        "phases_s": {"load": 0.012, "plan": 0.2},
        "result": "ok",
        "error": None,
        "failures": 0,
        "retry_in_s": None,
    }


def test_a_failed_cycle_in_text_quotes_its_error_and_lists_withheld_changes():
    out = io.StringIO()
    log = Log(out, fmt="text", clock=lambda: NOW)
    log.cycle(done(Result.ERROR, error='a.yaml:1:2: error[RS001] bad "x"', withheld=("w",)))
    first, second = out.getvalue().splitlines()
    assert first.startswith("2026-01-02T03:04:05.600Z error cycle trigger=change ")
    assert 'error="a.yaml:1:2: error[RS001] bad \\"x\\""' in first
    assert "result=error" in first and "retry_in_s=1" in first and "commit=" not in first
    assert second.endswith("warning withheld detail=w")


def test_apply_events_become_change_records_and_starts_are_dropped():
    out = io.StringIO()
    log = Log(out, fmt="json", clock=lambda: NOW)
    address = Address.parse("volume/prod/a")
    log.event(Event(phase=Phase.START, address=address, action=Action.CREATE))
    log.event(Event(phase=Phase.FAILED, address=address, action=Action.CREATE, message="no"))
    [record] = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (record["event"], record["level"], record["phase"]) == ("change", "error", "failed")
    assert record["address"] == "volume/prod/a" and record["message"] == "no"
