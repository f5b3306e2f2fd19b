"""The values the state holds: records, the state's metadata, its source and lock holders.

Owned here: :class:`StateRecord` (one per address), :class:`StateMeta` (lineage, serial,
last applied source, schema version), :class:`SourceInfo`, :class:`LockInfo`, and the
pure helpers they rest on: freezing and digesting a JSON spec, and the one timestamp
format of the state (ISO-8601 UTC with microseconds and a ``Z``).

Written by apply (through a backend), read by plan and the ``state`` commands, stored by
:mod:`rune_sync.state.sqlite` and carried by :mod:`rune_sync.state.export`. Nothing here
does I/O; a record is checked when it is built, so a backend only ever sees valid values.

Status is two things: the lifecycle ``status`` of the kind (DESIGN §5) and the
``retained`` flag. A volume or snapshot that left the source under ``retain`` keeps its
last status and handle with ``retained=True``; it belongs to the operator from then on,
and a plan re-adopts it (``retained=False``) when it comes back.
"""

from __future__ import annotations

import enum
import getpass
import hashlib
import json
import math
import os
import socket
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TypeAlias, TypedDict, Unpack

from rune_sync.spec.model import Address, Kind, SnapshotStatus, VolumeStatus

JsonValue: TypeAlias = (
    str | int | float | bool | Mapping[str, "JsonValue"] | Sequence["JsonValue"] | None
)
"""A JSON value. Frozen ones (:func:`freeze_json`, every record's spec) hold read-only
mappings for objects and tuples for arrays."""

JsonObject: TypeAlias = Mapping[str, JsonValue]

EMPTY_PARAMETERS: Mapping[str, str] = MappingProxyType({})

CLASS_AVAILABLE = VolumeStatus.AVAILABLE.value
"""The only status of a storage class record: classes have no lifecycle of their own."""

MAX_COUNT = 2**63 - 1
"""The largest ``attempts``/``failed_runs`` (a 64-bit integer column in every backend)."""

INTENTS: frozenset[str] = frozenset(
    {
        "provision",
        "restore",
        "expand",
        "delete",
        "snapshot",
        "delete-snapshot",
        "predestroy-snapshot",
    }
)
"""The driver operations a record's ``intent`` may name (see :class:`StateRecord`)."""

_STATUSES: Mapping[Kind, frozenset[str]] = MappingProxyType(
    {
        Kind.STORAGE_CLASS: frozenset({CLASS_AVAILABLE}),
        Kind.VOLUME: frozenset(s.value for s in VolumeStatus),
        Kind.SNAPSHOT: frozenset(s.value for s in SnapshotStatus),
    }
)


def statuses_for(kind: Kind) -> frozenset[str]:
    """The status values a record of ``kind`` may carry; raises ``ValueError`` for kinds
    the state does not store."""
    try:
        return _STATUSES[kind]
    except KeyError:
        raise ValueError(f"the state does not store {kind.value} resources") from None


# --------------------------------------------------------------------------- time


def format_timestamp(moment: datetime) -> str:
    """``2025-11-21T12:00:00.000000Z``: the one textual form of a time in the state."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Inverse of :func:`format_timestamp`; also accepts any ISO-8601 time with an offset.

    Raises ``ValueError`` for text without a UTC offset (a naive time is ambiguous).
    """
    moment = datetime.fromisoformat(text)
    zone = moment.tzinfo
    if zone is None:
        raise ValueError(f"{text!r} has no UTC offset (write e.g. 2025-11-21T12:00:00Z)")
    return moment if zone is UTC else moment.astimezone(UTC)


def _utc(name: str, moment: object) -> datetime:
    if type(moment) is datetime and moment.tzinfo is UTC:
        return moment
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {moment!r}")
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


# --------------------------------------------------------------------------- JSON specs


