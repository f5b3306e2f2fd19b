"""Saved plans: write a plan to a file, read it back, and tell whether it is still good.

A plan file is the plan's JSON form (``format``, ``version``, the state's lineage and
serial, the input digest, the options and every change with before/after — secret
references only). Writing is atomic (temporary file, then rename). Reading refuses
anything that is not a plan, and plans written by a newer rune-sync.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rune_sync.errors import PlanError, StalePlanError
from rune_sync.plan.model import PLAN_FORMAT, PLAN_VERSION, Plan


def save(plan: Plan, path: Path) -> None:
    """Write ``plan`` to ``path`` atomically, readable by the owner only."""
    text = json.dumps(plan.to_json(), indent=2, sort_keys=False) + "\n"
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        raise PlanError(f"cannot write the plan to {path}: {exc.strerror or exc}") from None


def load(path: Path) -> Plan:
    """Read a saved plan; a PlanError says why ``path`` is not one."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PlanError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise PlanError(f"{path} is not a rune-sync plan (not JSON)") from None
    if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
        raise PlanError(f"{path} is not a rune-sync plan")
    version = data.get("version")
    if not isinstance(version, int) or version > PLAN_VERSION:
        raise PlanError(
            f"{path} was written by a newer rune-sync (plan format {version}; this one reads "
            f"up to {PLAN_VERSION}): upgrade rune-sync or make the plan again"
        )
    try:
        return Plan.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanError(f"{path} is a damaged rune-sync plan: {exc}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class Freshness:
    """Whether a saved plan still matches the state and the source; ``why`` if not."""

    stale: bool
    why: str = ""


def freshness(
    plan: Plan, *, lineage: str | None, serial: int | None, input_digest: str | None
) -> Freshness:
    """Compare a plan with the state it was made from and the current inputs."""
    if lineage is None:
        if plan.lineage is not None:
            return Freshness(stale=True, why="the state it was made from does not exist here")
    elif plan.lineage is not None and plan.lineage != lineage:
        return Freshness(
            stale=True,
            why=f"it was made for another state (lineage {plan.lineage}, this state is {lineage})",
        )
    if serial is not None and plan.serial != serial:
        return Freshness(
            stale=True, why=f"the state moved on since (serial {plan.serial} → {serial})"
        )
    if input_digest is not None and plan.input_digest and plan.input_digest != input_digest:
        return Freshness(stale=True, why="the source changed since the plan was made")
    return Freshness(stale=False)


def require_fresh(plan: Plan, **current: Any) -> None:
    verdict = freshness(plan, **current)
    if verdict.stale:
        raise StalePlanError(f"the saved plan is stale: {verdict.why}; make a new plan")
