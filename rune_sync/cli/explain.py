"""``rune-sync explain CODE``: the paragraph behind a diagnostic code."""

from __future__ import annotations

import textwrap

import click

from rune_sync.spec import codes


@click.command()
@click.argument("code")
def explain(code: str) -> int:
    """Explain a diagnostic code such as RS204."""
    entry = codes.lookup(code)
    if entry is None:
        known = ", ".join(sorted(codes.CODES))
        raise click.BadParameter(f"unknown code {code!r}; known codes: {known}", param_hint="CODE")
    click.echo(f"{entry.code}: {entry.title}\n")
    click.echo(textwrap.fill(entry.explanation, width=88))
    return 0
