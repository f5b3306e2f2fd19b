"""``rune-sync plan [SOURCE]``: what apply would do, and whether any data would be lost.

Exit codes: 0 success (or, with --detailed-exitcode, no changes), 2 changes, 3 changes
that destroy data, 1 error (including a tripped mass-delete breaker).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from rune_sync.cli import console, options, pipeline
from rune_sync.cli.render import diagnostics as diagnostics_view
from rune_sync.cli.render import plan_markdown, plan_text
from rune_sync.diagnostics import Diagnostic
from rune_sync.errors import PlanError, SpecError, UnsafePlanError
from rune_sync.plan import planfile
from rune_sync.plan.model import Options, Plan

EXIT_CHANGES = 2
EXIT_DESTROYS_DATA = 3


def exit_code(plan: Plan, *, detailed: bool) -> int:
    if not detailed or not plan.has_changes:
        return 0
    return EXIT_DESTROYS_DATA if plan.victims else EXIT_CHANGES


def emit(plan: Plan, *, output_format: str, no_color: bool, header: str | None = None) -> None:
    """Print a plan in the chosen format on stdout."""
    if output_format == "json":
        click.echo(json.dumps(plan.to_json(), indent=2))
    elif output_format == "markdown":
        click.echo(plan_markdown.render(plan, header=header), nl=False)
    elif console.use_color(sys.stdout, no_color=no_color):
        console.echo_markup(plan_text.render(plan, color=True, header=header))
    else:
        for line in plan_text.render(plan, header=header):
            click.echo(line)


def source_args(
    source: str, runefile: Path | None, git_flags: options.GitFlags
) -> pipeline.SourceArgs:
    return pipeline.SourceArgs(
        source=source,
        runefile=runefile,
        ref=git_flags.ref,
        path=git_flags.path,
        trust=git_flags.trust,
    )


def report_warnings(loaded: pipeline.Loaded, extra: tuple[Diagnostic, ...] = ()) -> None:
    """Notes about the source (a cache cloned again) and warnings, on stderr."""
    for note in loaded.snapshot.notes:
        click.echo(f"Note: {note}", err=True)
    for warning in (*loaded.warnings, *extra):
        click.echo(str(warning), err=True)


def report_late_warnings(warnings: tuple[Diagnostic, ...]) -> None:
    """Warnings met after the source's (refresh resolving recorded secret references:
    RS403, RS404), on stderr."""
    for warning in warnings:
        click.echo(str(warning), err=True)


def report_spec_error(exc: SpecError) -> None:
    """Diagnostics of a source that does not validate, on stderr."""
    for line in diagnostics_view.text_lines(exc.diagnostics):
        click.echo(line, err=True)
    errors = sum(1 for d in exc.diagnostics if d.is_error)
    click.echo(f"{errors} error(s) in the source; nothing was planned.", err=True)


@click.command()
@options.source_argument
@options.runefile_option
@options.state_option
@options.secrets_dir_option
@options.format_option("text", "json", "markdown")
@options.no_color_option
@options.plan_options
@options.git_options
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 no changes, 2 changes, 3 changes that destroy data, 1 error.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Save the plan to FILE for `rune-sync apply FILE`.",
)
def plan(
    source: str,
    runefile: Path | None,
    state: options.StateOption,
    secrets_dir: Path | None,
    output_format: str,
    no_color: bool,
    plan_options: Options,
    git_flags: options.GitFlags,
    detailed_exitcode: bool,
    out: Path | None,
) -> int:
    """Show what apply would change and which data it would destroy.

    Field by field, with a closing data verdict; --detailed-exitcode tells scripts
    whether anything changes (2) or data would be destroyed (3)."""
    try:
        loaded = pipeline.load_source(source_args(source, runefile, git_flags))
        resolver = pipeline.secret_resolver(loaded, secrets_dir)
        secret_warnings = pipeline.check_secrets(loaded, resolver)
    except SpecError as exc:
        report_spec_error(exc)
        return 1
    report_warnings(loaded, secret_warnings)
    target = pipeline.state_target(state, loaded.runefile)
    view = pipeline.read_state(target)
    result = pipeline.make_plan(loaded, view, plan_options, resolver=resolver)
    report_late_warnings(resolver.notices.take())
    emit(result, output_format=output_format, no_color=no_color)
    if result.mass_delete:
        raise UnsafePlanError(
            f"refusing this plan: {result.mass_delete}; pass "
            "--allow-mass-delete if that is what you want"
        )
    if out is not None:
        planfile.save(result, out)
        click.echo(f"Saved the plan to {out}; apply it with `rune-sync apply {out}`.", err=True)
    return exit_code(result, detailed=detailed_exitcode)


__all__ = ["PlanError", "plan"]