def freeze_json(value: object, *, where: str = "spec") -> JsonValue:
    """A deep, read-only copy of a JSON value (dicts → mappings, lists → tuples).

    Raises ``ValueError`` naming the place of anything JSON cannot carry: non-string
    keys, NaN or infinite floats, other types.
    """
    try:
        return _freeze(value)
    except _NotJson as exc:
        place = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in reversed(exc.path))
        raise ValueError(f"{where}{place}: {exc.problem}") from None


class _NotJson(Exception):
    def __init__(self, problem: str) -> None:
        self.problem = problem
        self.path: list[str | int] = []  # innermost first, filled while unwinding


def _freeze(value: object) -> JsonValue:
    # The hot path of loading a state: plain types are dispatched on type() first.
    kind = type(value)
    if value is None or type(value) is str or type(value) is int or type(value) is bool:
        return value
    if kind is dict or kind is MappingProxyType or isinstance(value, Mapping):
        assert isinstance(value, Mapping)  # for the type checker: checked just above
        frozen: dict[str, JsonValue] = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotJson(f"key {key!r} is not a string")
            try:
                frozen[key] = _freeze(item)
            except _NotJson as exc:
                exc.path.append(key)
                raise
        return MappingProxyType(frozen)
    if kind is list or kind is tuple:
        assert isinstance(value, list | tuple)  # for the type checker: checked just above
        items: list[JsonValue] = []
        for index, item in enumerate(value):
            try:
                items.append(_freeze(item))
            except _NotJson as exc:
                exc.path.append(index)
                raise
        return tuple(items)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJson(f"{value!r} is not a JSON number")
        return float(value)
    if isinstance(value, str):  # a StrEnum member is kept as its plain text
        return str.__str__(value)
    if isinstance(value, int):  # an IntEnum member is kept as its plain number
        return int(value)
    raise _NotJson(f"a {kind.__name__} is not a JSON value")


