"""Every JSON output of the real commands validates against its schema in ``schemas/``.

validate → validate.schema.json; plan and show → plan.schema.json; apply → one
apply-event.schema.json object per line; state pull → state-export.schema.json;
state list / show / lock-info → state-list / state-record / state-lock.schema.json;
drivers → drivers.schema.json.
The commands run as processes on a copy of the quick start and on the every-rule
fixture, so the documents are the ones users get.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from tests.conftest import REPO

SCHEMAS = {
    path.name: json.loads(path.read_text(encoding="utf-8"))
    for path in (REPO / "schemas").glob("*.schema.json")
}
REGISTRY: Registry = Registry().with_resources(
    (doc["$id"], Resource.from_contents(doc)) for doc in SCHEMAS.values()
)


def check(name: str, document: Any) -> None:
    validator = Draft202012Validator(SCHEMAS[name], registry=REGISTRY)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []


@pytest.fixture
def quickstart(tmp_path) -> tuple[Path, Path]:
    """A copy of the quick start with its volumes under tmp, and a state path."""
    src = tmp_path / "quickstart"
    shutil.copytree(REPO / "examples" / "quickstart", src)
    runefile = src / "runefile.yaml"
    runefile.write_text(
        runefile.read_text(encoding="utf-8").replace(
            "/tmp/rune-sync-quickstart/volumes", str(tmp_path / "volumes")
        ),
        encoding="utf-8",
    )
    return src, tmp_path / "state.db"


@pytest.fixture
def applied(cli, quickstart) -> tuple[Path, Path]:
    src, state = quickstart
    result = cli("apply", str(src), "--state", str(state), "--auto-approve")
    assert result.code == 0, result.stderr
    return src, state


def test_validate_json_of_a_clean_source_is_an_empty_valid_list(cli, quickstart):
    result = cli("validate", str(quickstart[0]), "--format", "json")
    assert result.code == 0
    assert json.loads(result.stdout) == []
    check("validate.schema.json", [])


def test_validate_json_with_every_rule_broken_validates(cli):
    result = cli("validate", str(REPO / "tests" / "fixtures" / "every_rule"), "--format", "json")
    assert result.code == 1
    document = json.loads(result.stdout)
    check("validate.schema.json", document)
    assert {d["severity"] for d in document} == {"error", "warning"}
    assert len({d["code"] for d in document}) > 30


def test_validate_json_of_an_empty_source_validates(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    result = cli("validate", str(tmp_path / "empty"), "--format", "json")
    check("validate.schema.json", json.loads(result.stdout))


def test_plan_and_show_json_validate(cli, quickstart, tmp_path):
    src, state = quickstart
    saved = tmp_path / "plan.json"
    result = cli("plan", str(src), "--state", str(state), "--format", "json", "--out", str(saved))
    assert result.code == 0, result.stderr
    check("plan.schema.json", json.loads(result.stdout))
    check("plan.schema.json", json.loads(saved.read_text(encoding="utf-8")))
    shown = cli("show", str(saved), "--state", str(state), "--format", "json")
    assert shown.code == 0, shown.stderr
    check("plan.schema.json", json.loads(shown.stdout))


def test_apply_json_lines_each_validate(cli, quickstart):
    src, state = quickstart
    result = cli("apply", str(src), "--state", str(state), "--auto-approve", "--format", "json")
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    events = [json.loads(line) for line in lines]
    for event in events:
        check("apply-event.schema.json", event)
    assert events[0]["event"] == "plan" and events[-1]["event"] == "summary"
    assert {"start", "done"} <= {e["event"] for e in events}


def test_apply_json_of_a_failed_run_validates(cli, quickstart, tmp_path):
    src, state = quickstart
    blocker = tmp_path / "volumes"
    blocker.write_text("a file where the volume root should be\n", encoding="utf-8")
    result = cli("apply", str(src), "--state", str(state), "--auto-approve", "--format", "json")
    assert result.code == 1
    events = [json.loads(line) for line in result.stdout.splitlines()]
    for event in events:
        check("apply-event.schema.json", event)
    assert "failed" in {e["event"] for e in events}


def test_state_json_outputs_validate(cli, applied):
    _src, state = applied
    pulled = cli("state", "pull", "--state", str(state))
    check("state-export.schema.json", json.loads(pulled.stdout))
    listed = cli("state", "list", "--state", str(state), "--format", "json")
    records = json.loads(listed.stdout)
    assert len(records) == 7
    check("state-list.schema.json", records)
    shown = cli("state", "show", "volume/prod/web-data", "--state", str(state), "--format", "json")
    check("state-record.schema.json", json.loads(shown.stdout))
    lock = cli("state", "lock-info", "--state", str(state), "--format", "json")
    check("state-lock.schema.json", json.loads(lock.stdout))


def test_state_list_json_of_a_missing_state_is_an_empty_valid_list(cli, tmp_path):
    listed = cli("state", "list", "--state", str(tmp_path / "none.db"), "--format", "json")
    assert listed.code == 0
    assert json.loads(listed.stdout) == []
    check("state-list.schema.json", [])


def test_lock_info_json_names_the_holder_while_an_apply_holds_the_lock(cli, applied):
    from datetime import UTC, datetime

    from rune_sync.state.backend import open_backend
    from rune_sync.state.model import LockInfo

    _src, state = applied
    info = LockInfo.for_this_process(command="rune-sync apply (test holder)", now=datetime.now(UTC))
    with open_backend(str(state), create=False) as backend, backend.lock(info):
        lock = cli("state", "lock-info", "--state", str(state), "--format", "json")
    document = json.loads(lock.stdout)
    check("state-lock.schema.json", document)
    assert document["locked"] is True
    assert document["holder"]["command"] == "rune-sync apply (test holder)"


def test_drivers_json_validates(cli):
    result = cli("drivers", "--format", "json")
    assert result.code == 0
    document = json.loads(result.stdout)
    check("drivers.schema.json", document)
    assert {d["name"] for d in document} >= {"local", "local-host", "do-volume"}
