"""``rune-sync validate [SOURCE]``: every problem of a source in one run.

Exit 0 when there are no errors (warnings never fail), 1 when there are.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rune_sync.cli import console, options, pipeline
from rune_sync.cli.render import diagnostics as view


@click.command()
@options.source_argument
@options.runefile_option
@options.format_option("text", "json")
@options.no_color_option
@options.git_location_options
def validate(
    source: str,
    runefile: Path | None,
    output_format: str,
    no_color: bool,
    git_flags: options.GitFlags,
) -> int:
    """Check SOURCE against the schemas and Rune's storage rules."""
    snapshot, result = pipeline.validate_source(
        pipeline.SourceArgs(
            source=source, runefile=runefile, ref=git_flags.ref, path=git_flags.path
        )
    )
    for note in snapshot.notes:
        click.echo(f"Note: {note}", err=True)
    items = result.diagnostics
    if output_format == "json":
        click.echo(view.to_json(items))
    elif console.use_color(sys.stdout, no_color=no_color):
        console.echo_markup([view.rich_markup(d) for d in items])
    else:
        for line in view.text_lines(items):
            click.echo(line)
    if output_format == "text":
        if snapshot.commit is not None:
            click.echo(f"Source: {snapshot.url} at commit {snapshot.commit.sha}", err=True)
        click.echo(view.summary(items, len(result.files)), err=True)
    return 0 if result.ok else 1
