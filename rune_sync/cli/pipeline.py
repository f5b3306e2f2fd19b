"""Wires the stages for the commands: source → validate → expand → secrets → state →
history checks (git) → refresh → plan.

The one place that strings the pipeline together; commands call it with typed options
and hand its values to views. Settings precedence (DESIGN §2): flag > environment
(``RUNE_SYNC_*``) > runefile ``sync`` section > default.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from rune_sync import __version__, secrets
from rune_sync.cli import wiring
from rune_sync.cli.options import StateOption
from rune_sync.diagnostics import Diagnostic, has_errors, sorted_diagnostics
from rune_sync.drivers.base import Observation
from rune_sync.drivers.registry import DriverRegistry
from rune_sync.errors import PlanError, SpecError, StateError, ValidationError
from rune_sync.plan import planner, refresh
from rune_sync.plan.model import Options, Plan
from rune_sync.source import gitcmd, history, opener, urls
from rune_sync.source.base import SourceKind, SourceRequest, SourceSnapshot, TrustPolicy
from rune_sync.spec import expand
from rune_sync.spec import validate as validation
from rune_sync.spec.model import Address, Runefile
from rune_sync.state import DEFAULT_PATH
from rune_sync.state.backend import StateBackend, StateNotFoundError, open_backend
from rune_sync.state.model import SourceInfo, StateMeta, StateRecord
from rune_sync.state.model import SourceKind as StateSourceKind
from rune_sync.state.target import DEFAULT_STATE_NAME, StateTarget

STATE_ENV = "RUNE_SYNC_STATE"


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceArgs:
    """SOURCE and the flags that say how to read it.

    ``ref`` and ``path`` are ``--ref`` and ``--path``; ``trust`` holds the git history
    rules (``--allow-rollback``, ``--require-signed`` and its keys), applied by
    :func:`make_plan` (or :func:`check_history`) once the state is known.
    """

    source: str = "."
    runefile: Path | None = None
    ref: str | None = None
    path: str | None = None
    trust: TrustPolicy = field(default_factory=TrustPolicy)

    @property
    def request(self) -> SourceRequest:
        return SourceRequest(source=self.source, ref=self.ref, path=self.path)


@dataclass(frozen=True, slots=True, kw_only=True)
class Loaded:
    """A validated source ready to plan: its specs expanded, its settings, its warnings."""

    validated: validation.Validated
    desired: expand.DesiredSet
    root: Path
    snapshot: SourceSnapshot
    trust: TrustPolicy = field(default_factory=TrustPolicy)

    @property
    def runefile(self) -> Runefile:
        return self.validated.runefile

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.validated.diagnostics if not d.is_error)


def validate_source(
    args: SourceArgs, *, cache: validation.SourceCache | None = None
) -> tuple[SourceSnapshot, validation.Validated]:
    """Open the source (a directory, or a git commit fetched into the cache) and
    validate it; files of a git source are named relative to its root. ``cache``
    (watch) keeps unchanged files' parses between calls."""
    snapshot = opener.open_source(args.request)
    capabilities, parameter_rules = wiring.driver_declarations()
    validated = validation.validate_directory(
        snapshot.root,
        drivers=capabilities,
        parameter_rules=parameter_rules,
        runefile=args.runefile,
        cwd=snapshot.shown_from,
        cache=cache,
    )
    return snapshot, validated


def load_source(args: SourceArgs, *, cache: validation.SourceCache | None = None) -> Loaded:
    """Validate and expand the source; a ValidationError carries every diagnostic.

    A git source whose ref did not move costs one ``git ls-remote`` and a look into the
    cache (nothing is cloned again). ``cache`` (watch) keeps unchanged files' parses
    between calls."""
    snapshot, validated = validate_source(args, cache=cache)
    if not validated.ok:
        raise ValidationError(validated.diagnostics)
    desired = expand.desired_set(validated.specs, validated.runefile.storage)
    return Loaded(
        validated=validated,
        desired=desired,
        root=snapshot.root,
        snapshot=snapshot,
        trust=args.trust,
    )


def last_applied_commit(loaded: Loaded, meta: StateMeta | None) -> str | None:
    """The commit the state last applied from the same repository, if any."""
    recorded = meta.source if meta is not None else None
    if (
        recorded is None
        or recorded.kind is not StateSourceKind.GIT
        or recorded.commit is None
        or loaded.snapshot.kind is not SourceKind.GIT
        or not urls.same_repository(recorded.url, loaded.snapshot.url)
    ):
        return None
    return recorded.commit


def check_history(loaded: Loaded, meta: StateMeta | None) -> None:
    """Refuse a git commit that moves back from the last applied one, or that lacks the
    signatures ``--require-signed`` asks for (RollbackError, SignatureError)."""
    history.check(
        loaded.snapshot,
        previous=last_applied_commit(loaded, meta),
        policy=loaded.trust,
        timeout=gitcmd.timeout_from_env(),
    )


def secret_resolver(loaded: Loaded, secrets_dir: Path | None) -> secrets.Resolver:
    """DESIGN §9's chain for this source: ``secrets_dir`` (``--secrets-dir``, else
    ``RUNE_SYNC_SECRETS_DIR``), the ``RUNE_SECRET_*`` environment, the source's secrets."""
    return secrets.Resolver.from_sources(
        secrets_dir=secrets_dir, resources=loaded.validated.specs.secrets
    )


