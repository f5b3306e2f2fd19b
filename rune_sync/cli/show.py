"""``rune-sync show FILE``: render a saved plan, and say whether it is still fresh.

Exit 0 for a readable plan — also when it is stale or the state does not exist yet;
1 when FILE is not a plan (or was written by a newer rune-sync).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from rune_sync.cli import options, pipeline
from rune_sync.cli import plan as plan_cmd
from rune_sync.plan import planfile


@click.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@options.state_option
@options.format_option("text", "json", "markdown")
@options.no_color_option
def show(file: Path, state: str | None, output_format: str, no_color: bool) -> int:
    """Render a saved plan FILE and say whether it is still fresh.

    Freshness is judged against --state (or RUNE_SYNC_STATE) when one is given."""
    saved = planfile.load(file)
    header = _header(saved.source, saved.serial)
    target = state or os.environ.get(pipeline.STATE_ENV)
    if target:
        view = pipeline.read_state(target)
        verdict = planfile.freshness(
            saved,
            lineage=view.meta.lineage if view.meta else None,
            serial=view.meta.serial if view.meta else None,
            input_digest=None,
        )
        if verdict.stale:
            header += f"\nThis plan is STALE: {verdict.why}. `rune-sync apply` will refuse it."
        else:
            header += "\nThe state has not moved since this plan was made."
    plan_cmd.emit(saved, output_format=output_format, no_color=no_color, header=header)
    return 0


def _header(source: object, serial: int) -> str:
    where = ""
    if isinstance(source, dict) and source.get("kind") == "git":
        pass  # the git provenance (URL, ref, path, commit) opens the rendered plan
    elif isinstance(source, dict):
        commit = source.get("commit")
        where = f" from {source.get('url')}" + (f" at commit {commit}" if commit else "")
    return f"Saved plan{where} (state serial {serial})."
