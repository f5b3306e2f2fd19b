"""Find the ``rune-sync`` invocations in shell text and check their flags against click.

Used by the workflow and documentation tests: every ``rune-sync COMMAND --flag`` written
in a workflow, a README or ``docs/`` must name a command and flags the CLI really has.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

import click

from rune_sync.cli import cli

_INVOCATION = re.compile(r"(?:^|(?<=[\s;&|(`$]))rune-sync(?=\s)(?P<rest>[^\n]*)")
_SHELL_STOP = {";", "|", "||", "&", "&&", ">", ">>", "<", "(", ")", "2>", "2>&1"}


@dataclass(frozen=True)
class Invocation:
    text: str
    words: tuple[str, ...]


def invocations(shell: str) -> list[Invocation]:
    """Every ``rune-sync …`` command in ``shell`` (backslash continuations joined)."""
    joined = re.sub(r"\\\n\s*", " ", shell)
    found = []
    for match in _INVOCATION.finditer(joined):
        lexer = shlex.shlex(match["rest"], posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        try:
            for word in lexer:
                if word in _SHELL_STOP or word.startswith("#"):
                    break
                words.append(word)
        except ValueError:  # an unclosed quote in prose: keep what was read
            pass
        found.append(Invocation(text=f"rune-sync{match['rest']}".strip(), words=tuple(words)))
    return found


def _options(command: click.Command) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def problems(invocation: Invocation) -> list[str]:
    """What is wrong with an invocation: an unknown command or an unknown flag."""
    ctx = click.Context(cli)
    words = list(invocation.words)
    if not words or words[0] in {"--version", "--help", "-h"}:
        return []
    command: click.Command | None = cli.get_command(ctx, words.pop(0))
    if command is None:
        return [f"{invocation.text}: no such command"]
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        sub = command.get_command(ctx, words.pop(0))
        if sub is None:
            return [f"{invocation.text}: no such subcommand"]
        command = sub
    known = _options(command)
    return [
        f"{invocation.text}: {flag} is not an option of this command"
        for flag in (w.split("=", 1)[0] for w in words if w.startswith("-") and w != "-")
        if flag not in known
    ]
