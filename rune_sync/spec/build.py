"""Raw mappings that passed their schema → typed, frozen specs.

Called by :mod:`rune_sync.spec.validate` only for resources whose schema check found no
error, so field types are already right; what can still fail (a quantity beyond range)
is raised as :class:`BuildProblem` with the field path. No cross-resource knowledge.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

from rune_sync.spec import quantity
from rune_sync.spec.load import Origin, RawResource
from rune_sync.spec.model import (
    AccessMode,
    ClaimRef,
    ClaimTemplate,
    Kind,
    NamedMount,
    ReclaimPolicy,
    Runtime,
    Secret,
    Service,
    Snapshot,
    StorageClass,
    TopologyExpression,
    TopologySelector,
    Volume,
    VolumeMount,
    frozen_map,
    frozen_values,
)
from rune_sync.spec.names import DEFAULT_NAMESPACE, split_qualified
from rune_sync.spec.secrets import SecretValue

Spec = StorageClass | Volume | Snapshot | Service | Secret

SERVICE_FIELDS = frozenset(
    {"name", "namespace", "scale", "process", "volumes", "secretMounts", "configMounts"}
)


class BuildProblem(Exception):
    """A schema-valid value that still cannot be used (e.g. a quantity out of range)."""

    def __init__(self, code: str, message: str, path: tuple[str | int, ...]) -> None:
        super().__init__(code, message, path)
        self.code = code
        self.message = message
        self.path = path


def _size(value: str | int, path: tuple[str | int, ...]) -> quantity.Quantity:
    try:
        return quantity.parse(value)
    except quantity.QuantityError as exc:
        raise BuildProblem("RS106", str(exc), path) from None


def _policy(value: str | None) -> ReclaimPolicy | None:
    return ReclaimPolicy(value) if value is not None else None


def _strings(value: Mapping[str, Any] | None) -> Mapping[str, str]:
    return frozen_map(value)


def storage_class(data: Mapping[str, Any], origin: Origin) -> StorageClass:
    topologies = tuple(
        TopologySelector(
            match_labels=_strings(sel.get("matchLabels")),
            match_expressions=tuple(
                TopologyExpression(
                    key=e["key"], operator=e["operator"], values=tuple(e.get("values") or ())
                )
                for e in sel.get("matchExpressions") or ()
            ),
        )
        for sel in data.get("allowedTopologies") or ()
    )
    return StorageClass(
        name=data["name"],
        driver=data["driver"],
        parameters=_strings(data.get("parameters")),
        reclaim_policy=ReclaimPolicy(data.get("reclaimPolicy", "retain")),
        default=bool(data.get("default", False)),
        allowed_topologies=topologies,
        labels=_strings(data.get("labels")),
        origin=origin,
    )


def volume(data: Mapping[str, Any], origin: Origin) -> Volume:
    restore = data.get("restoreFrom")
    return Volume(
        name=data["name"],
        namespace=data.get("namespace") or DEFAULT_NAMESPACE,
        size=_size(data["size"], ("size",)),
        access_mode=AccessMode(data["accessMode"]),
        storage_class_name=data.get("storageClassName"),
        reclaim_policy=_policy(data.get("reclaimPolicy")),
        parameters=_strings(data.get("parameters")),
        labels=_strings(data.get("labels")),
        restore_from=restore["snapshot"] if restore else None,
        origin=origin,
    )


def snapshot(data: Mapping[str, Any], origin: Origin) -> Snapshot:
    return Snapshot(
        name=data["name"],
        namespace=data.get("namespace") or DEFAULT_NAMESPACE,
        source_volume=data["source"]["volume"],
        labels=_strings(data.get("labels")),
        origin=origin,
    )


def _mount(item: Mapping[str, Any], namespace: str, index: int) -> VolumeMount:
    claim = item.get("claim")
    template = item.get("claimTemplate")
    claim_ref = None
    if claim is not None:
        name, ns = split_qualified(claim["name"])
        claim_ref = ClaimRef(name=name, namespace=ns or namespace)
    claim_template = None
    if template is not None:
        claim_template = ClaimTemplate(
            size=_size(template["size"], ("volumes", index, "claimTemplate", "size")),
            access_mode=AccessMode(template["accessMode"]),
            storage_class_name=template.get("storageClassName"),
            parameters=_strings(template.get("parameters")),
            reclaim_policy=_policy(template.get("reclaimPolicy")),
        )
    return VolumeMount(
        name=item["name"],
        mount_path=item["mountPath"],
        read_only=bool(item.get("readOnly", False)),
        sub_path=item.get("subPath") or "",
        claim=claim_ref,
        claim_template=claim_template,
    )


def service(data: Mapping[str, Any], origin: Origin) -> Service:
    namespace = data.get("namespace") or DEFAULT_NAMESPACE
    return Service(
        name=data["name"],
        namespace=namespace,
        scale=int(data.get("scale", 1)),
        runtime=Runtime.PROCESS if data.get("process") is not None else Runtime.CONTAINER,
        volumes=tuple(_mount(m, namespace, i) for i, m in enumerate(data.get("volumes") or ())),
        secret_mounts=tuple(
            NamedMount(name=m["name"], mount_path=m["mountPath"], target=m["secretName"])
            for m in data.get("secretMounts") or ()
        ),
        config_mounts=tuple(
            NamedMount(name=m["name"], mount_path=m["mountPath"], target=m["configName"])
            for m in data.get("configMounts") or ()
        ),
        extra={k: v for k, v in data.items() if k not in SERVICE_FIELDS},
        origin=origin,
    )


def secret_keys(data: Mapping[str, Any]) -> frozenset[str]:
    """The key names a secret resource defines (values are not kept in the spec)."""
    values = data.get("data")
    if isinstance(values, Mapping):
        return frozenset(values)
    if isinstance(values, list):
        return frozenset(item["key"] for item in values)
    if "value" in data or "valueBase64" in data:
        return frozenset({"value"})
    return frozenset()


def secret_values(data: Mapping[str, Any]) -> dict[str, SecretValue]:
    """The text of each key, masked. A ``valueBase64`` that does not decode to UTF-8
    text is left out: it may serve a secret mount, never a driver parameter."""
    values = data.get("data")
    if isinstance(values, Mapping):
        return {key: SecretValue(str(text)) for key, text in values.items()}
    if isinstance(values, list):
        return {item["key"]: SecretValue(str(item["value"])) for item in values}
    if "value" in data:
        return {"value": SecretValue(str(data["value"]))}
    if "valueBase64" in data:
        try:
            raw = base64.b64decode("".join(str(data["valueBase64"]).split()), validate=True)
            return {"value": SecretValue(raw.decode("utf-8"))}
        except (binascii.Error, UnicodeDecodeError):
            return {}  # binary data: the key exists, a parameter cannot use it
    return {}


def secret(data: Mapping[str, Any], origin: Origin) -> Secret:
    return Secret(
        name=data["name"],
        namespace=data.get("namespace") or DEFAULT_NAMESPACE,
        type=data.get("type", "static"),
        keys=secret_keys(data),
        values=frozen_values(secret_values(data)),
        origin=origin,
    )


_BUILDERS: dict[Kind, Callable[[Mapping[str, Any], Origin], Spec]] = {
    Kind.STORAGE_CLASS: storage_class,
    Kind.VOLUME: volume,
    Kind.SNAPSHOT: snapshot,
    Kind.SERVICE: service,
    Kind.SECRET: secret,
}


def build(raw: RawResource) -> Spec:
    """The typed spec of one schema-valid raw resource."""
    return _BUILDERS[raw.kind](raw.data, raw.origin)
