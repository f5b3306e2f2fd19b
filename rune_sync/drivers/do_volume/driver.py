"""The do-volume driver: DigitalOcean block storage volumes (DESIGN §8, seed 000).

A volume is the DigitalOcean volume ``rune-<namespace>-<name>`` in the class's region
(its id is the handle); a snapshot is a DigitalOcean volume snapshot (its id is the
handle). Every call is idempotent: provision and restore look for the volume by name and
region before creating one; delete of a missing volume succeeds; attach, detach and
resize check the volume's droplets first and poll the action until it completes (at
most twice a second, up to a deadline). Region pinning: an attach to a droplet in
another region is refused before any action is requested. Expand is offline only.

Parameters come resolved in ``OpContext.parameters``: ``region`` (required), ``fsType``
(``ext4``/``xfs``), ``apiToken`` (or the legacy ``apiTokenSecretRef``) and
``apiEndpoint`` (else ``DIGITALOCEAN_API_URL``, else the public API). Filesystems are
made and mounted on the droplet by the runner: :meth:`mount` returns the device path.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from rune_sync import errors
from rune_sync.drivers.base import (
    Declared,
    DevicePath,
    ErrorScope,
    ExpandRequest,
    MountRequest,
    MountTarget,
    Observation,
    ObservedKind,
    OpContext,
    ProvisionRequest,
    RestoreRequest,
    SnapshotHandle,
    SnapshotRequest,
    VolumeHandle,
    require_access_mode,
    require_expand,
    require_snapshots,
)
from rune_sync.drivers.do_volume import CAPABILITIES, NAME, PARAMETERS
from rune_sync.drivers.do_volume import client as api
from rune_sync.spec.model import Capabilities, ParameterRules, StorageSettings

GIB = 1024**3
NAME_LIMIT = 64
DEVICE_PREFIX = "/dev/disk/by-id/scsi-0DO_Volume_"
ENV_URL = "DIGITALOCEAN_API_URL"
FILESYSTEMS = frozenset({"ext4", "xfs"})


def volume_name(namespace: str, name: str) -> str:
    """The DigitalOcean name of volume ``namespace/name``."""
    return f"rune-{namespace}-{name}"


def gibibytes(size_bytes: int) -> int:
    """Whole GiB, rounded up (DigitalOcean sizes volumes in GiB); at least 1."""
    return max(1, -(-size_bytes // GIB))


class DoVolumeDriver(Declared):
    NAME: ClassVar[str] = NAME
    CAPABILITIES: ClassVar[Capabilities] = CAPABILITIES
    PARAMETERS: ClassVar[ParameterRules] = PARAMETERS

    def __init__(
        self,
        *,
        settings: StorageSettings,
        poll_interval: float = 0.5,
        action_timeout: float = 300.0,
        request_timeout: float = 30.0,
    ) -> None:
        self._settings = settings
        self._poll = max(poll_interval, 0.0)
        self._deadline = action_timeout
        import httpx  # here, not at import: loading the class for its capabilities is cheap

        self._http = httpx.Client(timeout=request_timeout, follow_redirects=False)

    # ------------------------------------------------------------------ volumes

    def provision(self, ctx: OpContext, request: ProvisionRequest) -> VolumeHandle:
        scope = ErrorScope.of(self.NAME, "provision", ctx)
        require_access_mode(self.CAPABILITIES, request.access_mode, scope)
        region, fs_type = _region(ctx, scope), _fs_type(ctx, scope)
        name = _name(request.namespace, request.name, scope)
        client = self._client(ctx, scope)
        body = {
            "name": name,
            "size_gigabytes": gibibytes(request.size.bytes),
            "region": region,
            "filesystem_type": fs_type,
            "description": f"rune-sync volume {request.namespace}/{request.name}",
        }
        return VolumeHandle(self._find_or_create(client, name, region, body))

    def restore_from_snapshot(self, ctx: OpContext, request: RestoreRequest) -> VolumeHandle:
        scope = ErrorScope.of(self.NAME, "restore", ctx)
        require_snapshots(self.CAPABILITIES, scope)
        require_access_mode(self.CAPABILITIES, request.access_mode, scope)
        region = _region(ctx, scope)
        name = _name(request.namespace, request.name, scope)
        client = self._client(ctx, scope)
        found = self._find_volume(client, name, region)
        if found is not None:
            return VolumeHandle(str(found["id"]))
        snap = client.call(api.GET_SNAPSHOT, ids={"id": request.source})["snapshot"]
        regions = snap.get("regions") or []
        if regions and region not in regions:
            raise scope.error(
                errors.DriverConfigError,
                f"snapshot {request.source} is in {', '.join(regions)}, not in {region}: "
                "a volume can only be restored in its snapshot's region",
            )
        size = max(gibibytes(request.size.bytes), int(snap.get("min_disk_size") or 0))
        body = {
            "name": name,
            "size_gigabytes": size,
            "region": region,
            "snapshot_id": request.source,
            "description": f"rune-sync volume {request.namespace}/{request.name}",
        }
        return VolumeHandle(self._find_or_create(client, name, region, body))

    def delete(self, ctx: OpContext, handle: VolumeHandle) -> None:
        scope = ErrorScope.of(self.NAME, "delete", ctx)
        client = self._client(ctx, scope)
        try:
            client.call(api.DELETE_VOLUME, ids={"id": handle})
        except errors.ResourceNotFound:
            return

    def expand(self, ctx: OpContext, request: ExpandRequest) -> None:
        scope = ErrorScope.of(self.NAME, "expand", ctx)
        require_expand(self.CAPABILITIES, request, scope)
        client = self._client(ctx, scope)
        volume = self._get_volume(client, request.handle)
        attached = volume.get("droplet_ids") or []
        if attached:
            raise scope.error(
                errors.OnlineExpandUnsupported,
                f"volume {request.handle} is attached to droplet(s) "
                f"{', '.join(str(d) for d in attached)}; do-volume expands only detached "
                "volumes (online expand is unsupported): detach it first",
            )
        want = gibibytes(request.size.bytes)
        if int(volume.get("size_gigabytes") or 0) >= want:
            return
        action = client.call(
            api.VOLUME_ACTION,
            ids={"id": request.handle},
            body={"type": "resize", "size_gigabytes": want, "region": _slug(volume)},
        )["action"]
        self._wait(client, action, scope)

    def observe(self, ctx: OpContext, handle: VolumeHandle) -> Observation:
        scope = ErrorScope.of(self.NAME, "observe", ctx)
        client = self._client(ctx, scope)
        try:
            volume = self._get_volume(client, handle)
        except errors.ResourceNotFound:
            return Observation(kind=ObservedKind.MISSING)
        size = int(volume.get("size_gigabytes") or 0)
        return Observation(
            kind=ObservedKind.BLOCK_VOLUME,
            size_bytes=size * GIB,
            fingerprint=f"{volume.get('id')}:{size}",
            detail=f"{volume.get('name')} in {_slug(volume)}",
        )

    # ------------------------------------------------------------------ attachment

    def attach(self, ctx: OpContext, handle: VolumeHandle) -> DevicePath:
        scope = ErrorScope.of(self.NAME, "attach", ctx)
        client = self._client(ctx, scope)
        volume = self._get_volume(client, handle)
        droplet = self._droplet(client, ctx.node, scope)
        region, droplet_region = _slug(volume), _slug(droplet)
        if region != droplet_region:
            raise scope.error(
                errors.DriverConfigError,
                f"volume {volume.get('name')} is in {region} and droplet {ctx.node} in "
                f"{droplet_region}: DigitalOcean volumes attach only within their region",
            )
        if droplet["id"] not in (volume.get("droplet_ids") or []):
            action = client.call(
                api.VOLUME_ACTION,
                ids={"id": handle},
                body={"type": "attach", "droplet_id": droplet["id"], "region": region},
            )["action"]
            self._wait(client, action, scope)
        return DevicePath(DEVICE_PREFIX + str(volume.get("name")))

    def detach(self, ctx: OpContext, handle: VolumeHandle) -> None:
        scope = ErrorScope.of(self.NAME, "detach", ctx)
        client = self._client(ctx, scope)
        try:
            volume = self._get_volume(client, handle)
        except errors.ResourceNotFound:
            return
        attached = list(volume.get("droplet_ids") or [])
        if not attached:
            return
        if ctx.node:
            droplet = self._droplet(client, ctx.node, scope)
            attached = [d for d in attached if d == droplet["id"]]
        for droplet_id in attached:
            action = client.call(
                api.VOLUME_ACTION,
                ids={"id": handle},
                body={"type": "detach", "droplet_id": droplet_id, "region": _slug(volume)},
            )["action"]
            self._wait(client, action, scope)

    def mount(self, ctx: OpContext, request: MountRequest) -> MountTarget:
        """The device path; the runner makes and mounts the filesystem on the droplet."""
        scope = ErrorScope.of(self.NAME, "mount", ctx)
        volume = self._get_volume(self._client(ctx, scope), request.handle)
        return MountTarget(DEVICE_PREFIX + str(volume.get("name")))

    def unmount(self, ctx: OpContext, target: MountTarget) -> None:
        """Nothing to undo here: mount mounted nothing on this host."""

    # ------------------------------------------------------------------ snapshots

    def snapshot(self, ctx: OpContext, request: SnapshotRequest) -> SnapshotHandle:
        scope = ErrorScope.of(self.NAME, "snapshot", ctx)
        require_snapshots(self.CAPABILITIES, scope)
        name = volume_name(request.namespace, request.name)
        client = self._client(ctx, scope)
        existing = self._find_snapshot(client, request.source, name)
        if existing is not None:
            return SnapshotHandle(existing)
        try:
            made = client.call(
                api.CREATE_SNAPSHOT, ids={"id": request.source}, body={"name": name}
            )["snapshot"]
        except api.Conflict:
            existing = self._find_snapshot(client, request.source, name)
            if existing is None:
                raise
            return SnapshotHandle(existing)
        return SnapshotHandle(str(made["id"]))

    def delete_snapshot(self, ctx: OpContext, handle: SnapshotHandle) -> None:
        scope = ErrorScope.of(self.NAME, "delete-snapshot", ctx)
        require_snapshots(self.CAPABILITIES, scope)
        client = self._client(ctx, scope)
        try:
            client.call(api.DELETE_SNAPSHOT, ids={"id": handle})
        except errors.ResourceNotFound:
            return

    # ------------------------------------------------------------------ helpers

    def _client(self, ctx: OpContext, scope: ErrorScope) -> api.Client:
        # No local variable holds the token while anything here can raise: a traceback
        # that shows locals must not show it.
        base = ctx.parameters.get("apiEndpoint") or os.environ.get(ENV_URL) or api.DEFAULT_URL
        if not base.lower().startswith(("https://", "http://")):
            raise scope.error(
                errors.DriverConfigError, f"apiEndpoint {base!r} is not an http(s) URL"
            )
        key = "apiToken" if ctx.parameters.get("apiToken") else "apiTokenSecretRef"
        if not ctx.parameters.get(key):
            raise scope.error(
                errors.DriverConfigError,
                "no API token: set the class parameter apiToken to a secret reference "
                "(secret:<name>.<namespace>.rune/<key>)",
            )
        if ctx.parameters[key].startswith("secret:"):
            raise scope.error(
                errors.DriverConfigError,
                f"{key} {ctx.parameters[key]} was not resolved: the secret reference must be "
                "resolved before the driver is called",
            )
        return api.Client(self._http, base_url=base, token=ctx.parameters[key], scope=scope)

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._http.close()

    def _find_or_create(
        self, client: api.Client, name: str, region: str, body: Mapping[str, Any]
    ) -> str:
        found = self._find_volume(client, name, region)
        if found is not None:
            return str(found["id"])
        try:
            made = client.call(api.CREATE_VOLUME, body=body)["volume"]
        except api.Conflict:
            # Created meanwhile (a retried call whose first answer was lost): use it.
            found = self._find_volume(client, name, region)
            if found is None:
                raise
            return str(found["id"])
        return str(made["id"])

    def _find_volume(self, client: api.Client, name: str, region: str) -> dict[str, Any] | None:
        listed = client.call(api.LIST_VOLUMES, params={"name": name, "region": region})
        for volume in listed.get("volumes") or []:
            if volume.get("name") == name and _slug(volume) == region:
                return dict(volume)
        return None

    def _find_snapshot(self, client: api.Client, volume: str, name: str) -> str | None:
        listed = client.call(
            api.LIST_VOLUME_SNAPSHOTS, ids={"id": volume}, params={"per_page": "200"}
        )
        for snap in listed.get("snapshots") or []:
            if snap.get("name") == name:
                return str(snap["id"])
        return None

    def _get_volume(self, client: api.Client, handle: str) -> dict[str, Any]:
        return dict(client.call(api.GET_VOLUME, ids={"id": handle})["volume"])

    def _droplet(self, client: api.Client, node: str, scope: ErrorScope) -> dict[str, Any]:
        if not node:
            raise scope.error(errors.DriverConfigError, "no node given to attach the volume to")
        listed = client.call(api.LIST_DROPLETS, params={"name": node})
        found = [d for d in listed.get("droplets") or [] if d.get("name") == node]
        if not found:
            raise scope.error(errors.ResourceNotFound, f"no droplet named {node!r}")
        return dict(found[0])

    def _wait(self, client: api.Client, action: Mapping[str, Any], scope: ErrorScope) -> None:
        """Poll the action until it completes; errored or too slow is transient."""
        ident = str(action.get("id"))
        kind = action.get("type", "action")
        deadline = time.monotonic() + self._deadline
        status = action.get("status")
        while status != "completed":
            if status == "errored":
                raise scope.error(
                    errors.DriverTransientError, f"DigitalOcean {kind} action {ident} errored"
                )
            if time.monotonic() >= deadline:
                raise scope.error(
                    errors.DriverTransientError,
                    f"DigitalOcean {kind} action {ident} did not complete within "
                    f"{self._deadline:.0f}s",
                )
            time.sleep(self._poll)
            status = client.call(api.GET_ACTION, ids={"id": ident})["action"].get("status")


def _region(ctx: OpContext, scope: ErrorScope) -> str:
    region = ctx.parameters.get("region", "")
    if not region:
        raise scope.error(errors.DriverConfigError, "parameter region is required (e.g. nyc3)")
    return region


def _fs_type(ctx: OpContext, scope: ErrorScope) -> str:
    fs_type = ctx.parameters.get("fsType", "ext4")
    if fs_type not in FILESYSTEMS:
        raise scope.error(errors.DriverConfigError, f"fsType {fs_type!r} is not one of ext4, xfs")
    return fs_type


def _name(namespace: str, name: str, scope: ErrorScope) -> str:
    full = volume_name(namespace, name)
    if len(full) > NAME_LIMIT:
        raise scope.error(
            errors.DriverConfigError,
            f"DigitalOcean name {full!r} is {len(full)} characters; the limit is {NAME_LIMIT}",
        )
    return full


def _slug(resource: Mapping[str, Any]) -> str:
    region = resource.get("region")
    if isinstance(region, Mapping):
        return str(region.get("slug", ""))
    return str(region or "")
