"""``apply --format json`` prints only JSON lines, each valid against
``schemas/apply-event.schema.json`` (the plan line against ``plan.schema.json``)."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from tests.plan import write_source

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def _validator() -> Draft202012Validator:
    loaded = {
        p.name: json.loads(p.read_text(encoding="utf-8")) for p in SCHEMAS.glob("*.schema.json")
    }
    registry: Registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in loaded.values()
    )
    return Draft202012Validator(loaded["apply-event.schema.json"], registry=registry)


def test_every_json_line_of_an_apply_is_a_documented_event(cli, tmp_path):
    root = tmp_path / "volumes"
    src = write_source(
        tmp_path / "src",
        {
            "runefile.yaml": f"storage:\n  localVolumeRoot: {root}\n",
            "v.yaml": """\
                volumes:
                  - {name: web, namespace: prod, size: 1Gi, accessMode: ReadWriteOnce}
                  - {name: db, namespace: prod, size: 2Gi, accessMode: ReadWriteOnce,
                     reclaimPolicy: delete}
                snapshot: {name: web-snap, namespace: prod, source: {volume: web}}
            """,
        },
    )
    state = tmp_path / "state.db"
    first = cli("apply", str(src), "--state", str(state), "--auto-approve", "--format", "json")
    assert first.code == 0, first.stderr
    (src / "v.yaml").write_text(
        "volume: {name: web, namespace: prod, size: 1Gi, accessMode: ReadWriteOnce}\n"
    )
    second = cli(
        "apply", str(src), "--state", str(state), "--auto-approve", "--format", "json",
        "--allow-destroy",
    )  # fmt: skip
    assert second.code == 0, second.stderr
    validator = _validator()
    for run in (first, second):
        lines = [json.loads(line) for line in run.stdout.splitlines()]
        for line in lines:
            problems = [e.message for e in validator.iter_errors(line)]
            assert problems == [], (line, problems)
        assert lines[0]["event"] == "plan"
        assert lines[-1]["event"] == "summary" and lines[-1]["ok"] is True
    events = {(e["event"], e["address"]) for e in map(json.loads, second.stdout.splitlines()[1:-1])}
    assert ("done", "volume/prod/db") in events
    assert any(kind == "note" and addr == "volume/prod/db" for kind, addr in events)
