"""Command groups list each command with its whole first sentence, never cut."""

from __future__ import annotations

import click
from click.testing import CliRunner

from rune_sync.cli.groups import SentenceGroup

LONG = "Do something whose first sentence is much longer than click's forty-five characters."


def test_a_long_first_sentence_is_shown_whole_and_the_rest_of_the_help_is_not():
    @click.group(cls=SentenceGroup)
    def group() -> None:
        """A group."""

    @group.command(help=f"{LONG}\n\nThe rest of the help.")
    def long() -> None:
        pass

    @group.command(hidden=True)
    def secret() -> None:
        """Hidden."""

    result = CliRunner().invoke(group, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    listed = result.output.split("Commands:\n")[1]
    assert listed.split() == ["long", *LONG.split()]
