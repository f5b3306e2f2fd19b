"""The ``local-host`` driver: an operator's existing directory, named by ``hostPath``.

Owned here: checking ``parameters.hostPath`` (required, absolute, no ``..``, under
``hostPathAllowlist`` both as written and after resolving symlinks of the path and of
the allowlist entries), creating a missing directory only when both
``createIfMissing: "true"`` and ``allowCreateMissing`` say so, and refusing
``reclaimPolicy: delete``. The handle is the resolved path.

The operator owns the data: this driver must never remove, copy or change anything
under a host path; ``delete`` leaves the directory as it is and snapshots are
unsupported. Mount returns the directory for the runner to bind-mount.
"""

from __future__ import annotations

import os
from typing import ClassVar

from rune_sync import errors
from rune_sync.drivers import localfs
from rune_sync.drivers.base import (
    Declared,
    DevicePath,
    ErrorScope,
    ExpandRequest,
    MountRequest,
    MountTarget,
    Observation,
    OpContext,
    ProvisionRequest,
    RestoreRequest,
    SnapshotHandle,
    SnapshotRequest,
    VolumeHandle,
    require_access_mode,
    require_expand,
)
from rune_sync.spec import hostpath
from rune_sync.spec.model import (
    AccessMode,
    Capabilities,
    ParameterRules,
    ReclaimPolicy,
    StorageSettings,
)

_CREATED_MODE = 0o750


