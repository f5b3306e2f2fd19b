"""``rune-sync apply [SOURCE | PLANFILE]``: plan and carry it out, or carry out a saved plan.

A regular file is a saved plan (``plan --out``): it runs only while the state is where
it was (lineage and serial) and the source still has the digest it was made from; for a
git source, only while the plan's ref (or ``--ref``) still resolves to the plan's commit.
Anything else is a source, planned here with plan's flags. An existing state's lock is
held from the plan to the end; a state that does not exist yet is created (and locked)
only once the plan is approved, and must then still be empty — a refused or declined
apply writes nothing at all. Without ``--auto-approve`` the plan is shown and a terminal
must answer ``yes``; with no terminal apply refuses instead of waiting.

Exit codes: 0 everything applied (a no-op included); 1 anything failed or was refused;
64 usage; 128 + the signal number when stopped by Ctrl-C (SIGINT) or SIGTERM — after
the running operations finished and were recorded. A second signal aborts at once.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import click

from rune_sync import secrets
from rune_sync.apply import engine
from rune_sync.apply.events import Reporter
from rune_sync.cli import locking, options, pipeline, wiring
from rune_sync.cli import plan as plan_cmd
from rune_sync.cli.render import apply_view
from rune_sync.drivers.registry import DriverRegistry
from rune_sync.errors import (
    PlanError,
    RuneSyncError,
    SpecError,
    StalePlanError,
    UnsafePlanError,
)
from rune_sync.plan import planfile
from rune_sync.plan.model import Options, Plan
from rune_sync.spec.model import Address
from rune_sync.state.backend import StateBackend
from rune_sync.state.model import StateRecord

APPROVAL_WORD = "yes"


class Declined(RuneSyncError):
    """The operator did not approve, or could not be asked."""


@click.command()
@click.argument("target", required=False, default=".", metavar="[SOURCE | PLANFILE]")
@options.runefile_option
@options.state_option
@options.secrets_dir_option
@options.format_option("text", "json")
@options.no_color_option
@options.plan_options
@options.git_options
@options.lock_timeout_option
@click.option("--auto-approve", is_flag=True, help="Apply without asking.")
@options.execution_options
def apply(
    target: str,
    runefile: Path | None,
    state: options.StateOption,
    secrets_dir: Path | None,
    output_format: str,
    no_color: bool,
    plan_options: Options,
    git_flags: options.GitFlags,
    lock_timeout: float,
    auto_approve: bool,
    parallelism: int,
    stall_after: int,
) -> int:
    """Carry out the plan for SOURCE, or a saved plan PLANFILE.

    SOURCE is planned now, with plan's flags; PLANFILE (from `plan --out`) is applied
    only while the state and the source are still what it was made from (else exit 4)."""
    as_json = output_format == "json"
    saved = planfile.load(Path(target)) if Path(target).is_file() else None
    args = (
        _saved_source(saved, runefile, git_flags)
        if saved is not None
        else plan_cmd.source_args(target, runefile, git_flags)
    )
    try:
        loaded = pipeline.load_source(args)
        if saved is not None:
            _require_same_commit(saved, loaded)
        resolver = pipeline.secret_resolver(loaded, secrets_dir)
        secret_warnings = pipeline.check_secrets(loaded, resolver)
    except SpecError as exc:
        plan_cmd.report_spec_error(exc)
        return 1
    plan_cmd.report_warnings(loaded, secret_warnings)
    registry = wiring.driver_registry(loaded.runefile.storage)
    state_at = pipeline.state_target(state, loaded.runefile)
    out = apply_view.JsonLines() if as_json else None
    carry = _Carry(
        plan_options=plan_options,
        loaded=loaded,
        registry=registry,
        resolver=resolver,
        out=out,
        no_color=no_color,
        settings=engine.ApplySettings(parallelism=parallelism, stall_after=stall_after),
    )
    command = f"rune-sync apply {target}"
    with pipeline.existing_state(state_at) as existing:
        # An existing state is locked from the plan to the end; a state that does not
        # exist yet is created only once the plan is approved (nothing is written when
        # it is refused), and then must still be new.
        held = (
            locking.hold(existing, command=command, timeout=lock_timeout)
            if existing is not None
            else nullcontext()
        )
        with held:
            view = pipeline.StateView(
                meta=existing.meta() if existing is not None else None,
                records=existing.load_all() if existing is not None and saved is None else {},
            )
            the_plan = carry.plan(saved, view)
            if the_plan.has_changes and not auto_approve:
                _approve()
            if existing is not None:
                # A fresh plan's records were read under this lock: apply reuses them.
                return carry.run(
                    the_plan, existing, records=None if saved is not None else view.records
                )
    with (
        pipeline.writable_state(state_at) as backend,
        locking.hold(backend, command=command, timeout=lock_timeout),
    ):
        return carry.run(the_plan, backend, records=_require_new(backend))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Carry:
    """What planning and carrying out need beyond the plan and the state."""

    plan_options: Options
    loaded: pipeline.Loaded
    registry: DriverRegistry
    resolver: secrets.Resolver
    out: apply_view.JsonLines | None
    no_color: bool
    settings: engine.ApplySettings

    def plan(self, saved: Plan | None, view: pipeline.StateView) -> Plan:
        """The plan to carry out, shown; raises when it is refused or stale."""
        loaded, meta = self.loaded, view.meta
        if saved is not None:
            planfile.require_fresh(
                saved,
                lineage=meta.lineage if meta is not None else None,
                serial=meta.serial if meta is not None else None,
                input_digest=loaded.validated.digest,
            )
            pipeline.check_history(loaded, meta)
            the_plan = saved
        else:
            the_plan = pipeline.make_plan(
                loaded, view, self.plan_options, self.registry, resolver=self.resolver
            )
            plan_cmd.report_late_warnings(self.resolver.notices.take())
        if self.out is not None:
            self.out.plan(the_plan)
        else:
            plan_cmd.emit(the_plan, output_format="text", no_color=self.no_color)
        refused = engine.refusals(the_plan)
        if refused:
            raise UnsafePlanError(
                "refusing to apply; nothing was changed:\n  " + "\n  ".join(refused)
            )
        return the_plan

    def run(
        self,
        the_plan: Plan,
        backend: StateBackend,
        *,
        records: Mapping[Address, StateRecord] | None,
    ) -> int:
        """Carry out the approved plan on the locked state; the exit code. ``records``:
        every record, read under the lock held now (None: engine.execute reads them)."""
        out, digest = self.out, self.loaded.validated.digest
        if not the_plan.has_changes:
            pipeline.record_new_commit(backend, the_plan, digest)
            _finish(out, engine.Result(), "No changes. Nothing to apply.")
            return 0
        stop = threading.Event()
        with _interruptible(stop) as received, _reporter(out, the_plan, self.no_color) as reporter:
            result = engine.execute(
                the_plan,
                backend=backend,
                drivers=secrets.GuardedDrivers(self.registry.get, self.resolver.redactor).get,
                reporter=reporter,
                settings=self.settings,
                stop=stop,
                source=pipeline.source_info(the_plan, digest),
                resolve=self.resolver,
                notices=self._notices,
                records=records,
            )
        message = "\n".join(apply_view.summary_lines(result))
        _finish(out, result, message)
        if received:
            return 128 + received[0]
        return 0 if result.ok else 1

    def _notices(self) -> tuple[str, ...]:
        return tuple(str(warning) for warning in self.resolver.notices.take())


def _require_new(backend: StateBackend) -> Mapping[Address, StateRecord]:
    """The plan was made for a state that did not exist: it must still be empty (its
    records, none, are returned)."""
    records = backend.load_all()
    if backend.meta().serial != 0 or records:
        raise StalePlanError(
            f"the state {backend.location} was created and written by another command "
            "while this plan waited for approval; nothing was changed, run apply again"
        )
    return records


def _finish(out: apply_view.JsonLines | None, result: engine.Result, message: str) -> None:
    if out is not None:
        out.summary(result, message=message)
    else:
        click.echo(message)


def _saved_source(
    saved: Plan, runefile: Path | None, git_flags: options.GitFlags
) -> pipeline.SourceArgs:
    """The source a saved plan was made from: its URL, ref and path (``--ref`` given now
    pins another ref, which must resolve to the plan's commit)."""
    source = saved.source or {}
    url = source.get("url")
    if not isinstance(url, str) or not url:
        raise PlanError("the saved plan does not say which source it was made from")
    saved_path = source.get("path")
    path = saved_path if isinstance(saved_path, str) else None
    if git_flags.path is not None and git_flags.path.strip("/") != (path or ""):
        raise PlanError(
            f"--path {git_flags.path} differs from the saved plan's path ({path or 'none'}); "
            "make a new plan for another path"
        )
    saved_ref = source.get("ref")
    ref = git_flags.ref or (saved_ref if isinstance(saved_ref, str) else None)
    return pipeline.SourceArgs(
        source=url, runefile=runefile, ref=ref, path=path, trust=git_flags.trust
    )


def _require_same_commit(saved: Plan, loaded: pipeline.Loaded) -> None:
    """A saved git plan applies only to the commit it was made from."""
    wanted = (saved.source or {}).get("commit")
    now = loaded.snapshot.commit.sha if loaded.snapshot.commit else None
    if wanted and now != wanted:
        ref = (saved.source or {}).get("ref") or "the remote's HEAD"
        raise StalePlanError(
            f"the saved plan was made from commit {wanted}, but {ref} of "
            f"{loaded.snapshot.url} now resolves to {now}; make a new plan, or pass "
            f"--ref {wanted} to apply the plan's commit"
        )


def _approve() -> None:
    if not sys.stdin.isatty():
        raise Declined(
            "refusing to apply without approval: there is no terminal to ask on; "
            "review the plan and pass --auto-approve"
        )
    answer = click.prompt(
        f"Apply these changes? Only '{APPROVAL_WORD}' will be accepted",
        default="",
        show_default=False,
        err=True,
    )
    if answer.strip() != APPROVAL_WORD:
        raise Declined("apply cancelled; nothing was changed")


@contextmanager
def _reporter(out: apply_view.JsonLines | None, plan: Plan, no_color: bool) -> Iterator[Reporter]:
    if out is not None:
        yield out
        return
    from rune_sync.cli import console

    if console.use_color(sys.stderr, no_color=no_color):
        with apply_view.ProgressBar(total=plan.summary.changes) as bar:
            yield bar
        return
    yield apply_view.LogLines()


@contextmanager
def _interruptible(stop: threading.Event) -> Iterator[list[int]]:
    """First SIGINT/SIGTERM: stop scheduling, let running operations finish and be
    recorded. Second: abort at once (each step was recorded before and after its call,
    and the OS releases the lock with the process)."""
    received: list[int] = []

    def handle(signum: int, frame: FrameType | None) -> None:
        if received:
            sys.stderr.write("Second interrupt: aborting at once.\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        received.append(signum)
        stop.set()
        sys.stderr.write(
            "Stopping: no new operations start; waiting for the running ones to finish "
            "and be recorded (interrupt again to abort at once).\n"
        )
        sys.stderr.flush()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
