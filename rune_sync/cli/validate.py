"""``rune-sync validate [SOURCE]``: every problem of a source in one run.

Exit 0 when there are no errors (warnings never fail), 1 when there are.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rune_sync.cli import console, options, wiring
from rune_sync.cli.render import diagnostics as view
from rune_sync.source import directory
from rune_sync.spec import validate as pipeline


@click.command()
@options.source_argument
@options.runefile_option
@options.format_option("text", "json")
@options.no_color_option
def validate(source: str, runefile: Path | None, output_format: str, no_color: bool) -> int:
    """Check SOURCE against the schemas and Rune's storage rules."""
    root = directory.open_directory(source)
    capabilities, parameter_rules = wiring.driver_declarations()
    result = pipeline.validate_directory(
        root, drivers=capabilities, parameter_rules=parameter_rules, runefile=runefile
    )
    items = result.diagnostics
    if output_format == "json":
        click.echo(view.to_json(items))
    elif console.use_color(sys.stdout, no_color=no_color):
        console.echo_markup([view.rich_markup(d) for d in items])
    else:
        for line in view.text_lines(items):
            click.echo(line)
    if output_format == "text":
        click.echo(view.summary(items, len(result.files)), err=True)
    return 0 if result.ok else 1