def check_secrets(loaded: Loaded, resolver: secrets.Resolver) -> tuple[Diagnostic, ...]:
    """Every secret reference of the desired state resolves (DESIGN §3, §9).

    Runs after :func:`load_source` and before any driver call (refresh included).
    Raises ``ValidationError`` carrying an error per reference that does not resolve
    (with the source's warnings); returns the warnings the secret sources raised.
    """
    found = secrets.check(loaded.desired, resolver)
    if has_errors(found):
        raise ValidationError(sorted_diagnostics([*loaded.warnings, *found]))
    return found


def state_target(flag: StateOption | str | None, runefile: Runefile | None = None) -> StateTarget:
    """Which state: its location from --state, else RUNE_SYNC_STATE, else the runefile's
    ``sync.state``, else the default path; its name from --state-name (or
    RUNE_SYNC_STATE_NAME, read by the option), else the runefile's ``sync.stateName``,
    else ``default``."""
    given = flag if isinstance(flag, StateOption) else StateOption(location=flag)
    sync = runefile.sync if runefile is not None else {}
    location = given.location or os.environ.get(STATE_ENV) or _setting(sync, "state")
    name = given.name or _setting(sync, "stateName") or DEFAULT_STATE_NAME
    try:
        return StateTarget(location=location or str(DEFAULT_PATH), name=name)
    except ValueError as exc:
        raise StateError(f"runefile sync.stateName: {exc}") from None


def _setting(sync: Mapping[str, object], key: str) -> str | None:
    value = sync.get(key)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True, kw_only=True)
class StateView:
    """What planning reads from the state (an absent state reads as empty)."""

    meta: StateMeta | None
    records: Mapping[Address, StateRecord] = field(default_factory=dict)


def read_state(target: StateTarget | str) -> StateView:
    """Load the state without creating or locking it."""
    try:
        backend = open_backend(target, create=False)
    except StateNotFoundError:
        return StateView(meta=None)
    with backend:
        return StateView(meta=backend.meta(), records=backend.load_all())


@contextmanager
def writable_state(target: StateTarget | str) -> Iterator[StateBackend]:
    """Open (creating if needed) the state for writing."""
    backend = open_backend(target, create=True)
    with backend:
        yield backend


@contextmanager
def existing_state(target: StateTarget | str) -> Iterator[StateBackend | None]:
    """Open the state for writing if it exists; ``None`` when it does not, and then
    nothing is written (no file, no directory, no lock): a command that may still be
    refused creates it later, with :func:`writable_state`."""
    try:
        backend = open_backend(target, create=False)
    except StateNotFoundError:
        yield None
        return
    with backend:
        yield backend


def make_plan(
    loaded: Loaded,
    state: StateView,
    options: Options,
    registry: DriverRegistry | None = None,
    *,
    resolver: secrets.Resolver | None = None,
) -> Plan:
    """Check the source's history, refresh (unless switched off) and plan; stamps the
    plan with its provenance (for git: the commit, its author, date and subject).

    A git source that moved back from the commit the state last applied, or that lacks
    required signatures, is refused here, before any driver is asked anything.
    With ``resolver``, refresh hands drivers their recorded parameters with secret
    references resolved, and cleans resolved values out of their errors.
    """
    check_history(loaded, state.meta)
    registry = registry or wiring.driver_registry(loaded.runefile.storage)
    observations = _refresh(state, registry, resolver) if options.refresh else {}
    plan = planner.make_plan(
        planner.PlanInput(
            desired=loaded.desired,
            records=state.records,
            capabilities=registry.capabilities(),
            observations=observations,
            options=options,
        )
    )
    return replace(
        plan,
        lineage=state.meta.lineage if state.meta else None,
        serial=state.meta.serial if state.meta else 0,
        input_digest=loaded.validated.digest,
        source={**loaded.snapshot.provenance(), "digest": loaded.validated.digest},
        tool_version=__version__,
    )


def source_info(plan: Plan, digest: str) -> SourceInfo:
    """What the state records as last applied: the plan's source, with today's digest."""
    try:
        return SourceInfo.from_json({**(plan.source or {}), "digest": digest})
    except ValueError as exc:
        raise PlanError(f"the plan does not say which source it was made from: {exc}") from None


def record_new_commit(backend: StateBackend, plan: Plan, digest: str) -> None:
    """A git commit with nothing to change is still applied: the state records it, so
    that the rollback check starts from it (a directory's no-op leaves the state alone).
    Called by apply and watch with the state's lock held."""
    info = source_info(plan, digest)
    recorded = backend.meta().source
    if info.commit is None or (
        recorded is not None and recorded.commit == info.commit and recorded.url == info.url
    ):
        return
    backend.bump_serial(source=info)


def _refresh(
    state: StateView, registry: DriverRegistry, resolver: secrets.Resolver | None
) -> dict[Address, Observation]:
    if resolver is None:
        return refresh.observe(state.records, registry)
    drivers = secrets.GuardedDrivers(registry.get, resolver.redactor)
    return refresh.observe(state.records, drivers, resolve=resolver)


def spec_problems(exc: SpecError) -> tuple[Diagnostic, ...]:
    return exc.diagnostics
