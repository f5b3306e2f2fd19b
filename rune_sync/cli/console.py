"""Decides whether output is coloured, and builds rich consoles only when it is."""

from __future__ import annotations

import os
import sys
from typing import TextIO


def use_color(stream: TextIO, *, no_color: bool) -> bool:
    """Colour only on a terminal, never with ``--no-color`` or ``NO_COLOR`` set."""
    if no_color or os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or non-file stream is no terminal
        return False


def echo_markup(lines: list[str], stream: TextIO | None = None) -> None:
    """Print rich markup lines to a terminal."""
    from rich.console import Console

    console = Console(file=stream or sys.stdout, highlight=False, soft_wrap=True)
    for line in lines:
        console.print(line)
