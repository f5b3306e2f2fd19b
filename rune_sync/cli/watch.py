"""``rune-sync watch [SOURCE]``: reconcile once, then on every change, until stopped.

Thin wiring: options → a :class:`~rune_sync.cli.reconcile.Reconciler` (the cycle) →
:class:`~rune_sync.watch.loop.Loop`, with the file watcher (a directory) or the poller
(a git source: ``git ls-remote`` every ``--interval``), the periodic resync, the HTTP
endpoints and the signal handlers around it. Everything it says goes to stderr as
structured log lines (``--log-format``). Signals: SIGTERM or SIGINT stop scheduling —
the running cycle's in-flight operations finish and are recorded, the lock is released
— and exit 0 (a second one aborts at once); SIGHUP runs a cycle that reads the runefile
again and refreshes.

Exit codes: 0 after a clean stop; 1 when it cannot start (source missing, webhook
secret unreadable, address in use); 64 usage (``--interval`` or ``--require-signed``
with a directory).
A failing cycle never ends it; an unreachable remote is not a start failure either:
its cycles fail and are retried.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import click

from rune_sync.apply import engine
from rune_sync.cli import options, pipeline, reconcile
from rune_sync.errors import RuneSyncError
from rune_sync.plan.model import Options
from rune_sync.source import directory, gitcmd, urls
from rune_sync.watch import http, logs, poll, triggers
from rune_sync.watch.loop import Finished, Inbox, Loop, Request, Trigger
from rune_sync.watch.metrics import Health, Metrics


class HostPort(click.ParamType[tuple[str, int]]):
    """``HOST:PORT`` (``[::1]:9090`` for IPv6; port 0 picks a free one)."""

    name = "HOST:PORT"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, int]:
        if isinstance(value, tuple):
            return value  # already converted (a default given as a tuple)
        host, sep, port = str(value).rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            self.fail(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:9090)", param, ctx)
        return host, int(port)


@click.command()
@options.source_argument
@options.runefile_option
@options.state_option
@options.secrets_dir_option
@options.plan_options
@options.git_options
@options.lock_timeout_option
@options.execution_options
@click.option(
    "--debounce",
    type=options.DurationType(),
    default="300ms",
    show_default=True,
    help="Longest a burst of file events is gathered into one cycle (a single save is "
    "seen about 50ms after it); also how long the source must stay unchanged before a "
    "plan that destroys data runs.",
)
@click.option(
    "--interval",
    type=options.DurationType(),
    default="60s",
    show_default=True,
    help="How often a git source's ref is polled (git ls-remote; fetched only when it "
    "moved). A directory is watched for file events instead: a usage error there.",
)
@click.option(
    "--resync",
    type=options.DurationType(),
    default="10m",
    show_default=True,
    help="Refresh from the drivers and correct drift this often (0: never).",
)
@click.option(
    "--webhook-listen",
    type=HostPort(),
    default=None,
    help="Serve POST /webhook here (GitHub-style X-Hub-Signature-256).",
)
@click.option(
    "--webhook-secret-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="File holding the webhook's shared secret (required with --webhook-listen).",
)
@click.option(
    "--listen",
    type=HostPort(),
    default=None,
    help="Serve /healthz and /metrics (Prometheus) here.",
)
@click.option(
    "--log-format",
    type=click.Choice(logs.FORMATS),
    default="text",
    show_default=True,
    help="Log lines on stderr: text (key=value) or json (one object per line).",
)
@click.option(
    "--unhealthy-after",
    type=click.IntRange(1, 1000),
    default=5,
    show_default=True,
    help="Failed cycles in a row after which /healthz answers 503 (stalled).",
)
def watch(
    source: str,
    runefile: Path | None,
    state: options.StateOption,
    secrets_dir: Path | None,
    plan_options: Options,
    git_flags: options.GitFlags,
    lock_timeout: float,
    parallelism: int,
    stall_after: int,
    debounce: float,
    interval: float,
    resync: float,
    webhook_listen: tuple[str, int] | None,
    webhook_secret_file: Path | None,
    listen: tuple[str, int] | None,
    log_format: str,
    unhealthy_after: int,
) -> int:
    """Reconcile SOURCE now, then on every change, until SIGTERM."""
    if (webhook_listen is None) != (webhook_secret_file is None):
        raise click.UsageError("--webhook-listen and --webhook-secret-file go together")
    remote = _git_remote(source, git_flags)
    interval_given = (
        click.get_current_context().get_parameter_source("interval")
        is not click.core.ParameterSource.DEFAULT
    )
    if remote is None and interval_given:
        raise click.UsageError(
            "--interval polls a git source; a directory is watched for file events "
            "(use --resync for a periodic refresh)"
        )
    if remote is None and git_flags.trust.require_signed:
        raise click.UsageError("--require-signed needs a git source; SOURCE is a directory")
    if remote is not None and interval <= 0:
        raise click.UsageError("--interval must be more than 0 for a git source")
    log = logs.Log(sys.stderr, fmt=log_format)
    clock = time.monotonic
    inbox = Inbox()
    cycle = reconcile.Reconciler(
        settings=reconcile.Settings(
            source=pipeline.SourceArgs(
                source=source,
                runefile=runefile,
                ref=git_flags.ref,
                path=git_flags.path,
                trust=git_flags.trust,
            ),
            state=state,
            secrets_dir=secrets_dir,
            options=plan_options,
            apply=engine.ApplySettings(parallelism=parallelism, stall_after=stall_after),
            lock_timeout=lock_timeout,
            command=f"rune-sync watch {urls.display_url(source)}",
            settle=debounce,
        ),
        log=log,
    )
    health = Health(unhealthy_after=unhealthy_after)
    metrics = Metrics()

    def observe(done: Finished) -> None:
        health.observe(done)
        metrics.observe(done, now=time.time(), healthy=health.view().ok)
        log.cycle(done)

    loop = Loop(cycle=cycle, inbox=inbox, clock=clock, observers=(observe,))
    parts: list[triggers.Source | http.Server] = [
        _change_trigger(
            source=source,
            remote=remote,
            ref=git_flags.ref,
            interval=interval,
            debounce=debounce,
            inbox=inbox,
            log=log,
            loaded=lambda: cycle.last_commit,
            metrics=metrics,
        )
    ]
    if resync > 0:
        parts.append(
            triggers.Periodic(
                every=resync, trigger=Trigger.RESYNC, inbox=inbox, log=log, clock=clock
            )
        )
    webhook = None
    if webhook_listen is not None and webhook_secret_file is not None:
        webhook = http.Webhook(
            secret=_read_secret(webhook_secret_file),
            inbox=inbox,
            log=log,
            clock=clock,
            metrics=metrics,
        )
    parts.extend(
        _servers(
            listen=listen,
            webhook_listen=webhook_listen,
            health=health,
            metrics=metrics,
            webhook=webhook,
        )
    )
    started: list[triggers.Source | http.Server] = []
    try:
        for part in parts:
            part.start()
            started.append(part)
        for server in started:
            if isinstance(server, http.Server):
                host, port = server.address
                log.record("listening", address=f"{host}:{port}", serves=server.serves)
        log.record(
            "start",
            source=urls.display_url(source) if remote else str(directory.open_directory(source)),
            ref=git_flags.ref,
            pid=os.getpid(),
            debounce_s=debounce,
            interval_s=interval if remote else None,
            resync_s=resync,
            refresh=plan_options.refresh,
        )
        with _SignalHandlers(loop=loop, inbox=inbox, log=log):
            loop.run()
    finally:
        for part in reversed(started):
            part.close()
    log.record("stopped")
    return 0


def _change_trigger(
    *,
    source: str,
    remote: str | None,
    ref: str | None,
    interval: float,
    debounce: float,
    inbox: Inbox,
    log: logs.Log,
    loaded: Callable[[], str | None],
    metrics: Metrics,
) -> triggers.Source:
    """What notices a change: file events below a directory, or the poller of a git
    remote (``loaded``: the commit the last cycle loaded)."""
    if remote is None:
        return triggers.FileChanges(
            root=directory.open_directory(source),
            inbox=inbox,
            log=log,
            clock=time.monotonic,
            debounce=debounce,
        )
    check = poll.GitPoll(
        url=remote,
        ref=ref,
        timeout=gitcmd.timeout_from_env(),
        loaded=loaded,
        count=metrics.count_poll,
    )
    return triggers.Periodic(
        every=interval,
        trigger=Trigger.POLL,
        inbox=inbox,
        log=log,
        clock=time.monotonic,
        check=check,
    )


def _git_remote(source: str, git_flags: options.GitFlags) -> str | None:
    """The URL to poll: a git URL, or a local repository read at ``--ref``; None for a
    directory (watched for file events). A missing directory fails here, at start."""
    if urls.is_git_url(source):
        return source
    base = directory.open_directory(source)
    if git_flags.ref is None:
        return None
    if not directory.is_repository(base):
        raise RuneSyncError(
            f"--ref {git_flags.ref!r} needs a git repository, and {source!r} is a plain "
            "directory (for a subdirectory of it, use --path alone)"
        )
    return urls.file_url(base)


def _read_secret(path: Path) -> bytes:
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise RuneSyncError(
            f"cannot read the webhook secret file {path}: {exc.strerror or exc}"
        ) from None
    if not secret:
        raise RuneSyncError(f"the webhook secret file {path} is empty")
    return secret


def _servers(
    *,
    listen: tuple[str, int] | None,
    webhook_listen: tuple[str, int] | None,
    health: Health,
    metrics: Metrics,
    webhook: http.Webhook | None,
) -> list[http.Server]:
    wanted: dict[tuple[str, int], http.Routes] = {}
    if listen is not None:
        wanted[listen] = http.Routes(health=health, metrics=metrics)
    if webhook_listen is not None:
        same = wanted.get(webhook_listen, http.Routes())
        wanted[webhook_listen] = http.Routes(
            health=same.health, metrics=same.metrics, webhook=webhook
        )
    servers = []
    for (host, port), routes in wanted.items():
        try:
            servers.append(http.Server(host=host, port=port, routes=routes))
        except OSError as exc:
            raise RuneSyncError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return servers


class _SignalHandlers:
    """SIGTERM/SIGINT stop the loop (a second one aborts at once); SIGHUP queues a reload."""

    def __init__(self, *, loop: Loop, inbox: Inbox, log: logs.Log) -> None:
        self._loop = loop
        self._inbox = inbox
        self._log = log
        self._previous: dict[int, object] = {}
        self._stopping = threading.Event()

    def __enter__(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._stop)
        self._previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._reload)

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._previous.items():
            signal.signal(sig, old)  # type: ignore[arg-type]  # what signal.signal returned

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping.is_set():
            sys.stderr.write("Second signal: aborting at once.\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        self._stopping.set()
        self._log.record(
            "stopping",
            level="warning",
            signal=signal.Signals(signum).name,
            detail="running operations finish and are recorded; signal again to abort",
        )
        self._loop.stop()

    def _reload(self, signum: int, frame: FrameType | None) -> None:
        self._log.record("reload", detail="SIGHUP: the next cycle reads the runefile again")
        self._inbox.push(Request(trigger=Trigger.RELOAD, at=time.monotonic()))
