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
from dataclasses import dataclass

from rune_sync.spec.model import (
    ReclaimPolicy,
    Service,
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
