"""``rune-sync state SUBCOMMAND``: inspect and repair the state (DESIGN §5).

``list``, ``show``, ``pull`` and ``lock-info`` only read (and create nothing); ``push``,
``rm`` and ``retry`` write under the state's lock — failing at once when someone holds
it, or waiting up to ``--lock-timeout`` — and move the serial on, so plans saved before
go stale; ``force-unlock`` breaks a lock its holder cannot release. None of them calls
a driver: they change what rune-sync remembers, never the storage itself.

Every subcommand takes ``--state`` after its own name (else ``RUNE_SYNC_STATE``, else
``.rune-sync/state.db``). Exit codes: 0 success, 1 error (unknown address, no state,
refused push, held lock, declined confirmation), 64 usage (missing or malformed ADDRESS,
missing or unreadable FILE, a bad duration).

Commands stay thin: parse, call the state API, hand the values to
:mod:`rune_sync.cli.render.state_view`.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO

import click

from rune_sync.cli import locking, options, pipeline
from rune_sync.cli.render import state_view
from rune_sync.spec.model import Address
from rune_sync.state import export
from rune_sync.state.backend import StateBackend, StateNotFoundError, open_backend
from rune_sync.state.model import StateRecord

_SUGGESTIONS = 3


class AddressType(click.ParamType[Address]):
    name = "ADDRESS"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> Address:
        if isinstance(value, Address):
            return value
        try:
            return Address.parse(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _address_argument(func: options.F) -> options.F:
    return click.argument("address", type=AddressType())(func)


# --------------------------------------------------------------------------- helpers


@contextmanager
def _existing(target: str) -> Iterator[StateBackend]:
    """The state at ``target``, which must exist; nothing is created."""
    with open_backend(target, create=False) as backend:
        yield backend


def _record(backend: StateBackend, address: Address) -> StateRecord:
    """The record at ``address``, or an error naming it and the nearest addresses."""
    record = backend.get(address)
    if record is not None:
        return record
    known = [str(r.address) for r in backend.records()]
    close = difflib.get_close_matches(str(address), known, n=_SUGGESTIONS)
    raise click.ClickException(state_view.unknown_address(address, backend.location, close))


def _echo_lines(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)


def _command_line(*words: object) -> str:
    return " ".join(["rune-sync", "state", *(str(w) for w in words)])


# --------------------------------------------------------------------------- commands


@click.group()
def state() -> None:
    """Inspect and repair the state: what rune-sync recorded.

    None of these commands calls a driver: they change what rune-sync remembers, never
    the storage itself.
    """


@state.command("list")
@options.state_option
@options.format_option("text", "json")
def list_(state: str | None, output_format: str) -> None:
    """Every record by address: status, handle, driver."""
    target = pipeline.state_target(state)
    view = pipeline.read_state(target)
    records = sorted(view.records.values(), key=lambda r: str(r.address))
    if output_format == "json":
        click.echo(state_view.records_json(records))
    elif view.meta is None:
        click.echo(state_view.no_state(target), err=True)
    elif not records:
        click.echo(state_view.no_records(target), err=True)
    else:
        _echo_lines(state_view.record_table(records))


@state.command()
@_address_argument
@options.state_option
@options.format_option("text", "json")
def show(address: Address, state: str | None, output_format: str) -> None:
    """One record, every field (driver parameters hold secret references, never values)."""
    with _existing(pipeline.state_target(state)) as backend:
        record = _record(backend, address)
    if output_format == "json":
        click.echo(state_view.record_json(record))
    else:
        _echo_lines(state_view.record_lines(record))


@state.command()
@options.state_option
def pull(state: str | None) -> None:
    """The whole state as one JSON document on stdout (a backup, or input for push)."""
    with _existing(pipeline.state_target(state)) as backend:
        document = export.pull(backend)
    click.echo(export.dumps(document), nl=False)


@state.command()
@click.argument("file", type=click.File("rb"))
@options.state_option
@click.option(
    "--force",
    is_flag=True,
    help="Replace the state even with a document of another lineage or an older serial.",
)
@options.lock_timeout_option
def push(file: IO[bytes], state: str | None, force: bool, lock_timeout: float) -> None:
    """Replace the state with the document in FILE (`-`: stdin), as `pull` wrote it.

    The state is created when it does not exist. Refused unless --force: a document
    from another state (lineage), or one older than the state (serial).
    """
    document = export.loads(file.read())
    # Checked before the state is opened: an invalid document must not create one.
    snapshot = export.parse(document)
    target = pipeline.state_target(state)
    with (
        pipeline.writable_state(target) as backend,
        locking.hold(backend, command=_command_line("push"), timeout=lock_timeout),
    ):
        meta = export.push(backend, document, force=force)
    click.echo(state_view.pushed(meta, count=len(snapshot.records), location=target))


@state.command()
@_address_argument
@options.state_option
@options.lock_timeout_option
def rm(address: Address, state: str | None, lock_timeout: float) -> None:
    """Forget ADDRESS for good (a retained record too); its data is not touched."""
    with _existing(pipeline.state_target(state)) as backend:
        with locking.hold(backend, command=_command_line("rm", address), timeout=lock_timeout):
            record = _record(backend, address)
            before = backend.meta()
            with backend.transaction() as writer:
                writer.delete(address)
                after = writer.bump_serial()
        _echo_lines(
            state_view.removed(record, location=backend.location, before=before, after=after)
        )


@state.command()
@_address_argument
@options.state_option
@options.lock_timeout_option
def retry(address: Address, state: str | None, lock_timeout: float) -> None:
    """Un-stall ADDRESS: the next apply tries a Stalled resource again."""
    with _existing(pipeline.state_target(state)) as backend:
        with locking.hold(backend, command=_command_line("retry", address), timeout=lock_timeout):
            record = _record(backend, address)
            try:
                retried = record.unstall(now=datetime.now(UTC))
            except ValueError as exc:
                raise click.ClickException(str(exc)) from None
            with backend.transaction() as writer:
                writer.put(retried)
                meta = writer.bump_serial()
        _echo_lines(state_view.retried(record, retried, location=backend.location, meta=meta))


@state.command("force-unlock")
@click.argument("lock_id", required=False, metavar="[LOCK_ID]")
@options.state_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def force_unlock(lock_id: str | None, state: str | None, yes: bool) -> int:
    """Break the state's lock when its holder cannot release it (another host, a hung run).

    It cannot stop that holder: make sure it is gone first. LOCK_ID (see `lock-info`)
    makes sure the lock broken is the one you looked at.
    """
    target = pipeline.state_target(state)
    try:
        backend = open_backend(target, create=False)
    except StateNotFoundError:
        click.echo(state_view.not_locked(target))
        return 0
    with backend:
        holder = backend.lock_info()
        if holder is None:
            click.echo(state_view.not_locked(backend.location))
            return 0
        if lock_id is not None and lock_id != holder.id:
            raise click.ClickException(state_view.other_lock_id(lock_id, holder, backend.location))
        if holder.is_known and not yes:
            click.echo(state_view.unlock_warning(holder, backend.location), err=True)
            if not sys.stdin.isatty():
                raise click.ClickException(
                    "not breaking the lock without confirmation, and there is no terminal to "
                    "ask on: pass --yes"
                )
            if not click.confirm(state_view.UNLOCK_QUESTION, default=False, err=True):
                click.echo(state_view.unlock_declined(backend.location), err=True)
                return 1
        # The id checked now, so a lock that changed hands meanwhile is not broken.
        expected = lock_id or (holder.id if holder.is_known else None)
        removed = backend.force_unlock(expected)
    if removed is None:
        click.echo(state_view.not_locked(backend.location))
    else:
        click.echo(state_view.unlocked(removed, backend.location))
    return 0


@state.command("lock-info")
@options.state_option
@options.format_option("text", "json")
def lock_info(state: str | None, output_format: str) -> None:
    """Who holds the state's lock (user, host, pid, command, since), if anyone."""
    target = pipeline.state_target(state)
    try:
        with _existing(target) as backend:
            holder = backend.lock_info()
    except StateNotFoundError:
        holder = None
    if output_format == "json":
        click.echo(state_view.lock_json(holder, target))
    else:
        _echo_lines(state_view.lock_lines(holder, target))