class LocalHostDriver(Declared):
    """Operator-owned host directories; see the module docstring."""

    NAME: ClassVar[str] = "local-host"
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(
        access_modes=frozenset({AccessMode.READ_WRITE_ONCE, AccessMode.READ_ONLY_MANY}),
        snapshots=False,
        expand=True,
        online_expand=True,
        block_device=False,
        topology_keys=frozenset({"rune.io/host-path-root"}),
    )
    # hostPath may sit on the class or the volume, so the rules check its presence (RS209)
    # rather than marking it required here.
    PARAMETERS: ClassVar[ParameterRules] = ParameterRules(
        known=frozenset({"hostPath", "createIfMissing"}),
        choices={"createIfMissing": frozenset({"true", "false"})},
    )

    def __init__(self, *, settings: StorageSettings) -> None:
        self._allowlist = settings.host_path_allowlist
        self._allow_create_missing = settings.allow_create_missing

    def provision(self, ctx: OpContext, request: ProvisionRequest) -> VolumeHandle:
        scope = ErrorScope.of(self.NAME, "provision", ctx)
        require_access_mode(self.CAPABILITIES, request.access_mode, scope)
        if _reclaim_policy(ctx) is ReclaimPolicy.DELETE:
            raise scope.error(
                errors.DriverConfigError,
                "reclaimPolicy delete is not allowed: the operator owns the host path (use retain)",
            )
        path = ctx.parameters.get("hostPath")
        if path is None:
            raise scope.error(errors.DriverConfigError, "parameters.hostPath is required")
        real = self._allowed(path, scope)
        if not os.path.lexists(real):
            self._create(path, real, ctx, scope)
        if not os.path.isdir(real) or os.path.islink(real):
            raise scope.error(errors.DriverConfigError, f"hostPath {path} is not a directory")
        return VolumeHandle(real)

    def delete(self, ctx: OpContext, handle: VolumeHandle) -> None:
        """The operator owns the directory: deleting the volume leaves it untouched."""

    def attach(self, ctx: OpContext, handle: VolumeHandle) -> DevicePath:
        self._require_dir(handle, ErrorScope.of(self.NAME, "attach", ctx))
        return DevicePath("")

    def detach(self, ctx: OpContext, handle: VolumeHandle) -> None:
        """Nothing to undo: attach changes nothing on the node."""

    def mount(self, ctx: OpContext, request: MountRequest) -> MountTarget:
        # Checked again on every mount: the directory or the allowlist may have changed.
        self._require_dir(request.handle, ErrorScope.of(self.NAME, "mount", ctx))
        return MountTarget(request.handle)

    def unmount(self, ctx: OpContext, target: MountTarget) -> None:
        """Nothing to undo: ``mount`` created nothing, and data is never removed here."""

    def snapshot(self, ctx: OpContext, request: SnapshotRequest) -> SnapshotHandle:
        raise _no_snapshots(ErrorScope.of(self.NAME, "snapshot", ctx))

    def restore_from_snapshot(self, ctx: OpContext, request: RestoreRequest) -> VolumeHandle:
        raise _no_snapshots(ErrorScope.of(self.NAME, "restore", ctx))

    def delete_snapshot(self, ctx: OpContext, handle: SnapshotHandle) -> None:
        raise _no_snapshots(ErrorScope.of(self.NAME, "delete-snapshot", ctx))

    def expand(self, ctx: OpContext, request: ExpandRequest) -> None:
        """Size is informational for a host directory: nothing to change once it exists."""
        scope = ErrorScope.of(self.NAME, "expand", ctx)
        require_expand(self.CAPABILITIES, request, scope)
        self._require_dir(request.handle, scope)

    def observe(self, ctx: OpContext, handle: VolumeHandle) -> Observation:
        return localfs.observe_path(handle)

    def _allowed(self, path: str, scope: ErrorScope) -> str:
        """The resolved path, after the static and the resolved allowlist checks."""
        problem = hostpath.host_path_problem(path, self._allowlist)
        if problem is not None:
            raise scope.error(errors.DriverConfigError, problem)
        real = os.path.realpath(path)
        roots = [os.path.realpath(entry) for entry in hostpath.usable_entries(self._allowlist)]
        if not any(hostpath.is_within(real, root) for root in roots):
            raise scope.error(
                errors.DriverConfigError,
                f"hostPath {path} resolves to {real}, which is not under "
                f"{hostpath.describe_allowlist(self._allowlist)} "
                f"(resolved: {', '.join(roots)})",
            )
        return real

    def _create(self, path: str, real: str, ctx: OpContext, scope: ErrorScope) -> None:
        if ctx.parameters.get("createIfMissing") != "true":
            raise scope.error(
                errors.DriverConfigError,
                f'hostPath {path} does not exist; create it or set createIfMissing: "true" '
                "(honoured only with allowCreateMissing: true in the runefile)",
            )
        if not self._allow_create_missing:
            raise scope.error(
                errors.DriverConfigError,
                f"hostPath {path} does not exist, and createIfMissing is not honoured "
                "because the runefile does not set allowCreateMissing: true",
            )
        try:
            os.makedirs(real, mode=_CREATED_MODE, exist_ok=True)
            os.chmod(real, _CREATED_MODE)  # makedirs' mode is narrowed by the umask
        except OSError as exc:
            raise scope.error(
                errors.DriverError, f"creating hostPath {real}: {exc.strerror}"
            ) from exc
        # A symlink swapped in while we created it would show up here.
        if os.path.realpath(path) != real:
            raise scope.error(
                errors.DriverConfigError, f"hostPath {path} changed while it was created"
            )

    def _require_dir(self, handle: VolumeHandle, scope: ErrorScope) -> None:
        real = self._allowed(handle, scope)
        if real != handle:
            raise scope.error(
                errors.DriverError,
                f"{handle} now resolves to {real} through a symlink; refusing to use it",
            )
        if not os.path.isdir(handle):
            raise scope.error(errors.ResourceNotFound, f"{handle} is not an existing directory")


def _no_snapshots(scope: ErrorScope) -> errors.UnsupportedOperation:
    return scope.error(
        errors.UnsupportedOperation, "snapshots are not supported (the operator owns the data)"
    )


def _reclaim_policy(ctx: OpContext) -> ReclaimPolicy | None:
    """The volume's own policy, else its class's."""
    if ctx.volume is not None and ctx.volume.reclaim_policy is not None:
        return ctx.volume.reclaim_policy
    if ctx.storage_class is not None:
        return ctx.storage_class.reclaim_policy
    return None