def thaw_json(value: JsonValue) -> object:
    """A plain, mutable copy (dicts and lists) of a frozen JSON value, for encoders."""
    if isinstance(value, Mapping):
        return {key: thaw_json(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [thaw_json(item) for item in value]
    return value


def _encode_frozen(value: object) -> object:
    if isinstance(value, CanonicalSpec):
        return value._mapping()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def canonical_json(value: JsonValue) -> str:
    """Sorted keys, no spaces, UTF-8 kept: equal values always give equal text."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_encode_frozen,
    )


def spec_digest(spec: JsonObject) -> str:
    """The sha256 hex digest of the canonical JSON of ``spec``."""
    return CanonicalSpec.of(spec).digest


class CanonicalSpec(Mapping[str, JsonValue]):
    """A spec held as its canonical JSON text, read-only, parsed on first use.

    Every :class:`StateRecord` keeps its spec this way: equality and :attr:`digest` come
    from the text (cheap), and a backend that loads thousands of records hands over the
    stored text without decoding specs nobody reads. Build one with :meth:`of` from any
    JSON mapping, or directly from text that :func:`canonical_json` wrote; text that is
    not a JSON object raises ``ValueError`` when first read.
    """

    __slots__ = ("_digest", "_text", "_value")

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise ValueError(f"a canonical spec is JSON text, got {type(text).__name__}")
        self._text = text
        self._value: JsonObject | None = None
        self._digest: str | None = None

    @classmethod
    def of(cls, spec: object) -> CanonicalSpec:
        """The canonical form of a JSON object; ``ValueError`` for anything else."""
        if isinstance(spec, CanonicalSpec):
            return spec
        if not isinstance(spec, Mapping):
            raise ValueError(f"spec must be a JSON object, got {type(spec).__name__}")
        frozen = freeze_json(spec)
        assert isinstance(frozen, Mapping)  # a Mapping freezes to a Mapping
        made = cls(canonical_json(frozen))
        made._value = frozen
        return made

    @property
    def text(self) -> str:
        return self._text

    @property
    def digest(self) -> str:
        """sha256 hex of :attr:`text`."""
        if self._digest is None:
            self._digest = hashlib.sha256(self._text.encode("utf-8")).hexdigest()
        return self._digest

    def _mapping(self) -> JsonObject:
        if self._value is None:
            try:
                value = freeze_json(json.loads(self._text))
            except json.JSONDecodeError as exc:
                raise ValueError(f"stored spec is not JSON: {exc}") from None
            if not isinstance(value, Mapping):
                raise ValueError("stored spec is not a JSON object")
            self._value = value
        return self._value

    def __getitem__(self, key: str) -> JsonValue:
        return self._mapping()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CanonicalSpec):
            return self._text == other._text
        return super().__eq__(other)

    def __repr__(self) -> str:
        return f"CanonicalSpec({self._text})"


def _freeze_parameters(parameters: object) -> Mapping[str, str]:
    if parameters is EMPTY_PARAMETERS:
        return EMPTY_PARAMETERS
    if not isinstance(parameters, Mapping):
        raise ValueError("driver_parameters must be a mapping of str to str")
    if not parameters:
        return EMPTY_PARAMETERS
    for key, value in parameters.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"driver_parameters[{key!r}] must map a str to a str")
    return MappingProxyType(dict(parameters))  # a copy: the caller may keep changing theirs


# --------------------------------------------------------------------------- records


class RecordChanges(TypedDict, total=False):
    """The fields :meth:`StateRecord.with_changes` may change (all but the address and
    the timestamps, which it manages)."""

    spec: JsonObject
    driver: str
    status: str
    retained: bool
    handle: str | None
    bound_claim: str | None
    owner_service: str | None
    attempts: int
    failed_runs: int
    failure_message: str | None
    intent: str | None
    driver_parameters: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class StateRecord:
    """What the state knows about one address (DESIGN §5).

    ``spec`` is the normalised spec as a frozen JSON object; :attr:`spec_digest` is the
    sha256 of its canonical JSON. ``status`` is a value of
    :func:`statuses_for` the address's kind; ``retained`` marks a forgotten volume or
    snapshot kept for its handle. ``driver_parameters`` holds the merged class + volume
    parameters at provision time with secret references as written (``secret:…``) —
    never resolved values. ``attempts`` counts driver attempts in the last run,
    ``failed_runs`` consecutive failed runs (the ``--stall-after`` counter). ``intent``
    is the driver operation in flight when the record was written (``provision``,
    ``restore``, ``expand``, ``delete``, ``snapshot``, ``delete-snapshot``,
    ``predestroy-snapshot``), ``None`` when nothing is in flight; :data:`INTENTS` holds
    the allowed values. Apply writes it before a driver call and clears it with the
    result, so a record left by a crash says what was under way. Times are
    timezone-aware and normalised to UTC.

    Building a record checks every field and raises ``ValueError`` saying which one is
    wrong. Change a record with :meth:`with_changes` (or ``dataclasses.replace``).
    """

    address: Address
    spec: JsonObject
    driver: str
    status: str
    created_at: datetime
    updated_at: datetime
    retained: bool = False
    handle: str | None = None
    bound_claim: str | None = None
    owner_service: str | None = None
    attempts: int = 0
    failed_runs: int = 0
    failure_message: str | None = None
    intent: str | None = None
    driver_parameters: Mapping[str, str] = field(default_factory=lambda: EMPTY_PARAMETERS)

    def __post_init__(self) -> None:
        # Written for speed: loading a state builds every record through here.
        address = self.address
        if type(address) is not Address:
            raise ValueError(f"address must be an Address, got {address!r}")
        status = self.status
        if status not in statuses_for(address.kind):
            allowed = ", ".join(sorted(statuses_for(address.kind)))
            raise ValueError(f"{address}: status {status!r} is not one of {allowed}")
        handle, bound, owner, message, intent = (
            self.handle,
            self.bound_claim,
            self.owner_service,
            self.failure_message,
            self.intent,
        )
        attempts, failed_runs = self.attempts, self.failed_runs
        if not (
            (self.retained is False or self.retained is True)
            and type(self.driver) is str
            and (handle is None or type(handle) is str)
            and (bound is None or type(bound) is str)
            and (owner is None or type(owner) is str)
            and (message is None or type(message) is str)
            and (intent is None or (isinstance(intent, str) and intent in INTENTS))
            and type(attempts) is int
            and 0 <= attempts <= MAX_COUNT
            and type(failed_runs) is int
            and 0 <= failed_runs <= MAX_COUNT
        ):
            raise ValueError(f"{address}: {self._first_bad_field()}")
        if self.retained and address.kind is Kind.STORAGE_CLASS:
            raise ValueError(f"{address}: a storage class record cannot be retained")
        set_field = object.__setattr__
        if type(status) is not str:  # a VolumeStatus member is kept as its plain value
            set_field(self, "status", str(status))
        if intent is not None and type(intent) is not str:  # a StrEnum member: its value
            set_field(self, "intent", str.__str__(intent))
        set_field(self, "spec", CanonicalSpec.of(self.spec))
        set_field(self, "driver_parameters", _freeze_parameters(self.driver_parameters))
        set_field(self, "created_at", _utc("created_at", self.created_at))
        set_field(self, "updated_at", _utc("updated_at", self.updated_at))

    def _first_bad_field(self) -> str:
        if self.retained is not False and self.retained is not True:
            return "retained must be a bool"
        if type(self.driver) is not str:
            return "driver must be a str"
        for name in ("handle", "bound_claim", "owner_service", "failure_message"):
            value = getattr(self, name)
            if value is not None and type(value) is not str:
                return f"{name} must be a str or None"
        intent = self.intent
        if intent is not None:
            if not isinstance(intent, str):
                return "intent must be a str or None"
            if intent not in INTENTS:
                return f"intent {intent!r} is not one of {', '.join(sorted(INTENTS))}"
        for name in ("attempts", "failed_runs"):
            value = getattr(self, name)
            if not (type(value) is int and 0 <= value <= MAX_COUNT):
                return f"{name} must be a whole number from 0 to {MAX_COUNT}"
        return "a field is invalid"

    @property
    def kind(self) -> Kind:
        """The kind, taken from the address (they can never disagree)."""
        return self.address.kind

    @property
    def spec_digest(self) -> str:
        """sha256 hex of the canonical JSON of :attr:`spec`."""
        return CanonicalSpec.of(self.spec).digest

    @property
    def spec_json(self) -> str:
        """The canonical JSON text of :attr:`spec` (what backends store)."""
        return CanonicalSpec.of(self.spec).text

    def with_changes(self, *, now: datetime, **changes: Unpack[RecordChanges]) -> StateRecord:
        """A copy with ``changes`` applied and ``updated_at`` set to ``now``.

        Field names are those of the dataclass (type-checked through
        :class:`RecordChanges`); an invalid value raises ``ValueError``. The digest
        follows a changed spec.
        """
        return replace(self, updated_at=now, **changes)

    def retain(self, *, now: datetime) -> StateRecord:
        """The record kept after a forget: same handle and status, owned by the operator."""
        return self.with_changes(now=now, retained=True)

    def adopt(self, *, now: datetime) -> StateRecord:
        """A retained record managed again because its address is back in the source."""
        return self.with_changes(now=now, retained=False)

    def unstall(self, *, now: datetime) -> StateRecord:
        """``state retry``: a Stalled record becomes Failed with its run counter reset, so
        the next run tries it again. Raises ``ValueError`` for a record that is not Stalled.
        """
        if self.status != VolumeStatus.STALLED.value:
            raise ValueError(f"{self.address} is {self.status}, not Stalled: nothing to retry")
        return self.with_changes(
            now=now, status=VolumeStatus.FAILED.value, failed_runs=0, attempts=0
        )


# --------------------------------------------------------------------------- metadata


class SourceKind(enum.StrEnum):
    DIRECTORY = "directory"
    GIT = "git"


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceInfo:
    """The source last applied: its kind, where it is (a path or a URL), the commit
    (git only) and the digest of the inputs."""

    kind: SourceKind
    url: str
    digest: str
    commit: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", SourceKind(self.kind))
        if not isinstance(self.url, str) or not isinstance(self.digest, str):
            raise ValueError("source url and digest must be strings")
        if self.commit is not None and not isinstance(self.commit, str):
            raise ValueError("source commit must be a str or None")

    def to_json(self) -> dict[str, str | None]:
        return {
            "kind": self.kind.value,
            "url": self.url,
            "commit": self.commit,
            "digest": self.digest,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> SourceInfo:
        """Inverse of :meth:`to_json`; raises ``ValueError`` for anything else."""
        try:
            commit = data.get("commit")
            return cls(
                kind=SourceKind(str(data["kind"])),
                url=_text(data["url"]),
                digest=_text(data["digest"]),
                commit=None if commit is None else _text(commit),
            )
        except KeyError as exc:
            raise ValueError(f"source: missing {exc.args[0]!r}") from None


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class StateMeta:
    """What the state says about itself.

    ``lineage`` is a UUID fixed when the state is created; ``serial`` moves on with every
    apply (and every push); ``source`` is the source last applied, ``None`` before the
    first apply; ``schema_version`` is the storage schema; ``created_by`` the rune-sync
    version that created the state.
    """

    lineage: str
    serial: int
    source: SourceInfo | None = None
    schema_version: int
    created_by: str = ""


def new_lineage() -> str:
    return str(uuid.uuid4())


# --------------------------------------------------------------------------- locks


@dataclass(frozen=True, slots=True, kw_only=True)
class LockInfo:
    """Who holds (or wants) the state lock: recorded by the holder, shown to the others.

    ``id`` is unique per acquisition and is what ``force-unlock`` takes. ``since`` is when
    the holder took the lock. An unknown holder (one that locked but has not recorded
    itself yet) has an empty ``id``: see :attr:`is_known`.
    """

    id: str
    user: str
    host: str
    pid: int
    command: str
    since: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "since", _utc("since", self.since))

    @classmethod
    def for_this_process(cls, *, command: str, now: datetime) -> LockInfo:
        """The holder details of the running process, with a fresh id."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (containers): the uid still names it
            user = f"uid {os.getuid()}"
        return cls(
            id=uuid.uuid4().hex,
            user=user,
            host=socket.gethostname(),
            pid=os.getpid(),
            command=command,
            since=now,
        )

    @classmethod
    def unknown(cls, *, seen_at: datetime) -> LockInfo:
        """A holder that has taken the lock but not recorded itself (yet)."""
        return cls(id="", user="unknown", host="unknown", pid=0, command="unknown", since=seen_at)

    @property
    def is_known(self) -> bool:
        return bool(self.id)

    def describe(self) -> str:
        """``alice@build-1 (pid 4242) running 'rune-sync apply' since 2025-…Z``."""
        if not self.is_known:
            return "a process that has not recorded itself yet"
        return (
            f"{self.user}@{self.host} (pid {self.pid}) running {self.command!r} "
            f"since {format_timestamp(self.since)}"
        )

    def to_json(self) -> dict[str, str | int]:
        return {
            "id": self.id,
            "user": self.user,
            "host": self.host,
            "pid": self.pid,
            "command": self.command,
            "since": format_timestamp(self.since),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> LockInfo:
        """Inverse of :meth:`to_json`; raises ``ValueError`` for anything else."""
        try:
            pid = data["pid"]
            if type(pid) is not int:
                raise ValueError(f"pid must be an integer, got {pid!r}")
            return cls(
                id=_text(data["id"]),
                user=_text(data["user"]),
                host=_text(data["host"]),
                pid=pid,
                command=_text(data["command"]),
                since=parse_timestamp(_text(data["since"])),
            )
        except KeyError as exc:
            raise ValueError(f"lock record: missing {exc.args[0]!r}") from None
