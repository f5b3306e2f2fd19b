"""The ``local`` driver: one Rune-managed directory per volume; snapshots are tree copies.

Volumes live at ``<localVolumeRoot>/<namespace>/<name>`` (mode 0750) and snapshots at
``<snapshotRoot>/<namespace>/<snapshot>``; handles are those paths, with the root's
symlinks resolved. Every change walks from the resolved root through ``O_NOFOLLOW``
directory descriptors (:mod:`~rune_sync.drivers.localfs`), so nothing outside the two
roots can be touched, and copies go through :mod:`~rune_sync.drivers.treecopy`.
Nothing is created before the first provision (or snapshot).

Rune's local driver has no attach step and lets the runner bind-mount the directory;
so here attach/detach are no-ops and ``mount`` returns the directory. This driver must
not accept a handle that is not exactly one of its own entry paths, and must not
delete anything but a volume or snapshot directory.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from rune_sync import errors
from rune_sync.drivers import localfs, treecopy
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
    require_snapshots,
)
from rune_sync.spec import names
from rune_sync.spec.model import AccessMode, Capabilities, StorageSettings

_VOLUME_MODE = 0o750


class LocalDriver(Declared):
    """Directories under ``localVolumeRoot``; see the module docstring."""

    NAME: ClassVar[str] = "local"
    # Size is informational for a directory, so any expansion succeeds, also online.
    CAPABILITIES: ClassVar[Capabilities] = Capabilities(
        access_modes=frozenset({AccessMode.READ_WRITE_ONCE}),
        snapshots=True,
        expand=True,
        online_expand=True,
        block_device=False,
    )

    def __init__(self, *, settings: StorageSettings) -> None:
        volumes = os.path.abspath(settings.local_volume_root)
        snapshots = os.path.abspath(settings.effective_snapshot_root)
        problem = roots_problem(volumes, snapshots)
        if problem is not None:
            raise errors.DriverConfigError(
                f"{self.NAME}: {problem}", driver=self.NAME, operation="configure"
            )
        self._volumes = localfs.NamespacedTree(volumes, "localVolumeRoot")
        self._snapshots = localfs.NamespacedTree(snapshots, "snapshotRoot")
        self._preserve_on_delete = settings.preserve_on_delete

    def provision(self, ctx: OpContext, request: ProvisionRequest) -> VolumeHandle:
        scope = ErrorScope.of(self.NAME, "provision", ctx)
        require_access_mode(self.CAPABILITIES, request.access_mode, scope)
        _check_names(request.namespace, request.name, scope)
        with _os_errors(scope, f"creating volume {request.namespace}/{request.name}"):
            path = self._volumes.path(request.namespace, request.name)
            with self._volumes.create_namespace(request.namespace) as ns_fd:
                os.close(localfs.make_dir(ns_fd, request.name, mode=_VOLUME_MODE, shown_as=path))
        return VolumeHandle(path)

    def delete(self, ctx: OpContext, handle: VolumeHandle) -> None:
        scope = ErrorScope.of(self.NAME, "delete", ctx)
        namespace, name = self._parse(self._volumes, handle, scope)
        if self._preserve_on_delete:
            return  # preserveOnDelete turns every delete into retain
        with (
            _os_errors(scope, f"deleting {handle}"),
            self._volumes.open_namespace(namespace) as ns_fd,
        ):
            if ns_fd is not None:
                _remove_with_leftover(ns_fd, name, handle)

    def attach(self, ctx: OpContext, handle: VolumeHandle) -> DevicePath:
        self._require_volume(handle, ErrorScope.of(self.NAME, "attach", ctx))
        return DevicePath("")

    def detach(self, ctx: OpContext, handle: VolumeHandle) -> None:
        self._parse(self._volumes, handle, ErrorScope.of(self.NAME, "detach", ctx))

    def mount(self, ctx: OpContext, request: MountRequest) -> MountTarget:
        self._require_volume(request.handle, ErrorScope.of(self.NAME, "mount", ctx))
        return MountTarget(request.handle)

    def unmount(self, ctx: OpContext, target: MountTarget) -> None:
        """Nothing to undo: ``mount`` created nothing, and data is never removed here."""

    def snapshot(self, ctx: OpContext, request: SnapshotRequest) -> SnapshotHandle:
        scope = ErrorScope.of(self.NAME, "snapshot", ctx)
        require_snapshots(self.CAPABILITIES, scope)
        _check_names(request.namespace, request.name, scope)
        return SnapshotHandle(
            self._copy_entry(
                source=request.source,
                source_tree=self._volumes,
                dest_tree=self._snapshots,
                namespace=request.namespace,
                name=request.name,
                scope=scope,
                doing="snapshotting",
            )
        )

    def verify_snapshot(
        self, ctx: OpContext, source: VolumeHandle, snapshot: SnapshotHandle
    ) -> str:
        """Compare file counts and bytes of the volume and its snapshot (a copy: cp -a)."""
        scope = ErrorScope.of(self.NAME, "verify-snapshot", ctx)
        counts = []
        for tree, handle in ((self._volumes, source), (self._snapshots, snapshot)):
            namespace, name = self._parse(tree, handle, scope)
            with (
                _os_errors(scope, f"counting {handle}"),
                tree.open_namespace(namespace) as ns_fd,
                _open_source(ns_fd, name, handle, scope) as fd,
            ):
                counts.append(localfs.census(fd))
        volume, copy = counts
        if volume != copy:
            raise scope.error(
                errors.DriverError,
                f"snapshot {snapshot} does not match {source}: {copy.files} files and "
                f"{copy.bytes} bytes in the snapshot, {volume.files} files and "
                f"{volume.bytes} bytes in the volume",
            )
        return f"{volume.files} files, {volume.bytes} bytes"

    def restore_from_snapshot(self, ctx: OpContext, request: RestoreRequest) -> VolumeHandle:
        scope = ErrorScope.of(self.NAME, "restore", ctx)
        require_snapshots(self.CAPABILITIES, scope)
        require_access_mode(self.CAPABILITIES, request.access_mode, scope)
        _check_names(request.namespace, request.name, scope)
        return VolumeHandle(
            self._copy_entry(
                source=request.source,
                source_tree=self._snapshots,
                dest_tree=self._volumes,
                namespace=request.namespace,
                name=request.name,
                scope=scope,
                doing="restoring",
            )
        )

    def _copy_entry(
        self,
        *,
        source: str,
        source_tree: localfs.NamespacedTree,
        dest_tree: localfs.NamespacedTree,
        namespace: str,
        name: str,
        scope: ErrorScope,
        doing: str,
    ) -> str:
        """Copy the entry ``source`` of one tree to ``namespace/name`` of the other.

        A complete destination is returned untouched: a snapshot is never taken twice
        and a restore never overwrites an existing volume.
        """
        src_ns, src_name = self._parse(source_tree, source, scope)
        path = dest_tree.path(namespace, name)
        with _os_errors(scope, f"{doing} {source} to {path}"):
            if self._is_complete(dest_tree, namespace, name, path):
                return path
            with (
                source_tree.open_namespace(src_ns) as src_ns_fd,
                _open_source(src_ns_fd, src_name, source, scope) as src_fd,
                dest_tree.create_namespace(namespace) as ns_fd,
            ):
                treecopy.copy_into(src_fd, ns_fd, name)
        return path

    def delete_snapshot(self, ctx: OpContext, handle: SnapshotHandle) -> None:
        scope = ErrorScope.of(self.NAME, "delete-snapshot", ctx)
        require_snapshots(self.CAPABILITIES, scope)
        namespace, name = self._parse(self._snapshots, handle, scope)
        with (
            _os_errors(scope, f"deleting snapshot {handle}"),
            self._snapshots.open_namespace(namespace) as ns_fd,
        ):
            if ns_fd is not None:
                _remove_with_leftover(ns_fd, name, handle)

    def expand(self, ctx: OpContext, request: ExpandRequest) -> None:
        """Size is informational for a directory: nothing to change once it exists."""
        scope = ErrorScope.of(self.NAME, "expand", ctx)
        require_expand(self.CAPABILITIES, request, scope)
        self._require_volume(request.handle, scope)

    def observe(self, ctx: OpContext, handle: VolumeHandle) -> Observation:
        scope = ErrorScope.of(self.NAME, "observe", ctx)
        with _os_errors(scope, f"observing {handle}"):
            seen = self._volumes.observe(handle)
        if seen is None:
            raise _not_an_entry(self._volumes, handle, scope)
        return seen

    def _parse(
        self, tree: localfs.NamespacedTree, handle: str, scope: ErrorScope
    ) -> tuple[str, str]:
        with _os_errors(scope, f"checking {handle}"):
            parts = tree.parse(handle)
        if parts is None:
            raise _not_an_entry(tree, handle, scope)
        return parts

    def _require_volume(self, handle: VolumeHandle, scope: ErrorScope) -> None:
        namespace, name = self._parse(self._volumes, handle, scope)
        with (
            _os_errors(scope, f"opening {handle}"),
            self._volumes.open_namespace(namespace) as ns_fd,
            _open_source(ns_fd, name, handle, scope),
        ):
            pass

    def _is_complete(
        self, tree: localfs.NamespacedTree, namespace: str, name: str, path: str
    ) -> bool:
        """True when the entry exists; entries appear by rename only, so it is whole."""
        with tree.open_namespace(namespace) as ns_fd:
            if ns_fd is None:
                return False
            try:
                os.close(localfs.open_dir(ns_fd, name, shown_as=path))
            except FileNotFoundError:
                return False
            return True


def _not_an_entry(
    tree: localfs.NamespacedTree, handle: str, scope: ErrorScope
) -> errors.DriverConfigError:
    with _os_errors(scope, f"checking {handle}"):
        expected = os.path.join(tree.real_root(), "<namespace>", "<name>")
    return scope.error(
        errors.DriverConfigError,
        f"handle {handle!r} is not a {tree.setting} entry (expected {expected})",
    )


def roots_problem(volume_root: str, snapshot_root: str) -> str | None:
    """Why these roots cannot be used together (lexically), or ``None``.

    When one root lies inside the other, its first component below the outer one
    must be dot-named, so it can never be taken for a namespace directory.
    """
    if volume_root == snapshot_root:
        return f"snapshotRoot and localVolumeRoot must differ (both are {volume_root})"
    for inner, outer in ((snapshot_root, volume_root), (volume_root, snapshot_root)):
        if inner.startswith(outer.rstrip(os.sep) + os.sep):
            first = inner[len(outer.rstrip(os.sep)) + 1 :].split(os.sep)[0]
            if not first.startswith("."):
                return f"{inner} lies inside {outer}; a root inside the other must be dot-named"
    return None


def _check_names(namespace: str, name: str, scope: ErrorScope) -> None:
    for what, value in (("namespace", namespace), ("name", name)):
        problem = names.label_problem(value)
        if problem is not None:
            raise scope.error(errors.DriverConfigError, f"{what} {value!r} {problem}")


def _remove_with_leftover(ns_fd: int, name: str, path: str) -> None:
    """Remove an entry and the temporary leftover of an interrupted copy to it.

    Anything mounted inside belongs to someone else, so that is refused outright.
    """
    mounts = localfs.mounts_within(path)
    if mounts:
        raise localfs.Refused(f"{path} has mounts inside ({', '.join(mounts)}); unmount first")
    partial = treecopy.partial_name(name)
    localfs.remove_entry(ns_fd, partial, shown_as=os.path.join(os.path.dirname(path), partial))
    localfs.remove_entry(ns_fd, name, shown_as=path)


@contextmanager
def _open_source(ns_fd: int | None, name: str, path: str, scope: ErrorScope) -> Iterator[int]:
    fd = None
    if ns_fd is not None:
        try:
            fd = localfs.open_dir(ns_fd, name, shown_as=path)
        except FileNotFoundError:
            fd = None
    if fd is None:
        raise scope.error(errors.ResourceNotFound, f"{path} does not exist")
    with localfs.closing_fd(fd):
        yield fd


@contextmanager
def _os_errors(scope: ErrorScope, doing: str) -> Iterator[None]:
    """Turn filesystem errors into driver errors that say what we were doing."""
    try:
        yield
    except errors.DriverError:
        raise
    except localfs.Refused as exc:
        raise scope.error(errors.DriverError, f"{doing}: {exc}") from exc
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0, "?")
        where = f" ({exc.filename})" if exc.filename else ""
        raise scope.error(errors.DriverError, f"{doing}: {exc.strerror} [{code}]{where}") from exc
