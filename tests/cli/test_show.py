"""``rune-sync show FILE``: a saved plan rendered in every format, and judged fresh or stale.

Plans are made by the real ``rune-sync plan --out`` against real SQLite states; the
state is then moved on through the real backend (a serial bump, another lineage, gone).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rune_sync.plan.model import PLAN_VERSION
from rune_sync.state import open_backend
from tests.cli.test_plan_cli import VOLUMES, state_matching
from tests.conftest import Result
from tests.plan import LINEAGE, desired_from, records_for, write_source, write_state

OTHER_LINEAGE = "5d1f0c1e-7f0a-4a4b-8d7e-2b9f6a3c4e11"


@pytest.fixture
def saved(cli, tmp_path: Path) -> tuple[Path, Path]:
    """A plan saved against a real state (one label to update); returns (plan, state)."""
    source = write_source(tmp_path / "src", VOLUMES)
    state = state_matching(tmp_path, labels={"volume/prod/web": {"team": "old"}})
    out = tmp_path / "plan.json"
    made = cli("plan", str(source), "--state", str(state), "--refresh=false", "--out", str(out))
    assert made.code == 0, made.stderr
    return out, state


def serial_of(plan: Path) -> int:
    serial = json.loads(plan.read_text(encoding="utf-8"))["serial"]
    assert isinstance(serial, int)
    return serial


def show(cli, *args: str, env: dict[str, str] | None = None) -> Result:
    return cli("show", *args, env={"RUNE_SYNC_STATE": "", **(env or {})})


def test_show_renders_the_saved_plan_as_text_with_its_verdict(cli, saved):
    plan, _ = saved
    result = show(cli, str(plan))
    assert result.code == 0, result.stderr
    assert "~ volume/prod/web" in result.stdout
    assert "Plan: 0 to create, 1 to update, 0 to replace, 0 to destroy, 0 to forget." in (
        result.stdout
    )
    assert result.stdout.rstrip().endswith("No data will be destroyed.")
    assert f"state serial {serial_of(plan)}" in result.stdout
    assert "STALE" not in result.stdout  # without a state there is nothing to judge by


def test_show_json_is_the_saved_document(cli, saved):
    plan, _ = saved
    result = show(cli, str(plan), "--format", "json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(plan.read_text(encoding="utf-8"))


def test_show_markdown_collapses_details(cli, saved):
    plan, _ = saved
    result = show(cli, str(plan), "--format", "markdown")
    assert result.code == 0, result.stderr
    assert "<details>" in result.stdout
    assert "volume/prod/web" in result.stdout


def test_show_against_the_unchanged_state_says_it_is_fresh(cli, saved):
    plan, state = saved
    result = show(cli, str(plan), "--state", str(state))
    assert result.code == 0, result.stderr
    assert "The state has not moved since this plan was made." in result.stdout


def test_show_after_the_state_moved_on_says_stale_and_still_exits_0(cli, saved):
    plan, state = saved
    with open_backend(state, create=False) as backend:
        backend.bump_serial()
    result = show(cli, str(plan), "--state", str(state))
    assert result.code == 0, result.stderr
    was = serial_of(plan)
    assert f"This plan is STALE: the state moved on since (serial {was} → {was + 1})." in (
        result.stdout
    )
    assert "`rune-sync apply` will refuse it" in result.stdout
    assert "~ volume/prod/web" in result.stdout  # still rendered in full


def test_show_judges_by_the_state_named_in_rune_sync_state(cli, saved):
    plan, state = saved
    with open_backend(state, create=False) as backend:
        backend.bump_serial()
    result = show(cli, str(plan), env={"RUNE_SYNC_STATE": str(state)})
    assert result.code == 0, result.stderr
    assert "STALE: the state moved on" in result.stdout


def test_show_against_another_state_names_both_lineages(cli, saved, tmp_path):
    plan, _ = saved
    records = records_for(desired_from(tmp_path / "other-src", VOLUMES)).values()
    other = write_state(tmp_path / "other.db", records, lineage=OTHER_LINEAGE)
    result = show(cli, str(plan), "--state", str(other))
    assert result.code == 0, result.stderr
    assert (
        f"made for another state (lineage {LINEAGE}, this state is {OTHER_LINEAGE})"
        in result.stdout
    )


def test_show_when_the_state_does_not_exist_says_so_and_exits_0(cli, saved, tmp_path):
    plan, _ = saved
    absent = tmp_path / "nowhere" / "state.db"
    result = show(cli, str(plan), "--state", str(absent))
    assert result.code == 0, result.stderr
    assert "STALE: the state it was made from does not exist here" in result.stdout
    assert not absent.exists()  # show never creates a state


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x89PNG\r\n", "is not a rune-sync plan (not JSON)"),
        (b'{"format": "terraform-plan"}', "is not a rune-sync plan"),
        (b"[1, 2]", "is not a rune-sync plan"),
        (
            b'{"format": "rune-sync-plan", "version": 1, "changes": 7}',
            "is a damaged rune-sync plan",
        ),
    ],
)
def test_show_of_something_that_is_not_a_plan_exits_1(cli, tmp_path, content, message):
    bogus = tmp_path / "bogus.json"
    bogus.write_bytes(content)
    result = show(cli, str(bogus))
    assert result.code == 1
    assert message in result.stderr
    assert str(bogus) in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_show_of_a_plan_from_a_newer_rune_sync_exits_1(cli, saved):
    plan, _ = saved
    data = json.loads(plan.read_text(encoding="utf-8"))
    data["version"] = PLAN_VERSION + 1
    plan.write_text(json.dumps(data), encoding="utf-8")
    result = show(cli, str(plan))
    assert result.code == 1
    assert f"written by a newer rune-sync (plan format {PLAN_VERSION + 1}" in result.stderr


def test_show_of_a_missing_file_exits_1_and_without_file_64(cli, tmp_path):
    missing = show(cli, str(tmp_path / "absent.json"))
    assert missing.code == 1
    assert f"cannot read {tmp_path / 'absent.json'}" in missing.stderr
    assert show(cli).code == 64
