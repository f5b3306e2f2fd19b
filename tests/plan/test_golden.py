"""Golden plans: each directory below ``tests/fixtures/plan/`` is one case, run through the
real ``rune-sync`` entry point in a subprocess. A new case needs files, not code.

A case directory holds:

- ``specs/`` — the source (YAML and a runefile); copied to a temporary directory and
  planned from there as ``specs``;
- ``state.json`` (optional) — a state export document (``state pull`` format), loaded
  into a fresh SQLite state with ``state.export.push``; without it there is no state;
- ``args.txt`` (optional) — extra command-line flags, one per line;
- ``plan.txt`` — the expected stdout of
  ``rune-sync plan specs --state <tmp state> --refresh=false --no-color [args]``;
- ``plan.json`` (optional) — the expected stdout of the same run with ``--format json``;
  the volatile fields (``lineage``, ``inputDigest``, ``source.url``, ``source.digest``,
  ``toolVersion``) are normalised to placeholders before comparing;
- ``exitcode.txt`` (optional) — the expected exit code of both runs (default 0);
- ``stderr.txt`` (optional) — the expected stderr of the text run (the temporary
  directory written as ``<tmp>``);
- ``xfail.txt`` (optional) — lines ``text: BUG: …`` or ``json: BUG: …`` marking a known
  bug: that run is a strict xfail, and its expected file describes the correct output.

To regenerate the expected files from the current behaviour, run::

    RUNE_SYNC_UPDATE_GOLDEN=1 pytest tests/plan/test_golden.py

which rewrites ``plan.txt``, ``plan.json`` (only where it exists), ``exitcode.txt`` and
``stderr.txt`` (only where it exists, or when the run wrote to stderr). Runs listed in
``xfail.txt`` are never rewritten. Review the diff before committing: a golden file is
a statement of what the plan *should* say.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from rune_sync.state import export
from tests.conftest import Result, run_cli
from tests.plan import write_state

CASES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "plan"
UPDATE = os.environ.get("RUNE_SYNC_UPDATE_GOLDEN") == "1"
VOLATILE = ("lineage", "inputDigest", "toolVersion")
PLACEHOLDER = "<volatile>"


def _xfails(case: Path) -> dict[str, str]:
    path = case / "xfail.txt"
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            fmt, _, reason = line.partition(":")
            out[fmt.strip()] = reason.strip()
    return out


def _params() -> list[Any]:
    params = []
    for case in sorted(p for p in CASES_DIR.iterdir() if p.is_dir()):
        xfails = _xfails(case)
        formats = ["text"] + (["json"] if (case / "plan.json").exists() else [])
        for fmt in formats:
            marks = []
            if fmt in xfails:
                marks.append(pytest.mark.xfail(strict=True, reason=xfails[fmt]))
            params.append(pytest.param(case, fmt, marks=marks, id=f"{case.name}-{fmt}"))
    return params


def normalise(document: dict[str, Any]) -> dict[str, Any]:
    """The plan JSON with the fields that differ between runs replaced by a placeholder."""
    out = dict(document)
    for key in VOLATILE:
        if out.get(key) is not None:
            out[key] = PLACEHOLDER
    if isinstance(out.get("source"), dict):
        out["source"] = {**out["source"], "url": PLACEHOLDER, "digest": PLACEHOLDER}
    return out


def run_case(case: Path, tmp_path: Path, fmt: str) -> Result:
    specs = shutil.copytree(case / "specs", tmp_path / "specs")
    state = tmp_path / "state" / "state.db"
    if (case / "state.json").exists():
        document = export.parse(json.loads((case / "state.json").read_text(encoding="utf-8")))
        state.parent.mkdir()
        write_state(state, document.records, lineage=document.lineage, serial=document.serial)
    args_file = case / "args.txt"
    extra = args_file.read_text(encoding="utf-8").split() if args_file.exists() else []
    fmt_args = ["--format", "json"] if fmt == "json" else []
    result = run_cli(
        "plan",
        specs.name,
        "--state",
        str(state),
        "--refresh=false",
        "--no-color",
        *fmt_args,
        *extra,
        cwd=tmp_path,
        env={"TMPDIR": str(tmp_path)},  # internal-error logs stay in the test's directory
    )
    assert not (tmp_path / ".rune-sync").exists(), "plan must not create a state"
    return result


def _update(case: Path, fmt: str, result: Result, tmp_path: Path) -> None:
    if fmt == "json":
        document = normalise(json.loads(result.stdout))
        (case / "plan.json").write_text(json.dumps(document, indent=2) + "\n", "utf-8")
        return
    (case / "plan.txt").write_text(result.stdout, encoding="utf-8")
    code_file = case / "exitcode.txt"
    if result.code:
        code_file.write_text(f"{result.code}\n", encoding="utf-8")
    elif code_file.exists():
        code_file.unlink()
    stderr_file = case / "stderr.txt"
    if result.stderr or stderr_file.exists():
        stderr_file.write_text(result.stderr.replace(str(tmp_path), "<tmp>"), "utf-8")


@pytest.mark.parametrize(("case", "fmt"), _params())
def test_golden_plan(case: Path, fmt: str, tmp_path: Path):
    result = run_case(case, tmp_path, fmt)
    if UPDATE and fmt not in _xfails(case):
        _update(case, fmt, result, tmp_path)
    code_file = case / "exitcode.txt"
    expected_code = int(code_file.read_text()) if code_file.exists() else 0
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr, result.stderr
    if fmt == "json":
        expected = json.loads((case / "plan.json").read_text(encoding="utf-8"))
        assert normalise(json.loads(result.stdout)) == expected
    else:
        assert result.stdout == (case / "plan.txt").read_text(encoding="utf-8")
        stderr_file = case / "stderr.txt"
        if stderr_file.exists():
            expected_err = stderr_file.read_text(encoding="utf-8")
            assert result.stderr.replace(str(tmp_path), "<tmp>") == expected_err
    assert result.code == expected_code, result.stderr


def test_every_case_is_complete():
    cases = sorted(p for p in CASES_DIR.iterdir() if p.is_dir())
    assert len(cases) >= 8
    for case in cases:
        assert (case / "specs").is_dir(), case.name
        assert (case / "plan.txt").is_file(), case.name
        assert set(_xfails(case)) <= {"text", "json"}, case.name
