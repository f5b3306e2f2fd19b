"""From declared specs to the desired set: built-in classes, default class, templates.

DESIGN §4. The built-in classes ``local`` and ``local-host`` exist unless the source
defines classes of the same name. A volume without ``storageClassName`` gets the class
marked ``default: true``, else the runefile's ``defaultStorageClass``. A service's
``claimTemplate`` with ``scale: N`` yields volumes ``<mount>-<service>-<k>`` for
``k < N`` with ``owner_service`` set. Pure functions; the rules use them too, so that
validation and planning agree on names and classes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rune_sync.spec.load import Origin
from rune_sync.spec.model import (
    Address,
    Kind,
    ReclaimPolicy,
    Service,
    SpecSet,
    StorageClass,
    StorageSettings,
    Volume,
    VolumeMount,
)

BUILTIN_CLASSES = (
    StorageClass(name="local", driver="local", reclaim_policy=ReclaimPolicy.RETAIN, builtin=True),
    StorageClass(
        name="local-host", driver="local-host", reclaim_policy=ReclaimPolicy.RETAIN, builtin=True
    ),
)


def class_index(defined: Iterable[StorageClass]) -> dict[str, StorageClass]:
    """Classes by name: the source's, plus each built-in the source does not redefine."""
    index = {c.name: c for c in BUILTIN_CLASSES}
    for cls in defined:
        index[cls.name] = cls
    return index


def default_class_name(
    classes: Mapping[str, StorageClass], settings: StorageSettings
) -> str | None:
    """The class a volume without ``storageClassName`` gets, or None when there is none."""
    marked = sorted(c.name for c in classes.values() if c.default)
    if marked:
        return marked[0]
    name = settings.default_storage_class
    return name if name and name in classes else None


def template_volume_name(mount: str, service: str, ordinal: int) -> str:
    return f"{mount}-{service}-{ordinal}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateSite:
    """A claim template of a service, with the volumes it generates."""

    service: Service
    index: int
    mount: VolumeMount
    volumes: tuple[Volume, ...]


def template_volume(service: Service, mount: VolumeMount, ordinal: int) -> Volume:
    """Replica ``ordinal``'s volume of a claimTemplate mount (stable name, owner set)."""
    template = mount.claim_template
    if template is None:
        raise ValueError(f"mount {mount.name!r} has no claimTemplate")
    return Volume(
        name=template_volume_name(mount.name, service.name, ordinal),
        namespace=service.namespace,
        size=template.size,
        access_mode=template.access_mode,
        storage_class_name=template.storage_class_name,
        reclaim_policy=template.reclaim_policy,
        parameters=template.parameters,
        owner_service=service.name,
        origin=service.origin,
    )


def template_sites(service: Service) -> Iterator[TemplateSite]:
    """Every claimTemplate mount of ``service`` and the volumes it yields at its scale."""
    for index, mount in enumerate(service.volumes):
        if mount.claim_template is None:
            continue
        volumes = tuple(template_volume(service, mount, k) for k in range(service.scale))
        yield TemplateSite(service=service, index=index, mount=mount, volumes=volumes)


# ----------------------------------------------------------------------------- desired set


@dataclass(frozen=True, slots=True, kw_only=True)
class Desired:
    """One resource of the desired state, as the planner compares it with a record.

    ``spec`` is the normalised, JSON-able form that is diffed and stored (secret
    references stay references). ``driver`` is the class's driver. ``depends_on`` lists
    the addresses that must exist first (class, snapshot source, restore snapshot).
    """

    address: Address
    spec: Mapping[str, Any]
    driver: str
    reclaim_policy: ReclaimPolicy | None = None
    bound_claim: str | None = None
    owner_service: str | None = None
    depends_on: tuple[Address, ...] = ()
    parameters: Mapping[str, str] = field(default_factory=dict)
    origin: Origin | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredSet:
    """Everything the source wants to exist, by address; plus the services' template
    mounts so the planner can tell a scaled-down replica from a removed volume."""

    resources: Mapping[Address, Desired]
    template_owners: frozenset[tuple[str, str]] = frozenset()
    """(namespace, service) of every service that declares a claimTemplate."""


