"""``rune-sync drivers``: installed drivers and what each can do."""

from __future__ import annotations

import json

import click

from rune_sync.cli import options, wiring


@click.command()
@options.format_option("text", "json")
def drivers(output_format: str) -> int:
    """List the installed storage drivers and their capabilities."""
    rows = wiring.driver_registry().drivers()
    if output_format == "json":
        click.echo(json.dumps([r.to_json() for r in rows], indent=2))
        return 0
    for row in rows:
        if row.problem is not None:
            click.echo(f"{row.name}  (unusable: {row.problem})  [{row.source}]")
            continue
        caps = row.capabilities
        assert caps is not None  # only broken entries lack capabilities
        modes = ", ".join(sorted(m.value for m in caps.access_modes))
        flags = [
            name
            for name, on in (
                ("snapshots", caps.snapshots),
                ("expand", caps.expand),
                ("online-expand", caps.online_expand),
                ("block-device", caps.block_device),
            )
            if on
        ]
        status = "" if row.implemented else "  (declared; not available in this version)"
        click.echo(f"{row.name}{status}")
        click.echo(f"  access modes: {modes}")
        click.echo(f"  features:     {', '.join(flags) or 'none'}")
        if caps.topology_keys:
            click.echo(f"  topology:     {', '.join(sorted(caps.topology_keys))}")
    return 0
