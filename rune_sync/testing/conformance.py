"""The driver conformance suite: every promise of :mod:`rune_sync.drivers.base`, as tests.

Owned here: :class:`DriverConformance`. A driver package subclasses it in a test
module under a ``Test…`` name and implements :meth:`~DriverConformance.make_driver`;
pytest then collects the inherited ``test_*`` methods (each takes pytest's
``tmp_path``). Steps that need a capability the driver does not advertise are
skipped, never failed; unadvertised features must raise ``UnsupportedOperation``.
The suite must only use the public driver contract, never a driver's internals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import ClassVar

from rune_sync import errors
from rune_sync.drivers.base import (
    Driver,
    ExpandRequest,
    ObservedKind,
    OpContext,
    SnapshotHandle,
    VolumeHandle,
    merge_parameters,
)
from rune_sync.spec.model import AccessMode, Capabilities, StorageClass, Volume
from rune_sync.spec.quantity import Quantity
from rune_sync.testing.harness import (
    PROBE_NAME,
    SIZE,
    Run,
    expect,
    expect_raises,
    read_probe,
    skip,
    write_probe,
)

_BIGGER = Quantity(SIZE.bytes * 2, "2Mi")


class DriverConformance:
    """Base class of a driver's conformance tests; see the module docstring.

    Class attributes: ``namespace`` for test volumes, ``node`` for ``OpContext.node``,
    ``retains_data_on_delete`` for drivers whose ``delete`` keeps data by design
    (``local-host``): the suite then checks that the data survives instead; and
    ``invalid_parameters``, parameters laid over a volume's that provision must refuse
    with ``DriverConfigError`` (``None`` skips that test).
    """

    namespace: ClassVar[str] = "conformance"
    node: ClassVar[str] = "conformance-node"
    retains_data_on_delete: ClassVar[bool] = False
    invalid_parameters: ClassVar[Mapping[str, str] | None] = None

    def make_driver(self, tmp_path: Path) -> Driver:
        """Hook: a fresh driver whose storage lives under ``tmp_path``."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_driver(tmp_path)")

    def volume_parameters(self, tmp_path: Path, *, namespace: str, name: str) -> Mapping[str, str]:
        """Hook: the parameters of test volume ``namespace/name`` (e.g. a ``hostPath``)."""
        return {}

    def op_context(self, driver: Driver, *, volume: Volume) -> OpContext:
        """Hook: the context of a call about ``volume``; by default a plain class."""
        storage_class = StorageClass(name=f"{driver.name}-conformance", driver=driver.name)
        return OpContext(
            storage_class=storage_class,
            volume=volume,
            parameters=merge_parameters(storage_class.parameters, volume.parameters),
            node=self.node,
            address=str(volume.address),
        )

    def test_name_and_capabilities_are_sane(self, tmp_path: Path) -> None:
        driver = self.make_driver(tmp_path)
        caps = driver.capabilities
        expect(isinstance(driver.name, str) and bool(driver.name), "name must be a non-empty str")
        expect(isinstance(caps, Capabilities), "capabilities must be a Capabilities value")
        expect(bool(caps.access_modes), "no access mode is advertised")
        expect(all(isinstance(m, AccessMode) for m in caps.access_modes), "unknown access mode")
        for flag in ("snapshots", "expand", "online_expand", "block_device"):
            expect(isinstance(getattr(caps, flag), bool), f"capabilities.{flag} must be a bool")
        expect(not caps.online_expand or caps.expand, "online_expand requires expand")
        expect(all(isinstance(k, str) and k for k in caps.topology_keys), "bad topology key")
        expect(driver.capabilities == caps, "capabilities must be stable")
        declared = getattr(type(driver), "CAPABILITIES", None)
        expect(declared == caps, "the class's CAPABILITIES must equal driver.capabilities")

    def test_lifecycle(self, tmp_path: Path) -> None:
        with Run(self, tmp_path) as run:
            caps = run.driver.capabilities
            ctx = run.context("life")
            handle = run.provision(ctx)
            expect(run.driver.observe(ctx, handle).exists, "observe: provisioned volume missing")
            run.driver.attach(ctx, handle)
            mounted = run.mount(ctx, handle)
            wrote = write_probe(mounted, "life")
            if wrote:
                expect(read_probe(mounted) == "life", "probe file not read back through mount")
            run.driver.unmount(ctx, mounted)
            run.driver.unmount(ctx, mounted)
            if wrote:
                again = run.mount(ctx, handle)
                expect(read_probe(again) == "life", "unmount must never remove data")
                run.driver.unmount(ctx, again)
            run.driver.detach(ctx, handle)
            run.driver.detach(ctx, handle)
            if caps.snapshots:
                snap = run.snapshot(ctx, "life-snap", handle)
                restored_ctx = run.context("life-restored")
                restored = run.restore(restored_ctx, snap)
                expect(restored != handle, "restore must create a new volume")
                if wrote:
                    content = read_probe(run.mount(restored_ctx, restored))
                    expect(content == "life", f"restored volume lacks {PROBE_NAME}")
                run.driver.delete_snapshot(ctx, snap)
                run.driver.delete_snapshot(ctx, snap)
            if caps.expand:
                run.driver.expand(ctx, ExpandRequest(handle=handle, size=_BIGGER))
                run.driver.expand(ctx, ExpandRequest(handle=handle, size=_BIGGER))
            run.driver.delete(ctx, handle)
            self._check_deleted(run, ctx, handle, probe_written=wrote)

    def test_provision_twice_returns_the_same_handle(self, tmp_path: Path) -> None:
        with Run(self, tmp_path) as run:
            ctx = run.context("twice")
            expect(run.provision(ctx) == run.provision(ctx), "provision is not idempotent")

    def test_unadvertised_access_modes_are_refused(self, tmp_path: Path) -> None:
        with Run(self, tmp_path) as run:
            missing = sorted(set(AccessMode) - run.driver.capabilities.access_modes)
            if not missing:
                skip("the driver advertises every access mode")
            for mode in missing:
                ctx = run.context(f"mode-{mode.value.lower()}", mode)
                expect_raises(errors.AccessModeUnsupported, partial(run.provision, ctx), mode)
            if run.driver.capabilities.snapshots:
                source = run.provision(run.context("mode-source"))
                snap = run.snapshot(run.context("mode-source"), "mode-snap", source)
                ctx = run.context("mode-restored", missing[0])
                expect_raises(
                    errors.AccessModeUnsupported, lambda: run.restore(ctx, snap), "restore"
                )

    def test_delete_twice_and_detach_afterwards_succeed(self, tmp_path: Path) -> None:
        with Run(self, tmp_path) as run:
            ctx = run.context("gone")
            handle = run.provision(ctx)
            neighbour_ctx = run.context("neighbour")
            neighbour = run.provision(neighbour_ctx)
            run.driver.delete(ctx, handle)
            run.driver.delete(ctx, handle)
            run.driver.detach(ctx, handle)
            self._check_deleted(run, ctx, handle, probe_written=False)
            seen = run.driver.observe(neighbour_ctx, neighbour)
            expect(seen.exists, "deleting one volume removed another")

    def test_invalid_parameters_are_refused(self, tmp_path: Path) -> None:
        if self.invalid_parameters is None:
            skip("no invalid_parameters declared for this driver")
        with Run(self, tmp_path) as run:
            ctx = run.context("invalid")
            bad = replace(ctx, parameters=merge_parameters(ctx.parameters, self.invalid_parameters))
            expect_raises(errors.DriverConfigError, partial(run.provision, bad), "provision")

    def test_attach_twice_and_detach_never_attached_succeed(self, tmp_path: Path) -> None:
        with Run(self, tmp_path) as run:
            ctx = run.context("attach")
            handle = run.provision(ctx)
            run.driver.detach(ctx, handle)
            first = run.driver.attach(ctx, handle)
            expect(run.driver.attach(ctx, handle) == first, "attach twice gave other devices")
            expect(run.mount(ctx, handle) == run.mount(ctx, handle), "mount is not idempotent")

    def test_observe_is_stable_and_reports_absence(self, tmp_path: Path) -> None:
        with Run(self, tmp_path) as run:
            ctx = run.context("observed")
            handle = run.provision(ctx)
            first = run.driver.observe(ctx, handle)
            expect(first.exists, "observe: provisioned volume reported missing")
            expect(run.driver.observe(ctx, handle) == first, "observe changed with no change")
            run.driver.delete(ctx, handle)
            self._check_deleted(run, ctx, handle, probe_written=False)

    def test_snapshot_operations_without_snapshots_are_unsupported(self, tmp_path: Path) -> None:
        with Run(self, tmp_path) as run:
            if run.driver.capabilities.snapshots:
                skip("the driver advertises snapshots")
            ctx = run.context("nosnap")
            handle = run.provision(ctx)
            unsupported = errors.UnsupportedOperation
            expect_raises(unsupported, lambda: run.snapshot(ctx, "nosnap", handle), "snapshot")
            # Any handle will do: the capability check comes before anything else.
            fake = SnapshotHandle(f"{handle}-snapshot")
            restore_ctx = run.context("nosnap-restored")
            expect_raises(unsupported, lambda: run.restore(restore_ctx, fake), "restore")
            expect_raises(
                unsupported, lambda: run.driver.delete_snapshot(ctx, fake), "delete_snapshot"
            )

    def test_snapshot_and_restore_are_idempotent(self, tmp_path: Path) -> None:
        with Run(self, tmp_path) as run:
            if not run.driver.capabilities.snapshots:
                skip("the driver does not advertise snapshots")
            ctx = run.context("snapsrc")
            handle = run.provision(ctx)
            snap = run.snapshot(ctx, "snap-twice", handle)
            expect(run.snapshot(ctx, "snap-twice", handle) == snap, "snapshot not idempotent")
            restored_ctx = run.context("snap-restored")
            restored = run.restore(restored_ctx, snap)
            mounted = run.mount(restored_ctx, restored)
            wrote = write_probe(mounted, "written after restore")
            expect(run.restore(restored_ctx, snap) == restored, "restore is not idempotent")
            if wrote:
                content = read_probe(run.mount(restored_ctx, restored))
                expect(content == "written after restore", "a second restore overwrote data")

    def test_missing_sources_raise_not_found(self, tmp_path: Path) -> None:
        with Run(self, tmp_path) as run:
            caps = run.driver.capabilities
            if not caps.snapshots:
                skip("the driver does not advertise snapshots")
            ctx = run.context("lost")
            handle = run.provision(ctx)
            snap = run.snapshot(ctx, "lost-snap", handle)
            run.driver.delete_snapshot(ctx, snap)
            restore_ctx = run.context("lost-restored")
            expect_raises(
                errors.ResourceNotFound, lambda: run.restore(restore_ctx, snap), "restore"
            )
            if not self.retains_data_on_delete:
                run.driver.delete(ctx, handle)
                expect_raises(
                    errors.ResourceNotFound, lambda: run.snapshot(ctx, "lost-2", handle), "snapshot"
                )

    def test_expand_follows_capabilities(self, tmp_path: Path) -> None:
        with Run(self, tmp_path) as run:
            caps = run.driver.capabilities
            ctx = run.context("grow")
            handle = run.provision(ctx)
            detached = ExpandRequest(handle=handle, size=_BIGGER)
            attached = ExpandRequest(handle=handle, size=_BIGGER, attached=True)
            if not caps.expand:
                expect_raises(
                    errors.UnsupportedOperation, lambda: run.driver.expand(ctx, detached), "expand"
                )
                return
            run.driver.attach(ctx, handle)
            if caps.online_expand:
                run.driver.expand(ctx, attached)
            else:
                expect_raises(
                    errors.OnlineExpandUnsupported,
                    lambda: run.driver.expand(ctx, attached),
                    "expand of an attached volume",
                )
            run.driver.detach(ctx, handle)
            run.driver.expand(ctx, detached)

    def _check_deleted(
        self, run: Run, ctx: OpContext, volume: VolumeHandle, *, probe_written: bool
    ) -> None:
        """After delete: gone (and gone for attach/mount/expand), or kept by design."""
        observed = run.driver.observe(ctx, volume)
        if self.retains_data_on_delete:
            expect(observed.kind is not ObservedKind.MISSING, "delete removed retained data")
            if probe_written:
                expect(read_probe(run.mount(ctx, volume)) is not None, "retained data changed")
            return
        expect(observed.kind is ObservedKind.MISSING, f"observe after delete: {observed}")
        not_found = errors.ResourceNotFound
        expect_raises(not_found, lambda: run.driver.attach(ctx, volume), "attach after delete")
        expect_raises(not_found, lambda: run.mount(ctx, volume), "mount after delete")
        if run.driver.capabilities.expand:
            grow = ExpandRequest(handle=volume, size=_BIGGER)
            expect_raises(not_found, lambda: run.driver.expand(ctx, grow), "expand after delete")
