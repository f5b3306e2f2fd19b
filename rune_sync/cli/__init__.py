"""The ``rune-sync`` command line: a click group and the failure boundary.

Commands live one per module and stay thin: parse options, call the pipeline, hand
the result to a view in :mod:`rune_sync.cli.render`. This module sorts failures:

- usage errors (unknown command or flag, missing argument, bad choice) exit 64 —
  never 2, which plan reserves for "changes present";
- a :class:`~rune_sync.errors.StalePlanError` (``apply PLANFILE`` whose state or source
  moved on; nothing was changed) exits 4, so CI can tell "make a new plan" from a failure;
- any other :class:`~rune_sync.errors.RuneSyncError` is printed as one message and exits 1;
- anything else is our bug: a one-line notice, the traceback in a debug log, exit 1.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import tempfile
import time
import traceback
from typing import NoReturn

import click

from rune_sync import __version__
from rune_sync.cli import groups
from rune_sync.errors import RuneSyncError, SpecError, StalePlanError

EXIT_USAGE = 64
EXIT_STALE_PLAN = 4

COMMANDS = {
    "validate": "rune_sync.cli.validate:validate",
    "plan": "rune_sync.cli.plan:plan",
    "apply": "rune_sync.cli.apply:apply",
    "show": "rune_sync.cli.show:show",
    "state": "rune_sync.cli.state:state",
    "schema": "rune_sync.cli.schema:schema",
    "explain": "rune_sync.cli.explain:explain",
    "drivers": "rune_sync.cli.drivers:drivers",
    "watch": "rune_sync.cli.watch:watch",
}
"""Command name → ``module:attribute``; a command's modules load only when it runs."""


class LazyGroup(groups.SentenceGroup):
    """A group that imports a command's module on first use (startup stays small)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)  # every entry names a click command
        return command

@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="rune-sync")
def cli() -> None:
    """Declarative GitOps for the storage of a Rune cluster: validate, plan, apply."""


def _debug_log(exc: BaseException) -> str:
    """Write the traceback of an unexpected error to a private file; return its path."""
    fd, path = tempfile.mkstemp(prefix=f"rune-sync-crash-{int(time.time())}-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"rune-sync {__version__}\nargv: {sys.argv[1:]!r}\n\n")
        fh.write("".join(traceback.format_exception(exc)))
    return path


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the ``rune-sync`` console script."""
    # Specs, records and plans are large and acyclic (reference counting frees them);
    # the default thresholds rescan them again and again: 0.35 s of a 10k-volume plan.
    # Cycles are still collected, just less often.
    gc.set_threshold(10_000, 20, 100)
    try:
        code = cli.main(args=argv, prog_name="rune-sync", standalone_mode=False)
    except click.exceptions.UsageError as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1)
    except SpecError as exc:
        for diagnostic in exc.diagnostics:
            click.echo(str(diagnostic), err=True)
        sys.exit(1)
    except StalePlanError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_STALE_PLAN)
    except RuneSyncError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # stdout closed by a pager or `head`: nothing left to tell anyone
        sys.exit(1)
    except Exception as exc:
        path = _debug_log(exc)
        click.echo(
            f"rune-sync hit an internal error ({type(exc).__name__}); this is a bug. "
            f"Details were written to {path}",
            err=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
