"""Options shared by several commands, attached to each command that takes them."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from rune_sync.plan.model import Options
from rune_sync.source.base import TrustPolicy
from rune_sync.spec.model import Address
from rune_sync.state.target import check_state_name

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


@dataclass(frozen=True, slots=True, kw_only=True)
class StateOption:
    """``--state`` and ``--state-name`` as given (``None``: not given); resolved against
    the environment and the runefile by :func:`rune_sync.cli.pipeline.state_target`."""

    location: str | None = None
    name: str | None = None


def check_state_name_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """Click callback: a valid state name (or ``None``), else a usage error."""
    if value is None:
        return None
    try:
        return check_state_name(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def state_option(func: F) -> F:
    """``--state PATH|URL`` and ``--state-name NAME``, folded into one
    :class:`StateOption` in the command's ``state`` parameter."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state = StateOption(location=kwargs.pop("state"), name=kwargs.pop("state_name"))
        return func(*args, state=state, **kwargs)

    wrapper = click.option(
        "--state-name",
        default=None,
        envvar="RUNE_SYNC_STATE_NAME",
        metavar="NAME",
        callback=check_state_name_option,
        help="Which state of a PostgreSQL database (else RUNE_SYNC_STATE_NAME, the "
        "runefile's sync.stateName, or default); a SQLite file holds only 'default'.",
    )(wrapper)
    wrapper = click.option(
        "--state",
        default=None,
        metavar="PATH|URL",
        help="State location: a file, or postgresql://… (else RUNE_SYNC_STATE, the "
        "runefile's sync.state, or .rune-sync/state.db).",
    )(wrapper)
    return cast(F, wrapper)  # click keeps the callable's shape; only the options are folded


def secrets_dir_option(func: F) -> F:
    return click.option(
        "--secrets-dir",
        type=click.Path(path_type=Path, file_okay=False),
        envvar="RUNE_SYNC_SECRETS_DIR",
        default=None,
        help="Directory of secrets: DIR/<namespace>/<name>/<key> (also RUNE_SYNC_SECRETS_DIR).",
    )(func)


_PLAN_FLAGS = (
    "targets",
    "refresh",
    "no_refresh",
    "allow_replace",
    "allow_destroy",
    "allow_mass_delete",
    "no_snapshot_before_destroy",
)


def _plan_choices(
    *,
    targets: tuple[str, ...],
    refresh: bool,
    no_refresh: bool,
    allow_replace: bool,
    allow_destroy: bool,
    allow_mass_delete: bool,
    no_snapshot_before_destroy: bool,
) -> Options:
    for target in targets:
        try:
            Address.parse(target)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--target") from None
    return Options(
        allow_replace=allow_replace,
        allow_destroy=allow_destroy,
        allow_mass_delete=allow_mass_delete,
        snapshot_before_destroy=not no_snapshot_before_destroy,
        refresh=refresh and not no_refresh,
        targets=targets,
    )


def plan_options(func: F) -> F:
    """The choices that shape a plan: targets, refresh, and the destructive-action flags.

    The command receives them as one :class:`~rune_sync.plan.model.Options` value in
    its ``plan_options`` parameter (plan, apply and watch share them)."""
    decorators = [
        click.option(
            "--target",
            "targets",
            multiple=True,
            metavar="ADDRESS",
            help="Limit the plan to ADDRESS and what it depends on (repeatable).",
        ),
        click.option(
            "--refresh",
            type=click.BOOL,
            default=True,
            show_default=True,
            metavar="true|false",
            help="Ask drivers what exists (drift).",
        ),
        click.option("--no-refresh", is_flag=True, default=False, help="Same as --refresh=false."),
        click.option(
            "--allow-replace",
            is_flag=True,
            help="Allow replacing (destroying and "
            "re-creating) resources whose immutable fields changed.",
        ),
        click.option(
            "--allow-destroy",
            is_flag=True,
            help="Allow destroying resources removed "
            "from the source under reclaimPolicy delete, and deleting removed snapshots.",
        ),
        click.option(
            "--allow-mass-delete",
            is_flag=True,
            help="Allow a plan that forgets or destroys more than half of the managed volumes.",
        ),
        click.option(
            "--no-snapshot-before-destroy",
            is_flag=True,
            help="Do not snapshot a volume before destroying or replacing it.",
        ),
    ]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flags = {name: kwargs.pop(name) for name in _PLAN_FLAGS}
        return func(*args, plan_options=_plan_choices(**flags), **kwargs)

    for decorate in reversed(decorators):
        wrapper = decorate(wrapper)
    return cast(F, wrapper)  # click keeps the callable's shape; only the flags are folded


