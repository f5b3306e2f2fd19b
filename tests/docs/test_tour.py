"""The README's five-minute tour, run as written.

The section is read in order: each ``$`` line of a console block runs in bash (with the
installed ``rune-sync`` first on ``PATH``) in a copy of the repository's quick start;
"Change `A` to `B` in `FILE`" edits a file; "Append to `FILE`:" followed by a YAML block
appends it. Every line the README shows for a command must appear in what the command
printed (stdout and stderr), in that order — ``…`` lines stand for lines left out,
whitespace runs count as one space, and timings are ignored. The quick start's volume
root is moved below a temporary directory; the README's paths are read with that move.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

ROOT = "/tmp/rune-sync-quickstart/volumes"
ELIDED = "…"


@dataclass(frozen=True)
class Run:
    command: str
    shown: tuple[str, ...]


@dataclass(frozen=True)
class Change:
    file: str
    old: str
    new: str


@dataclass(frozen=True)
class Append:
    file: str
    text: str


def _tour() -> list[Run | Change | Append]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start = readme.index("\n## Five-minute tour\n")
    section = readme[start : readme.index("\n## ", start + 1)]
    patterns = {
        "console": r"```console\n(?P<console>.*?)```",
        "change": r"Change `(?P<old>[^`]+)` to `(?P<new>[^`]+)` in\s+`(?P<cfile>[^`]+)`",
        "append": r"Append to\s+`(?P<afile>[^`]+)`:\n\n```yaml\n(?P<yaml>.*?)```",
    }
    steps: list[Run | Change | Append] = []
    for match in re.finditer("|".join(patterns.values()), section, re.S):
        if match["console"] is not None:
            command, shown = None, []
            for line in match["console"].splitlines():
                if line.startswith("$ "):
                    if command is not None:
                        steps.append(Run(command, tuple(shown)))
                    command, shown = line[2:], []
                else:
                    shown.append(line)
            assert command is not None
            steps.append(Run(command, tuple(shown)))
        elif match["old"] is not None:
            steps.append(Change(match["cfile"], match["old"], match["new"]))
        else:
            steps.append(Append(match["afile"], match["yaml"]))
    return steps


def _normal(line: str) -> str:
    return " ".join(re.sub(r"\[\d+\.\d+s\]", "", line).split())


def _in_order(shown: tuple[str, ...], printed: list[str]) -> list[str]:
    """The shown lines that are not found, in order, in the printed ones."""
    rest = iter(_normal(line) for line in printed)
    return [line for line in shown if line != ELIDED and _normal(line) not in rest]


def test_the_tour_covers_validate_plan_apply_change_snapshot_restore():
    steps = _tour()
    verbs = [s.command.split()[1] for s in steps if isinstance(s, Run) and "rune-sync" in s.command]
    assert verbs[:3] == ["validate", "plan", "apply"]
    assert any(isinstance(s, Change) for s in steps)
    appended = "".join(s.text for s in steps if isinstance(s, Append))
    assert "snapshot:" in appended and "restoreFrom:" in appended


def test_the_tour_runs_as_written(tmp_path):
    work = tmp_path / "checkout"
    shutil.copytree(REPO / "examples" / "quickstart", work / "examples" / "quickstart")
    volumes = str(tmp_path / "volumes")
    runefile = work / "examples" / "quickstart" / "runefile.yaml"
    runefile.write_text(runefile.read_text("utf-8").replace(ROOT, volumes), "utf-8")
    env = {k: v for k, v in os.environ.items() if k != "RUNE_SYNC_STATE"}
    env.update(NO_COLOR="1", PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}")

    for step in _tour():
        if isinstance(step, Change):
            path = work / step.file
            text = path.read_text("utf-8")
            assert text.count(step.old) == 1, f"{step.file} holds {step.old!r} once"
            path.write_text(text.replace(step.old, step.new), "utf-8")
        elif isinstance(step, Append):
            with (work / step.file).open("a", encoding="utf-8") as fh:
                fh.write(step.text)
        else:
            done = subprocess.run(
                ["bash", "-c", step.command.replace(ROOT, volumes)],
                cwd=work,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, f"$ {step.command}\n{done.stdout}"
            printed = done.stdout.replace(volumes, ROOT).splitlines()
            assert _in_order(step.shown, printed) == [], f"$ {step.command}\n{done.stdout}"