def _class_spec(cls: StorageClass) -> dict[str, object]:
    return {
        "driver": cls.driver,
        "parameters": dict(cls.parameters),
        "reclaimPolicy": cls.reclaim_policy.value,
        "default": cls.default,
        "allowedTopologies": [
            {
                "matchLabels": dict(sel.match_labels),
                "matchExpressions": [
                    {"key": e.key, "operator": e.operator, "values": list(e.values)}
                    for e in sel.match_expressions
                ],
            }
            for sel in cls.allowed_topologies
        ],
        "labels": dict(cls.labels),
    }


def effective_policy(volume: Volume, cls: StorageClass, settings: StorageSettings) -> ReclaimPolicy:
    """The volume's own policy, else its class's; ``preserveOnDelete`` makes local retain."""
    policy = volume.reclaim_policy or cls.reclaim_policy
    if cls.driver == "local" and settings.preserve_on_delete:
        return ReclaimPolicy.RETAIN
    return policy


def _volume_desired(
    volume: Volume,
    cls: StorageClass,
    settings: StorageSettings,
    bound: str | None,
) -> Desired:
    policy = effective_policy(volume, cls, settings)
    parameters = {**cls.parameters, **volume.parameters}
    depends: list[Address] = []
    if not cls.builtin:
        depends.append(cls.address)
    if volume.restore_from is not None:
        depends.append(Address(Kind.SNAPSHOT, volume.namespace, volume.restore_from))
    spec = {
        "storageClassName": cls.name,
        "driver": cls.driver,
        "size": str(volume.size),
        "sizeBytes": volume.size.bytes,
        "accessMode": volume.access_mode.value,
        "reclaimPolicy": policy.value,
        "parameters": parameters,
        "labels": dict(volume.labels),
        "restoreFrom": volume.restore_from,
        "ownerService": volume.owner_service,
    }
    return Desired(
        address=volume.address,
        spec=spec,
        driver=cls.driver,
        reclaim_policy=policy,
        bound_claim=bound,
        owner_service=volume.owner_service,
        depends_on=tuple(depends),
        parameters=parameters,
        origin=volume.origin,
    )


def desired_set(specs: SpecSet, settings: StorageSettings) -> DesiredSet:
    """Expand validated specs into the desired state (DESIGN §4).

    Assumes validation passed: every class and reference resolves. Built-in classes are
    not resources of their own (they need no record); a redefined one is.
    """
    classes = class_index(specs.storage_classes)
    default = default_class_name(classes, settings)
    resources: dict[Address, Desired] = {}
    for cls in specs.storage_classes:
        resources[cls.address] = Desired(
            address=cls.address, spec=_class_spec(cls), driver=cls.driver, origin=cls.origin
        )
    bindings: dict[tuple[str, str], str] = {}
    for svc in specs.services:
        for mount in svc.volumes:
            if mount.claim is not None:
                bindings.setdefault((mount.claim.namespace, mount.claim.name), str(svc.address))
    volumes = list(specs.volumes)
    owners: set[tuple[str, str]] = set()
    for svc in specs.services:
        for site in template_sites(svc):
            owners.add((svc.namespace, svc.name))
            for vol in site.volumes:
                bindings[(vol.namespace, vol.name)] = str(svc.address)
                volumes.append(vol)
    for vol in volumes:
        cls = classes[vol.storage_class_name or default or ""]
        bound = bindings.get((vol.namespace, vol.name))
        resources[vol.address] = _volume_desired(vol, cls, settings, bound)
    by_volume = {(v.namespace, v.name): resources[v.address] for v in volumes}
    for snap in specs.snapshots:
        source = by_volume[(snap.namespace, snap.source_volume)]
        resources[snap.address] = Desired(
            address=snap.address,
            spec={
                "sourceVolume": snap.source_volume,
                "driver": source.driver,
                "labels": dict(snap.labels),
            },
            driver=source.driver,
            depends_on=(source.address,),
            origin=snap.origin,
        )
    return DesiredSet(resources=resources, template_owners=frozenset(owners))
