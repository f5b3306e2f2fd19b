"""``rune-sync state SUBCOMMAND``: inspect and repair the state (DESIGN §5).

``list``, ``show``, ``pull`` and ``lock-info`` only read (and create nothing); ``push``,
``rm`` and ``retry`` write under the state's lock — failing at once when someone holds
it, or waiting up to ``--lock-timeout`` — and move the serial on, so plans saved before
go stale; ``force-unlock`` breaks a lock its holder cannot release. None of them calls
a driver: they change what rune-sync remembers, never the storage itself.

Every subcommand takes ``--state`` and ``--state-name`` after its own name (else
``RUNE_SYNC_STATE`` / ``RUNE_SYNC_STATE_NAME``, else ``.rune-sync/state.db`` and
``default``); ``migrate`` takes ``--from``/``--to`` (and ``--from-name``/``--to-name``)
instead and copies a whole state between backends, verified. Exit codes: 0 success, 1
error (unknown address, no state, refused push or migration, held lock, declined
confirmation), 64 usage (missing or malformed ADDRESS, missing or unreadable FILE, a bad
duration or state name).

Commands stay thin: parse, call the state API, hand the values to
:mod:`rune_sync.cli.render.state_view`.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO

import click

from rune_sync.cli import groups, locking, options, pipeline
from rune_sync.cli.render import state_view
from rune_sync.spec.model import Address
from rune_sync.state import export
from rune_sync.state.backend import StateBackend, StateNotFoundError, open_backend
from rune_sync.state.migrate import copy_state
from rune_sync.state.model import StateRecord
from rune_sync.state.target import DEFAULT_STATE_NAME, StateTarget

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
def _existing(target: StateTarget) -> Iterator[StateBackend]:
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


@click.group(cls=groups.SentenceGroup)
def state() -> None:
    """Inspect and repair the state: what rune-sync recorded.

    None of these commands calls a driver: they change what rune-sync remembers, never
    the storage itself.
    """


@state.command("list")
@options.state_option
@options.format_option("text", "json")
def list_(state: options.StateOption, output_format: str) -> None:
    """Every record by address: status, handle, driver."""
    target = pipeline.state_target(state)
    view = pipeline.read_state(target)
    records = sorted(view.records.values(), key=lambda r: str(r.address))
    if output_format == "json":
        click.echo(state_view.records_json(records))
    elif view.meta is None:
        click.echo(state_view.no_state(str(target)), err=True)
    elif not records:
        click.echo(state_view.no_records(str(target)), err=True)
    else:
        _echo_lines(state_view.record_table(records))


@state.command()
@_address_argument
@options.state_option
@options.format_option("text", "json")
def show(address: Address, state: options.StateOption, output_format: str) -> None:
    """One record, every field.

    Driver parameters hold secret references, never their values.
    """
    with _existing(pipeline.state_target(state)) as backend:
        record = _record(backend, address)
    if output_format == "json":
        click.echo(state_view.record_json(record))
    else:
        _echo_lines(state_view.record_lines(record))


@state.command()
@options.state_option
def pull(state: options.StateOption) -> None:
    """Print the whole state as one JSON document.

    On stdout: a backup, or the input of `push`.
    """
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
def push(file: IO[bytes], state: options.StateOption, force: bool, lock_timeout: float) -> None:
    """Replace the state with a document `pull` wrote.

    FILE holds the document (`-`: stdin). The state is created when it does not exist.
    Refused unless --force: a document from another state (lineage), or one older than
    the state (serial).
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
    click.echo(state_view.pushed(meta, count=len(snapshot.records), location=str(target)))


@state.command()
@_address_argument
@options.state_option
@options.lock_timeout_option
def rm(address: Address, state: options.StateOption, lock_timeout: float) -> None:
    """Forget ADDRESS for good; its data is not touched.

    A retained record is forgotten too.
    """
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
def retry(address: Address, state: options.StateOption, lock_timeout: float) -> None:
    """Un-stall ADDRESS, so that the next apply tries it again."""
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
def force_unlock(lock_id: str | None, state: options.StateOption, yes: bool) -> int:
    """Break the state's lock when its holder cannot release it.

    For a holder on another host, or a hung run. It cannot stop that holder: make sure
    it is gone first. LOCK_ID (see `lock-info`) makes sure the lock broken is the one
    you looked at.
    """
    target = pipeline.state_target(state)
    try:
        backend = open_backend(target, create=False)
    except StateNotFoundError:
        click.echo(state_view.not_locked(str(target)))
        return 0
    with backend:
        holder = backend.lock_info()
        if holder is None:
            click.echo(state_view.not_locked(backend.location))
            return 0
        if lock_id is not None and lock_id != holder.id:
            raise click.ClickException(state_view.other_lock_id(lock_id, holder, backend.location))
        if holder.is_known and not yes:
            warning = state_view.unlock_warning(
                holder, backend.location, postgres=target.is_postgres
            )
            click.echo(warning, err=True)
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
def lock_info(state: options.StateOption, output_format: str) -> None:
    """Who holds the state's lock, if anyone.

    The holder's user, host, pid and command, and since when.
    """
    target = pipeline.state_target(state)
    try:
        with _existing(target) as backend:
            holder = backend.lock_info()
    except StateNotFoundError:
        holder = None
    if output_format == "json":
        click.echo(state_view.lock_json(holder, str(target)))
    else:
        _echo_lines(state_view.lock_lines(holder, str(target), flags=target.flags))


def _name_option(flag: str, what: str) -> Callable[[options.F], options.F]:
    def attach(func: options.F) -> options.F:
        return click.option(
            flag,
            default=DEFAULT_STATE_NAME,
            show_default=True,
            metavar="NAME",
            callback=options.check_state_name_option,
            help=f"The state name at {what} (PostgreSQL).",
        )(func)

    return attach


@state.command()
@click.option("--from", "source", required=True, metavar="PATH|URL", help="The state to copy.")
@_name_option("--from-name", "--from")
@click.option("--to", "destination", required=True, metavar="PATH|URL", help="Where to copy it.")
@_name_option("--to-name", "--to")
@click.option("--force", is_flag=True, help="Replace a destination that holds another state.")
@options.lock_timeout_option
def migrate(
    source: str,
    from_name: str,
    destination: str,
    to_name: str,
    force: bool,
    lock_timeout: float,
) -> None:
    """Copy a whole state to another place, verified.

    From a SQLite file to PostgreSQL or back, or to another state name, keeping its
    lineage, serial and records; the copy is checked to have arrived whole.

    The destination is created when missing. A destination that already holds another
    state is refused unless --force. Both states are locked while copying; the source
    is left as it was.
    """
    origin = StateTarget(location=source, name=from_name)
    target = StateTarget(location=destination, name=to_name)
    if origin == target:
        raise click.UsageError("--from and --to name the same state")
    command = _command_line("migrate")
    with (
        _existing(origin) as reader,
        locking.hold(reader, command=command, timeout=lock_timeout),
        pipeline.writable_state(target) as writer,
        locking.hold(writer, command=command, timeout=lock_timeout),
    ):
        copied = copy_state(reader, writer, force=force)
    _echo_lines(state_view.migrated(copied, origin=str(origin), destination=str(target)))
