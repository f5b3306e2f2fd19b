"""Click groups whose command list shows each command's whole first sentence.

Used by the top-level group (:class:`rune_sync.cli.LazyGroup`) and by ``state``. Click
cuts a command's short help at 45 characters with "..."; these groups show the whole
first sentence instead, wrapped to the terminal, so each command's first sentence must
be short and complete on its own. Must not: load commands or change their help text.
"""

from __future__ import annotations

import click

WHOLE_SENTENCE = 1_000
"""A short-help limit no first sentence reaches: click never cuts it."""


class SentenceGroup(click.Group):
    """A group listing each visible command with the whole first sentence of its help."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=WHOLE_SENTENCE)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
