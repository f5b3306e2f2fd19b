"""Typed, immutable specs for every kind, plus the values shared by all stages.

Built by :mod:`rune_sync.spec.validate` from loaded documents; read by expand, plan,
apply and the drivers. Nothing here does I/O. ``origin`` on a spec points back at the
YAML it came from so later stages can still name a file and line.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from rune_sync.spec.names import DEFAULT_NAMESPACE
from rune_sync.spec.quantity import Quantity
from rune_sync.spec.secrets import SecretValue

if TYPE_CHECKING:
    from rune_sync.spec.load import Origin

EMPTY: Mapping[str, str] = MappingProxyType({})
NO_VALUES: Mapping[str, SecretValue] = MappingProxyType({})


def frozen_map(values: Mapping[str, str] | None) -> Mapping[str, str]:
    """A read-only copy (shared empty mapping when there is nothing)."""
    if not values:
        return EMPTY
    return MappingProxyType(dict(values))


def frozen_values(values: Mapping[str, SecretValue]) -> Mapping[str, SecretValue]:
    """A read-only copy of a secret's values (shared empty mapping when there are none)."""
    if not values:
        return NO_VALUES
    return MappingProxyType(dict(values))


class AccessMode(enum.StrEnum):
    READ_WRITE_ONCE = "ReadWriteOnce"
    READ_ONLY_MANY = "ReadOnlyMany"
    READ_WRITE_MANY = "ReadWriteMany"


class ReclaimPolicy(enum.StrEnum):
    RETAIN = "retain"
    DELETE = "delete"


class Runtime(enum.StrEnum):
    CONTAINER = "container"
    PROCESS = "process"


class Kind(enum.StrEnum):
    """Resource kinds; the value is the address prefix."""

    STORAGE_CLASS = "storageclass"
    VOLUME = "volume"
    SNAPSHOT = "snapshot"
    SERVICE = "service"
    SECRET = "secret"

    @property
    def namespaced(self) -> bool:
        return self is not Kind.STORAGE_CLASS


class VolumeStatus(enum.StrEnum):
    PENDING = "Pending"
    PROVISIONING = "Provisioning"
    AVAILABLE = "Available"
    BOUND = "Bound"
    RELEASED = "Released"
    FAILED = "Failed"
    STALLED = "Stalled"


class SnapshotStatus(enum.StrEnum):
    PENDING = "Pending"
    CREATING = "Creating"
    READY = "Ready"
    DELETING = "Deleting"
    FAILED = "Failed"


