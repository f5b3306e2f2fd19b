"""Saved plans: atomic private writes, refusals on load, and the freshness verdict."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from rune_sync.errors import PlanError, StalePlanError
from rune_sync.plan import planfile
from rune_sync.plan.model import Plan

LINEAGE = "0b7c3a52-1d4e-4f7a-9a52-4f3b2b1c0d9e"
SAVED = Plan(changes=(), lineage=LINEAGE, serial=7, input_digest="sha256:aaa")


@pytest.mark.parametrize(
    ("lineage", "serial", "digest", "why"),
    [
        (LINEAGE, 7, "sha256:aaa", ""),
        (LINEAGE, 7, None, ""),
        (LINEAGE, 8, "sha256:aaa", "the state moved on since (serial 7 → 8)"),
        ("other", 7, "sha256:aaa", f"made for another state (lineage {LINEAGE}"),
        (None, None, "sha256:aaa", "the state it was made from does not exist here"),
        (LINEAGE, 7, "sha256:bbb", "the source changed since the plan was made"),
    ],
)
def test_freshness(lineage, serial, digest, why):
    verdict = planfile.freshness(SAVED, lineage=lineage, serial=serial, input_digest=digest)
    assert verdict.stale is bool(why)
    assert why in verdict.why
    if why:
        with pytest.raises(StalePlanError, match="stale"):
            planfile.require_fresh(SAVED, lineage=lineage, serial=serial, input_digest=digest)
    else:
        planfile.require_fresh(SAVED, lineage=lineage, serial=serial, input_digest=digest)


def test_a_plan_made_without_a_state_is_fresh_while_there_is_none():
    fresh = Plan(changes=())
    assert not planfile.freshness(fresh, lineage=None, serial=None, input_digest=None).stale
    assert planfile.freshness(fresh, lineage=LINEAGE, serial=1, input_digest=None).stale


def test_a_plan_made_without_a_state_is_stale_once_the_source_changed_though_none_exists():
    made = Plan(changes=(), input_digest="sha256:aaa")
    verdict = planfile.freshness(made, lineage=None, serial=None, input_digest="sha256:bbb")
    assert verdict.stale
    assert verdict.why == "the source changed since the plan was made"
    assert not planfile.freshness(made, lineage=None, serial=None, input_digest="sha256:aaa").stale


def test_save_is_private_and_round_trips(tmp_path: Path):
    path = tmp_path / "p.json"
    planfile.save(SAVED, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert planfile.load(path) == SAVED
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]


def test_save_into_a_missing_directory_is_a_plan_error(tmp_path: Path):
    with pytest.raises(PlanError, match="cannot write the plan to"):
        planfile.save(SAVED, tmp_path / "absent" / "p.json")
