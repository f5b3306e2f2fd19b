"""The GitHub workflows: the project's CI and the users' example, read and run.

Both files are parsed with ruamel.yaml and checked for their triggers, the commands they
run and how they treat exit codes; every ``rune-sync`` invocation in them must use flags
the CLI really has. The example's shell steps (plan, verdict, apply) are then run for
real with bash against a copy of the quick start, so the exit-code handling is proved,
not just read. ``actions/*`` steps and ``gh`` cannot run here (no GitHub).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO
from tests.examples import cli_flags

CI = REPO / ".github" / "workflows" / "ci.yml"
EXAMPLE = REPO / "examples" / "github-actions" / "rune-sync.yml"
MARKER = "<!-- rune-sync-plan -->"


def _load(path: Path) -> dict[str, Any]:
    data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    return list(workflow["jobs"][job]["steps"])


def _step(workflow: dict[str, Any], job: str, name: str) -> dict[str, Any]:
    matches = [s for s in _steps(workflow, job) if s.get("name") == name]
    assert len(matches) == 1, f"{job} has no single step named {name!r}"
    return matches[0]


def _scripts(workflow: dict[str, Any]) -> list[str]:
    return [
        step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step
    ]


@pytest.mark.parametrize("path", [CI, EXAMPLE], ids=["ci", "example"])
def test_every_rune_sync_invocation_uses_real_commands_and_flags(path):
    found = [i for script in _scripts(_load(path)) for i in cli_flags.invocations(script)]
    if path == EXAMPLE:
        assert len(found) >= 4
    assert [p for i in found for p in cli_flags.problems(i)] == []


def test_the_flag_check_catches_a_misspelt_flag_and_command():
    bad = cli_flags.invocations("rune-sync plan . --detailed-exit-code\nrune-sync aply .")
    assert [p.split(": ", 1)[1] for i in bad for p in cli_flags.problems(i)] == [
        "--detailed-exit-code is not an option of this command",
        "no such command",
    ]


def test_ci_runs_lint_types_tests_and_the_benchmark_as_separate_steps_with_pip_cache():
    ci = _load(CI)
    assert set(ci["on"]) == {"push", "pull_request"}
    assert ci["on"]["push"]["branches"] == ["main"]
    steps = _steps(ci, "test")
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert python["with"]["cache"] == "pip"
    runs = [s.get("run", "") for s in steps]
    order = [
        next(i for i, r in enumerate(runs) if needle in r)
        for needle in ("pip install", "ruff check .", "mypy", ".ci/run", "bench.bench_validate")
    ]
    assert order == sorted(order) and len(set(order)) == 5
    assert all(s.get("name") for s in steps if "run" in s)


def test_example_plans_on_pull_requests_and_applies_on_push_to_main():
    wf = _load(EXAMPLE)
    assert set(wf["on"]) == {"pull_request", "push"}
    assert wf["on"]["push"]["branches"] == ["main"]
    plan, apply = wf["jobs"]["plan"], wf["jobs"]["apply"]
    assert "pull_request" in plan["if"] and "push" in apply["if"]
    assert plan["permissions"]["pull-requests"] == "write"
    assert wf["permissions"] == {"contents": "read"}
    assert apply["concurrency"] == {"group": "rune-sync-apply", "cancel-in-progress": False}
    assert wf["env"]["RUNE_SYNC_STATE"] == "${{ secrets.RUNE_SYNC_STATE }}"
    assert wf["env"]["RUNE_SECRET_SHARED_DO_API_TOKEN_TOKEN"].startswith("${{ secrets.")


def test_example_plan_step_runs_validate_then_a_markdown_plan_and_posts_by_marker():
    wf = _load(EXAMPLE)
    names = [s.get("name") for s in _steps(wf, "plan")]
    assert names.index("Validate") < names.index("Plan")
    plan = _step(wf, "plan", "Plan")["run"]
    words = next(i.words for i in cli_flags.invocations(plan))
    assert words[0] == "plan"
    assert {"--format", "markdown", "--detailed-exitcode", "--out"} <= set(words)
    post = _step(wf, "plan", "Post the plan as the pull request's comment")
    assert post["uses"].startswith("actions/github-script@")
    script = post["with"]["script"]
    assert MARKER in script and "updateComment" in script and "createComment" in script
    upload = _step(wf, "plan", "Save the plan for the apply on merge")
    assert upload["uses"].startswith("actions/upload-artifact@")


def test_example_apply_step_uses_the_saved_plan_and_falls_back_only_when_stale():
    script = _step(_load(EXAMPLE), "apply", "Apply")["run"]
    words = [i.words for i in cli_flags.invocations(script)]
    assert words == [
        ("apply", "rune-sync-plan/rune-sync.plan", "--auto-approve"),
        ("apply", "$RUNE_SYNC_SOURCE", "--auto-approve"),
    ]
    assert "4)" in script


# --- the example's shell steps, run for real -------------------------------------------


@pytest.fixture
def runner(tmp_path):
    """A workspace like a runner's: the quick start as `storage/`, a state, GitHub's env."""
    work = tmp_path / "work"
    shutil.copytree(REPO / "examples" / "quickstart", work / "storage")
    runefile = work / "storage" / "runefile.yaml"
    runefile.write_text(
        runefile.read_text(encoding="utf-8").replace(
            "/tmp/rune-sync-quickstart/volumes", str(tmp_path / "volumes")
        ),
        encoding="utf-8",
    )
    output = tmp_path / "github_output"
    output.touch()
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "RUNE_SYNC_SOURCE": "storage",
        "RUNE_SYNC_STATE": str(tmp_path / "state.db"),
        "NO_COLOR": "1",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_SHA": "0123456789abcdef0123",
        "GITHUB_RUN_ID": "42",
    }
    assert shutil.which("rune-sync", path=env["PATH"]), "the rune-sync script is installed"

    def run(step: str, *, job: str, extra: dict[str, str] | None = None):
        script = _step(_load(EXAMPLE), job, step)["run"]
        return subprocess.run(
            ["bash", "-e", "-c", script],
            cwd=work,
            env={**env, **(extra or {})},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return work, output, tmp_path / "state.db", run


def _records(state: Path) -> int:
    with sqlite3.connect(state) as db:
        return int(db.execute("select count(*) from records").fetchone()[0])


def test_plan_step_records_exit_2_and_writes_the_marked_comment_and_the_plan(runner):
    work, output, _state, run = runner
    done = run("Plan", job="plan")
    assert done.returncode == 0, done.stderr
    assert "exitcode=2" in output.read_text(encoding="utf-8")
    comment = (work / "comment.md").read_text(encoding="utf-8")
    assert comment.startswith(MARKER + "\n### rune-sync plan")
    assert "**Plan: 7 to create" in comment and "0123456789ab" in comment
    assert (work / "rune-sync.plan").is_file()


def test_plan_step_puts_the_error_in_the_comment_on_exit_1(runner):
    work, output, _state, run = runner
    (work / "storage" / "broken.yaml").write_text("volume: {name: x}\n", encoding="utf-8")
    done = run("Plan", job="plan")
    assert done.returncode == 0
    assert "exitcode=1" in output.read_text(encoding="utf-8")
    comment = (work / "comment.md").read_text(encoding="utf-8")
    assert "### rune-sync plan failed" in comment and "broken.yaml" in comment


@pytest.mark.parametrize(
    ("code", "fails", "says"),
    [
        ("0", False, "No changes."),
        ("2", False, "Changes, no data destroyed."),
        ("3", True, "::error title=rune-sync::this plan destroys data"),
        ("1", True, "::error title=rune-sync::rune-sync plan failed (exit 1)"),
    ],
)
def test_verdict_fails_the_check_on_data_loss_and_on_errors(runner, code, fails, says):
    _work, _output, _state, run = runner
    done = run("Verdict", job="plan", extra={"PLAN_EXITCODE": code})
    assert (done.returncode != 0) is fails
    assert says in done.stdout


def _saved_plan(work: Path, run) -> Path:
    assert run("Plan", job="plan").returncode == 0
    folder = work / "rune-sync-plan"
    folder.mkdir()
    return (work / "rune-sync.plan").rename(folder / "rune-sync.plan")


def test_apply_step_applies_a_fresh_saved_plan(runner):
    work, _output, state, run = runner
    _saved_plan(work, run)
    done = run("Apply", job="apply")
    assert done.returncode == 0, done.stderr
    assert "Apply complete: 7 created" in done.stdout
    assert "stale" not in done.stdout + done.stderr
    assert _records(state) == 7


def test_apply_step_plans_the_source_again_when_the_saved_plan_is_stale(runner):
    work, _output, state, run = runner
    _saved_plan(work, run)
    (work / "storage" / "volumes" / "logs.yaml").write_text(  # main moved on since the PR
        "volume: {name: logs, namespace: prod, size: 1Gi, accessMode: ReadWriteOnce}\n",
        encoding="utf-8",
    )
    done = run("Apply", job="apply")
    assert done.returncode == 0, done.stderr
    assert "::notice title=rune-sync::the saved plan is stale" in done.stdout
    assert "the source changed since the plan was made" in done.stderr
    assert _records(state) == 8  # main's source: the quick start and prod/logs


def test_apply_step_fails_without_falling_back_when_apply_fails(runner):
    work, _output, state, run = runner
    folder = work / "rune-sync-plan"
    folder.mkdir()
    (folder / "rune-sync.plan").write_text("not a plan\n", encoding="utf-8")
    done = run("Apply", job="apply")
    assert done.returncode == 1
    assert "is not a rune-sync plan" in done.stderr
    assert not state.exists()  # the source was not applied instead


def test_apply_step_without_a_saved_plan_applies_the_source(runner):
    _work, _output, state, run = runner
    done = run("Apply", job="apply")
    assert done.returncode == 0, done.stderr
    assert _records(state) == 7
