"""Options shared by several commands, attached to each command that takes them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def source_argument(func: F) -> F:
    return click.argument("source", required=False, default=".", metavar="[SOURCE]")(func)


def runefile_option(func: F) -> F:
    return click.option(
        "--runefile",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Runefile to read instead of runefile.yaml|yml|toml at the source root.",
    )(func)


def format_option(*choices: str) -> Callable[[F], F]:
    def attach(func: F) -> F:
        return click.option(
            "--format",
            "output_format",
            type=click.Choice(choices),
            default=choices[0],
            show_default=True,
            help="Output format.",
        )(func)

    return attach


def no_color_option(func: F) -> F:
    return click.option(
        "--no-color", is_flag=True, default=False, help="Never colour the output (also NO_COLOR)."
    )(func)