_DURATION = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in ``0``, ``300ms``, ``30s``, ``10m``, ``1h`` (DESIGN §12); decimals allowed
    (``1.5s``). Raises ``ValueError`` for anything else."""
    spelled = text.strip()
    if spelled == "0":
        return 0.0
    match = _DURATION.fullmatch(spelled)
    if match is None:
        raise ValueError(f"{text!r} is not a duration: write e.g. 0, 300ms, 30s, 10m or 1h")
    return float(match["number"]) * _SECONDS[match["unit"]]


class DurationType(click.ParamType[float]):
    name = "DURATION"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def lock_timeout_option(func: F) -> F:
    return click.option(
        "--lock-timeout",
        type=DurationType(),
        default="0",
        show_default=True,
        help="How long to wait for the state's lock: 0 fails at once naming the holder; "
        "e.g. 300ms, 30s, 10m, 1h.",
    )(func)


@dataclass(frozen=True, slots=True, kw_only=True)
class GitFlags:
    """``--ref``, ``--path`` and the history rules, as one value (``git_flags``)."""

    ref: str | None = None
    path: str | None = None
    trust: TrustPolicy = field(default_factory=TrustPolicy)


_LOCATION_FLAGS = ("ref", "path")
_TRUST_FLAGS = (
    "allow_rollback",
    "require_signed",
    "trusted_keys",
    "allowed_signers",
    "verify_tip_only",
)


def _location_decorators() -> list[Callable[[Any], Any]]:
    return [
        click.option(
            "--ref",
            default=None,
            metavar="BRANCH|TAG|SHA",
            help="The branch, tag or commit of a git SOURCE to read; the remote's HEAD when "
            "not given. With a local repository path: read that repository at REF, not its "
            "working tree.",
        ),
        click.option(
            "--path",
            default=None,
            metavar="SUBDIR",
            help="Read only SUBDIR of the source; the runefile is looked up there.",
        ),
    ]


def _trust_choices(
    *,
    allow_rollback: bool,
    require_signed: bool,
    trusted_keys: Path | None,
    allowed_signers: Path | None,
    verify_tip_only: bool,
) -> TrustPolicy:
    keys = trusted_keys is not None or allowed_signers is not None
    if require_signed and not keys:
        raise click.UsageError(
            "--require-signed needs --trusted-keys FILE or --allowed-signers FILE"
        )
    if not require_signed:
        for given, flag in (
            (trusted_keys is not None, "--trusted-keys"),
            (allowed_signers is not None, "--allowed-signers"),
            (verify_tip_only, "--verify-tip-only"),
        ):
            if given:
                raise click.UsageError(f"{flag} takes effect only with --require-signed")
    return TrustPolicy(
        allow_rollback=allow_rollback,
        require_signed=require_signed,
        trusted_keys=trusted_keys,
        allowed_signers=allowed_signers,
        verify_tip_only=verify_tip_only,
    )


def _fold_git(func: F, decorators: list[Callable[[Any], Any]], *, trust: bool) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ref, path = (kwargs.pop(name) for name in _LOCATION_FLAGS)
        policy = (
            _trust_choices(**{name: kwargs.pop(name) for name in _TRUST_FLAGS})
            if trust
            else TrustPolicy()
        )
        return func(*args, git_flags=GitFlags(ref=ref, path=path, trust=policy), **kwargs)

    for decorate in reversed(decorators):
        wrapper = decorate(wrapper)
    return cast(F, wrapper)  # click keeps the callable's shape; only the flags are folded


def git_location_options(func: F) -> F:
    """``--ref`` and ``--path`` alone (validate), folded into ``git_flags: GitFlags``."""
    return _fold_git(func, _location_decorators(), trust=False)


def git_options(func: F) -> F:
    """Every git flag — ``--ref``, ``--path``, ``--allow-rollback``, ``--require-signed``,
    ``--trusted-keys``, ``--allowed-signers``, ``--verify-tip-only`` — folded into the
    command's ``git_flags: GitFlags`` parameter (plan, apply and watch share them).
    Signature flags without ``--require-signed``, or it without keys, are usage errors."""
    key_file = click.Path(exists=True, dir_okay=False, path_type=Path)
    decorators = [
        *_location_decorators(),
        click.option(
            "--allow-rollback",
            is_flag=True,
            help="Accept a git commit that does not descend from the last applied one.",
        ),
        click.option(
            "--require-signed",
            is_flag=True,
            help="Every commit since the last applied one must carry a good signature "
            "from a trusted key.",
        ),
        click.option(
            "--trusted-keys",
            type=key_file,
            default=None,
            metavar="FILE",
            help="Armored OpenPGP public keys trusted by --require-signed.",
        ),
        click.option(
            "--allowed-signers",
            type=key_file,
            default=None,
            metavar="FILE",
            help="SSH keys trusted by --require-signed (git's allowedSignersFile format).",
        ),
        click.option(
            "--verify-tip-only",
            is_flag=True,
            help="With --require-signed, check the target commit alone.",
        ),
    ]
    return _fold_git(func, decorators, trust=True)


def execution_options(func: F) -> F:
    """``--parallelism`` and ``--stall-after``: how apply (and each watch cycle) runs."""
    func = click.option(
        "--stall-after",
        type=click.IntRange(1, 1000),
        default=3,
        show_default=True,
        help="Failed runs after which a volume is Stalled (until `rune-sync state retry`).",
    )(func)
    return click.option(
        "--parallelism",
        type=click.IntRange(1, 256),
        default=10,
        show_default=True,
        help="How many driver operations run at once.",
    )(func)