@dataclass(frozen=True, slots=True, order=True)
class Address:
    """``storageclass/NAME``, ``volume/NS/NAME``, ``snapshot/NS/NAME`` (and service/secret)."""

    kind: Kind
    namespace: str
    name: str

    @classmethod
    def of(cls, kind: Kind, name: str, namespace: str | None = None) -> Address:
        if not kind.namespaced:
            return cls(kind, "", name)
        return cls(kind, namespace or DEFAULT_NAMESPACE, name)

    def __str__(self) -> str:
        if self.kind.namespaced:
            return f"{self.kind.value}/{self.namespace}/{self.name}"
        return f"{self.kind.value}/{self.name}"

    @classmethod
    def parse(cls, text: str) -> Address:
        """Inverse of ``str()``; raises ``ValueError`` for anything else."""
        parts = text.split("/")
        try:
            kind = Kind(parts[0])
        except ValueError:
            raise ValueError(f"{text!r} is not an address (e.g. volume/prod/web-data)") from None
        if kind.namespaced and len(parts) == 3 and all(parts[1:]):
            return cls(kind, parts[1], parts[2])
        if not kind.namespaced and len(parts) == 2 and parts[1]:
            return cls(kind, "", parts[1])
        shape = f"{kind.value}/NAMESPACE/NAME" if kind.namespaced else f"{kind.value}/NAME"
        raise ValueError(f"{text!r} is not an address: write {shape}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What a driver can do; declared by each driver, consumed by rules and the planner."""

    access_modes: frozenset[AccessMode]
    snapshots: bool = False
    expand: bool = False
    online_expand: bool = False
    block_device: bool = False
    topology_keys: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, object]:
        return {
            "accessModes": sorted(m.value for m in self.access_modes),
            "snapshots": self.snapshots,
            "expand": self.expand,
            "onlineExpand": self.online_expand,
            "blockDevice": self.block_device,
            "topologyKeys": sorted(self.topology_keys),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ParameterRules:
    """What a driver accepts in ``parameters``; declared by the driver, checked statically.

    ``known`` is None when any key is accepted. ``choices`` restricts a key's values.
    Required keys may come from the class or the volume (merged, volume on top).
    ``secret`` keys carry credentials: their value belongs in a ``secret:`` reference,
    and a value written out is warned about (RS233), since it is recorded as written.
    """

    required: frozenset[str] = frozenset()
    known: frozenset[str] | None = None
    choices: Mapping[str, frozenset[str]] = field(default_factory=dict)
    secret: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class TopologyExpression:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TopologySelector:
    match_labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    match_expressions: tuple[TopologyExpression, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageClass:
    name: str
    driver: str
    parameters: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    reclaim_policy: ReclaimPolicy = ReclaimPolicy.RETAIN
    default: bool = False
    allowed_topologies: tuple[TopologySelector, ...] = ()
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    builtin: bool = False
    origin: Origin | None = field(default=None, compare=False, repr=False)

    @property
    def address(self) -> Address:
        return Address(Kind.STORAGE_CLASS, "", self.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Volume:
    name: str
    namespace: str
    size: Quantity
    access_mode: AccessMode
    storage_class_name: str | None = None
    reclaim_policy: ReclaimPolicy | None = None
    parameters: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    restore_from: str | None = None
    owner_service: str | None = None
    origin: Origin | None = field(default=None, compare=False, repr=False)

    @property
    def address(self) -> Address:
        return Address(Kind.VOLUME, self.namespace, self.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    name: str
    namespace: str
    source_volume: str
    labels: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    origin: Origin | None = field(default=None, compare=False, repr=False)

    @property
    def address(self) -> Address:
        return Address(Kind.SNAPSHOT, self.namespace, self.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimRef:
    """``claim: {name: web-data}``; ``name.namespace.rune`` crosses namespaces."""

    name: str
    namespace: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimTemplate:
    size: Quantity
    access_mode: AccessMode
    storage_class_name: str | None = None
    parameters: Mapping[str, str] = field(default_factory=lambda: EMPTY)
    reclaim_policy: ReclaimPolicy | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeMount:
    """One entry of a service's ``volumes[]``: exactly one of claim / claim_template."""

    name: str
    mount_path: str
    read_only: bool = False
    sub_path: str = ""
    claim: ClaimRef | None = None
    claim_template: ClaimTemplate | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NamedMount:
    """A ``secretMounts`` or ``configMounts`` entry; ``target`` is the secret/config name."""

    name: str
    mount_path: str
    target: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """The parts of a Rune service rune-sync owns; ``extra`` keeps every other field as is."""

    name: str
    namespace: str
    scale: int = 1
    runtime: Runtime = Runtime.CONTAINER
    volumes: tuple[VolumeMount, ...] = ()
    secret_mounts: tuple[NamedMount, ...] = ()
    config_mounts: tuple[NamedMount, ...] = ()
    extra: Mapping[str, object] = field(default_factory=dict, compare=False)
    origin: Origin | None = field(default=None, compare=False, repr=False)

    @property
    def address(self) -> Address:
        return Address(Kind.SERVICE, self.namespace, self.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Secret:
    """A secret resource from the source. ``keys`` are its key names; ``values`` holds
    the text of each key that has one, as :class:`SecretValue` objects that mask themselves,
    and is never part of the spec's repr or equality. A ``valueBase64`` that is not
    UTF-8 text has a key but no value (it cannot serve a driver parameter)."""

    name: str
    namespace: str
    type: str = "static"
    keys: frozenset[str] = frozenset()
    values: Mapping[str, SecretValue] = field(
        default_factory=lambda: NO_VALUES, compare=False, repr=False
    )
    origin: Origin | None = field(default=None, compare=False, repr=False)

    @property
    def address(self) -> Address:
        return Address(Kind.SECRET, self.namespace, self.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageSettings:
    """The runefile's ``storage`` section, defaults of DESIGN §2 applied."""

    default_storage_class: str = "local"
    local_volume_root: Path = Path("/var/lib/rune/volumes")
    snapshot_root: Path | None = None
    host_path_allowlist: tuple[str, ...] = ()
    allow_create_missing: bool = False
    preserve_on_delete: bool = False

    @property
    def effective_snapshot_root(self) -> Path:
        return self.snapshot_root or self.local_volume_root / ".snapshots"


@dataclass(frozen=True, slots=True, kw_only=True)
class Runefile:
    """Where the settings came from and what they say. ``sync`` is rune-sync's own section."""

    path: Path | None
    storage: StorageSettings = field(default_factory=StorageSettings)
    sync: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecSet:
    """Everything the source declares, validated and typed (before expansion)."""

    storage_classes: tuple[StorageClass, ...] = ()
    volumes: tuple[Volume, ...] = ()
    snapshots: tuple[Snapshot, ...] = ()
    services: tuple[Service, ...] = ()
    secrets: tuple[Secret, ...] = ()
