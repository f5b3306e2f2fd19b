"""The ``do-volume`` driver against the fake DigitalOcean API (``tests/fakes/digitalocean.py``).

Everything runs over real HTTP against a real server on 127.0.0.1: the conformance
suite, the scope table of seed 000 (each operation with a token lacking one scope, and
with exactly the scopes it needs), the documented endpoints only, idempotency when
answers are lost, GiB rounding, region pinning, offline expand, the 64-character name
limit, transient failures (also through the real apply engine and a real SQLite state),
where the API URL comes from, and that the API token never leaks into errors.
"""

from __future__ import annotations

import secrets
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import pytest

from rune_sync import errors
from rune_sync.apply import engine
from rune_sync.apply.retry import RetryPolicy
from rune_sync.drivers.base import (
    Driver,
    ExpandRequest,
    MountRequest,
    ObservedKind,
    OpContext,
    ProvisionRequest,
    RestoreRequest,
    SnapshotHandle,
    SnapshotRequest,
    VolumeHandle,
)
from rune_sync.drivers.do_volume import client as api
from rune_sync.drivers.do_volume.driver import DoVolumeDriver
from rune_sync.drivers.local import LocalDriver
from rune_sync.drivers.registry import DriverRegistry
from rune_sync.errors import DriverError
from rune_sync.plan import refresh
from rune_sync.plan.model import Options, Plan
from rune_sync.plan.planner import PlanInput, make_plan
from rune_sync.secrets import Resolver
from rune_sync.spec.expand import desired_set
from rune_sync.spec.model import AccessMode, Address, StorageClass, StorageSettings, Volume
from rune_sync.spec.quantity import Quantity
from rune_sync.spec.validate import validate_directory
from rune_sync.state import StateBackend, open_backend
from rune_sync.testing import DriverConformance
from tests.apply import Collect, actions, volume
from tests.fakes.digitalocean import (
    ACTIONS_READ,
    BLOCK_STORAGE_ACTION_CREATE,
    BLOCK_STORAGE_CREATE,
    BLOCK_STORAGE_DELETE,
    BLOCK_STORAGE_READ,
    BLOCK_STORAGE_SNAPSHOT_CREATE,
    BLOCK_STORAGE_SNAPSHOT_DELETE,
    BLOCK_STORAGE_SNAPSHOT_READ,
    DRIVER_SCOPES,
    DROPLET_READ,
    ENDPOINT_SCOPES,
    FakeDigitalOcean,
    scopes_except,
    token_hash,
)
from tests.fakes.digitalocean import ENDPOINTS as FAKE_ENDPOINTS
from tests.plan import CAPABILITIES, PARAMETER_RULES, validate, write_source

GIB = 1024**3
MIB = 1024**2
REGION = "nyc3"
OTHER_REGION = "fra1"
NODE = "node-1"
RWO = AccessMode.READ_WRITE_ONCE
ADDRESS = "volume/prod/web"
DEVICE_PREFIX = "/dev/disk/by-id/scsi-0DO_Volume_"
ACTIONS_PATH = "/v2/volumes/{id}/actions"
DRIVER_ENDPOINTS = frozenset(str(e) for e in api.ENDPOINTS)


_OPEN: list[DoVolumeDriver] = []


def make_driver(
    *, request_timeout: float = 5.0, action_timeout: float = 10.0, poll_interval: float = 0.01
) -> DoVolumeDriver:
    """A driver that polls actions every 10 ms (the default is twice a second); closed
    when the test ends."""
    driver = DoVolumeDriver(
        settings=StorageSettings(),
        poll_interval=poll_interval,
        action_timeout=action_timeout,
        request_timeout=request_timeout,
    )
    _OPEN.append(driver)
    return driver


def close(driver: DoVolumeDriver) -> None:
    """Release the driver's connection pool. The driver has no ``close()`` of its own
    (reported): without this its keep-alive sockets are left to the garbage collector,
    which warns (``ResourceWarning``, an error here)."""
    closer = getattr(driver, "close", None)
    if callable(closer):
        closer()
    else:
        driver._http.close()


@pytest.fixture(autouse=True)
def _close_drivers() -> Iterator[None]:
    yield
    while _OPEN:
        close(_OPEN.pop())


def prov(name: str = "web", *, namespace: str = "prod", size: int = GIB) -> ProvisionRequest:
    return ProvisionRequest(name=name, namespace=namespace, size=Quantity(size), access_mode=RWO)


def grow(handle: str, size: int, *, attached: bool = False) -> ExpandRequest:
    return ExpandRequest(handle=VolumeHandle(handle), size=Quantity(size), attached=attached)


def raised(kind: type[DriverError], call: Callable[[], object]) -> DriverError:
    """The ``kind`` error ``call`` raises (caught here, in a frame holding no secret)."""
    try:
        call()
    except kind as exc:
        return exc
    raise AssertionError(f"expected {kind.__name__}")


@dataclass
class World:
    """One test's fake API, driver and a droplet ``NODE`` in ``REGION``."""

    api: FakeDigitalOcean
    driver: DoVolumeDriver

    def params(self, *, token: str | None = None, **extra: str) -> dict[str, str]:
        base = {
            "region": REGION,
            "apiToken": self.api.token if token is None else token,
            "apiEndpoint": self.api.url,
        }
        return {**base, **extra}

    def ctx(
        self,
        *,
        token: str | None = None,
        node: str = NODE,
        address: str = ADDRESS,
        parameters: Mapping[str, str] | None = None,
        **extra: str,
    ) -> OpContext:
        params = self.params(token=token, **extra) if parameters is None else parameters
        return OpContext(parameters=MappingProxyType(dict(params)), node=node, address=address)

    def provision(
        self,
        name: str = "web",
        *,
        namespace: str = "prod",
        size: int = GIB,
        ctx: OpContext | None = None,
    ) -> VolumeHandle:
        return self.driver.provision(ctx or self.ctx(), prov(name, namespace=namespace, size=size))

    def snapshot(self, source: VolumeHandle, name: str = "snap") -> SnapshotHandle:
        request = SnapshotRequest(name=name, namespace="prod", source=source)
        return self.driver.snapshot(self.ctx(), request)

    def restore(
        self, source: SnapshotHandle, name: str = "restored", *, size: int = GIB
    ) -> VolumeHandle:
        request = RestoreRequest(
            name=name, namespace="prod", size=Quantity(size), access_mode=RWO, source=source
        )
        return self.driver.restore_from_snapshot(self.ctx(), request)

    def remote(self, handle: str) -> dict[str, Any]:
        found = self.api.volume(handle)
        assert found is not None, f"volume {handle} is not in the fake"
        return found

    def action_posts(self) -> list[dict[str, Any]]:
        return [r.body for r in self.api.calls("POST", ACTIONS_PATH)]

    def add_token(self, scopes: str | frozenset[str] | set[str]) -> str:
        token = "dop_v1_" + secrets.token_hex(32)
        self.api.add_token(token, scopes)
        return token


@pytest.fixture
def world(do_api: FakeDigitalOcean) -> World:
    do_api.add_droplet(NODE, REGION)
    return World(do_api, make_driver())


# ----------------------------------------------------------------------------- conformance


class TestDoVolumeConformance(DriverConformance):
    """The shared driver suite, every step over HTTP against the fake."""

    node: ClassVar[str] = "conformance-node"
    invalid_parameters: ClassVar[Mapping[str, str] | None] = MappingProxyType({"fsType": "btrfs"})
    do_api: FakeDigitalOcean

    @pytest.fixture(autouse=True)
    def _fake_api(self, do_api: FakeDigitalOcean) -> Iterator[None]:
        self.do_api = do_api
        do_api.add_droplet(self.node, REGION)
        yield
        # Whatever the suite did, the driver stayed inside its endpoint table.
        assert do_api.unknown_requests() == []
        assert do_api.endpoints_called() <= DRIVER_ENDPOINTS

    def make_driver(self, tmp_path: Path) -> Driver:
        return make_driver()

    def volume_parameters(self, tmp_path: Path, *, namespace: str, name: str) -> Mapping[str, str]:
        return {"region": REGION, "apiToken": self.do_api.token, "apiEndpoint": self.do_api.url}


# ----------------------------------------------------------------------------- scopes

NEEDS: Mapping[str, frozenset[str]] = {
    "provision": frozenset({BLOCK_STORAGE_READ, BLOCK_STORAGE_CREATE}),
    "observe": frozenset({BLOCK_STORAGE_READ}),
    "delete": frozenset({BLOCK_STORAGE_DELETE}),
    "attach": frozenset(
        {BLOCK_STORAGE_READ, DROPLET_READ, BLOCK_STORAGE_ACTION_CREATE, ACTIONS_READ}
    ),
    "detach": frozenset(
        {BLOCK_STORAGE_READ, DROPLET_READ, BLOCK_STORAGE_ACTION_CREATE, ACTIONS_READ}
    ),
    "expand": frozenset({BLOCK_STORAGE_READ, BLOCK_STORAGE_ACTION_CREATE, ACTIONS_READ}),
    "mount": frozenset({BLOCK_STORAGE_READ}),
    "snapshot": frozenset({BLOCK_STORAGE_SNAPSHOT_READ, BLOCK_STORAGE_SNAPSHOT_CREATE}),
    "restore_from_snapshot": frozenset(
        {BLOCK_STORAGE_READ, BLOCK_STORAGE_SNAPSHOT_READ, BLOCK_STORAGE_CREATE}
    ),
    "delete_snapshot": frozenset({BLOCK_STORAGE_SNAPSHOT_DELETE}),
}
"""The scopes each driver operation needs (seed 000's table, endpoint by endpoint)."""

Operation = Callable[[OpContext], object]


def prepare(w: World, op: str) -> Operation:
    """Set up (with the full-access token) what ``op`` needs; returns the call itself."""
    d = w.driver
    if op == "provision":
        return lambda ctx: d.provision(ctx, prov("fresh"))
    handle = w.provision()
    if op == "observe":
        return lambda ctx: d.observe(ctx, handle)
    if op == "delete":
        return lambda ctx: d.delete(ctx, handle)
    if op == "attach":
        return lambda ctx: d.attach(ctx, handle)
    if op == "detach":
        d.attach(w.ctx(), handle)
        return lambda ctx: d.detach(ctx, handle)
    if op == "expand":
        return lambda ctx: d.expand(ctx, grow(handle, 3 * GIB))
    if op == "mount":
        return lambda ctx: d.mount(ctx, MountRequest(handle=handle, target="/mnt/web"))
    if op == "snapshot":
        return lambda ctx: d.snapshot(
            ctx, SnapshotRequest(name="snap", namespace="prod", source=handle)
        )
    snap = w.snapshot(handle)
    if op == "restore_from_snapshot":
        request = RestoreRequest(
            name="restored", namespace="prod", size=Quantity(GIB), access_mode=RWO, source=snap
        )
        return lambda ctx: d.restore_from_snapshot(ctx, request)
    assert op == "delete_snapshot"
    return lambda ctx: d.delete_snapshot(ctx, snap)


SCOPE_CASES = [(op, scope) for op, scopes in NEEDS.items() for scope in sorted(scopes)]


@pytest.mark.parametrize(("op", "scope"), SCOPE_CASES, ids=[f"{o}-{s}" for o, s in SCOPE_CASES])
def test_a_token_lacking_a_scope_is_refused_naming_that_scope(
    world: World, op: str, scope: str
) -> None:
    call = prepare(world, op)
    token = world.add_token(scopes_except(scope))
    exc = raised(errors.DriverAuthError, lambda: call(world.ctx(token=token)))
    message = str(exc)
    named = sorted(s for s in DRIVER_SCOPES if s in message)
    assert named == [scope], message
    assert "lacks the scope" in message
    assert exc.driver == "do-volume" and exc.address == ADDRESS
    # The refusal is the fake's 403 on an endpoint that this scope opens.
    refused = [r for r in world.api.requests if r.status == 403]
    assert len(refused) == 1
    assert refused[0].endpoint is not None and scope in ENDPOINT_SCOPES[refused[0].endpoint]


@pytest.mark.parametrize("op", sorted(NEEDS))
def test_each_operation_works_with_exactly_the_scopes_it_needs(world: World, op: str) -> None:
    call = prepare(world, op)
    world.api.clear_requests()
    token = world.add_token(NEEDS[op])
    call(world.ctx(token=token))
    assert [r for r in world.api.requests if r.status in (401, 403)] == []
    assert world.api.unknown_requests() == []


@pytest.mark.parametrize("op", ["provision", "attach", "delete_snapshot"])
def test_an_unknown_token_is_rejected_as_401_naming_the_scope(world: World, op: str) -> None:
    call = prepare(world, op)
    exc = raised(errors.DriverAuthError, lambda: call(world.ctx(token="dop_v1_" + "0" * 64)))
    first = {
        "provision": BLOCK_STORAGE_READ,
        "attach": BLOCK_STORAGE_READ,
        "delete_snapshot": BLOCK_STORAGE_SNAPSHOT_DELETE,
    }[op]
    assert "rejected the API token" in str(exc)
    assert first in str(exc)
    assert [r.status for r in world.api.requests][-1] == 401


def test_no_token_is_a_configuration_error_before_any_request(world: World) -> None:
    params = world.params()
    del params["apiToken"]
    ctx = world.ctx(parameters=params)
    exc = raised(errors.DriverConfigError, lambda: world.driver.provision(ctx, prov()))
    assert "apiToken" in str(exc)
    ctx = world.ctx(parameters={**params, "apiToken": ""})
    raised(errors.DriverConfigError, lambda: world.driver.observe(ctx, VolumeHandle("x")))
    assert world.api.requests == []


def test_an_unresolved_secret_reference_is_refused_before_any_request(world: World) -> None:
    ctx = world.ctx(apiToken="secret:do-api-token.shared.rune/token")
    exc = raised(errors.DriverConfigError, lambda: world.driver.provision(ctx, prov()))
    assert "resolved" in str(exc)
    assert world.api.requests == []


def test_the_legacy_api_token_secret_ref_key_carries_the_resolved_token(world: World) -> None:
    params = world.params()
    params["apiTokenSecretRef"] = params.pop("apiToken")
    handle = world.provision(ctx=world.ctx(parameters=params))
    assert world.remote(handle)["name"] == "rune-prod-web"


# ----------------------------------------------------------------------------- endpoints


def test_the_driver_endpoint_table_matches_the_seed_scope_table() -> None:
    assert DRIVER_ENDPOINTS <= FAKE_ENDPOINTS
    for endpoint in api.ENDPOINTS:
        assert endpoint.scope in DRIVER_SCOPES, endpoint
        assert endpoint.scope in ENDPOINT_SCOPES[str(endpoint)], endpoint


def test_a_full_lifecycle_with_the_minimal_token_calls_only_documented_endpoints(
    world: World,
) -> None:
    token = world.add_token(DRIVER_SCOPES)
    d, ctx = world.driver, world.ctx(token=token)
    handle = d.provision(ctx, prov())
    assert d.observe(ctx, handle).kind is ObservedKind.BLOCK_VOLUME
    device = d.attach(ctx, handle)
    mounted = d.mount(ctx, MountRequest(handle=handle, target="/mnt/web", device=device))
    assert str(mounted) == str(device)
    d.detach(ctx, handle)
    d.expand(ctx, grow(handle, 2 * GIB))
    snap = d.snapshot(ctx, SnapshotRequest(name="snap", namespace="prod", source=handle))
    restored_ctx = world.ctx(token=token, address="volume/prod/restored")
    restored = d.restore_from_snapshot(
        restored_ctx,
        RestoreRequest(
            name="restored", namespace="prod", size=Quantity(GIB), access_mode=RWO, source=snap
        ),
    )
    d.delete_snapshot(ctx, snap)
    d.delete(restored_ctx, restored)
    d.delete(ctx, handle)
    assert d.observe(ctx, handle).kind is ObservedKind.MISSING

    assert world.api.unknown_requests() == []
    called = world.api.endpoints_called()
    assert called <= DRIVER_ENDPOINTS, called - DRIVER_ENDPOINTS
    assert called == DRIVER_ENDPOINTS  # the lifecycle exercises every endpoint of the table
    assert all(r.authenticated and r.status not in (401, 403) for r in world.api.requests)
    assert world.api.volumes == [] and world.api.snapshots == []


# ----------------------------------------------------------------------------- idempotency


def test_provision_twice_makes_one_volume_named_after_namespace_and_name(world: World) -> None:
    first = world.provision("web", namespace="prod")
    assert world.provision("web", namespace="prod") == first
    found = world.api.find_volumes("rune-prod-web", REGION)
    assert [v["id"] for v in found] == [first]
    assert len(world.api.volumes) == 1
    assert len(world.api.calls("POST", "/v2/volumes")) == 1


def test_the_same_name_in_another_region_is_another_volume(world: World) -> None:
    here = world.provision()
    there = world.provision(ctx=world.ctx(region=OTHER_REGION))
    assert here != there
    assert world.remote(there)["region"]["slug"] == OTHER_REGION
    assert len(world.api.find_volumes("rune-prod-web")) == 2


def test_a_create_whose_answer_was_lost_is_found_by_the_retry(do_api: FakeDigitalOcean) -> None:
    do_api.add_droplet(NODE, REGION)
    w = World(do_api, make_driver(request_timeout=0.2))
    lost = do_api.slow(0.6, method="POST", path="/v2/volumes")
    raised(errors.DriverTransientError, w.provision)
    assert lost.hits == 1
    deadline = time.monotonic() + 5
    while not do_api.find_volumes("rune-prod-web", REGION) and time.monotonic() < deadline:
        time.sleep(0.02)
    [created] = do_api.find_volumes("rune-prod-web", REGION)  # the server acted after all
    assert w.provision() == created["id"]
    assert len(do_api.volumes) == 1
    assert len(do_api.calls("POST", "/v2/volumes")) == 1


def test_a_create_racing_another_finds_the_winner_after_409(world: World) -> None:
    # A's create is held up; meanwhile B looks, creates and wins. A gets 409 and adopts B's.
    world.api.slow(0.5, method="POST", path="/v2/volumes")
    results: dict[str, str] = {}

    def provision(label: str) -> None:
        results[label] = world.driver.provision(world.ctx(), prov())

    a = threading.Thread(target=provision, args=("a",))
    a.start()
    time.sleep(0.15)
    provision("b")
    a.join(5)
    assert results["a"] == results["b"]
    assert len(world.api.volumes) == 1
    assert [r.status for r in world.api.calls("POST", "/v2/volumes")] == [201, 409]


def test_a_dropped_create_has_no_effect_and_the_retry_creates_one(world: World) -> None:
    world.api.drop(method="POST", path="/v2/volumes")
    raised(errors.DriverTransientError, world.provision)
    assert world.api.volumes == []
    handle = world.provision()
    assert [v["id"] for v in world.api.volumes] == [handle]


def test_delete_of_a_missing_volume_succeeds(world: World) -> None:
    handle = world.provision()
    world.driver.delete(world.ctx(), handle)
    world.driver.delete(world.ctx(), handle)
    world.driver.delete(world.ctx(), VolumeHandle("00000000-0000-0000-0000-000000000000"))
    assert [r.status for r in world.api.calls("DELETE", "/v2/volumes/{id}")] == [204, 404, 404]


def test_delete_snapshot_of_a_missing_snapshot_succeeds(world: World) -> None:
    snap = world.snapshot(world.provision())
    world.driver.delete_snapshot(world.ctx(), snap)
    world.driver.delete_snapshot(world.ctx(), snap)
    assert [r.status for r in world.api.calls("DELETE", "/v2/snapshots/{id}")] == [204, 404]


def test_detach_when_not_attached_or_gone_makes_no_action(world: World) -> None:
    handle = world.provision()
    world.driver.detach(world.ctx(), handle)
    world.driver.detach(world.ctx(node=""), handle)
    world.driver.delete(world.ctx(), handle)
    world.driver.detach(world.ctx(), handle)
    assert world.action_posts() == []


def test_attach_twice_makes_one_action_and_returns_the_device(world: World) -> None:
    handle = world.provision()
    device = world.driver.attach(world.ctx(), handle)
    assert device == DEVICE_PREFIX + "rune-prod-web"
    assert world.driver.attach(world.ctx(), handle) == device
    [droplet] = [d for d in world.api.droplets if d["name"] == NODE]
    assert world.remote(handle)["droplet_ids"] == [droplet["id"]]
    assert [b["type"] for b in world.action_posts()] == ["attach"]
    mounted = world.driver.mount(world.ctx(), MountRequest(handle=handle, target="/mnt/web"))
    assert str(mounted) == str(device)


def test_detach_without_a_node_detaches_from_every_droplet(world: World) -> None:
    handle = world.provision()
    world.driver.attach(world.ctx(), handle)
    world.driver.detach(world.ctx(node=""), handle)
    assert world.remote(handle)["droplet_ids"] == []
    assert [b["type"] for b in world.action_posts()] == ["attach", "detach"]


def test_snapshot_and_restore_twice_make_one_each(world: World) -> None:
    handle = world.provision()
    snap = world.snapshot(handle)
    assert world.snapshot(handle) == snap
    restored = world.restore(snap)
    assert world.restore(snap) == restored
    assert len(world.api.snapshots) == 1
    assert len(world.api.calls("POST", "/v2/volumes/{id}/snapshots")) == 1
    assert [s["name"] for s in world.api.snapshots] == ["rune-prod-snap"]
    assert sorted(v["name"] for v in world.api.volumes) == ["rune-prod-restored", "rune-prod-web"]


# ----------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("size", "gib"),
    [
        (1, 1),
        (MIB, 1),
        (GIB, 1),
        (GIB + 1, 2),
        (1536 * MIB, 2),
        (10 * GIB, 10),
        (10 * 10**9, 10),  # 10G (decimal) is 9.31 GiB
    ],
)
def test_sizes_round_up_to_whole_gib(world: World, size: int, gib: int) -> None:
    handle = world.provision(size=size)
    [create] = world.api.calls("POST", "/v2/volumes")
    assert create.body["size_gigabytes"] == gib
    assert world.remote(handle)["size_gigabytes"] == gib
    seen = world.driver.observe(world.ctx(), handle)
    assert seen.kind is ObservedKind.BLOCK_VOLUME
    assert seen.size_bytes == gib * GIB


def test_provision_sends_region_and_filesystem(world: World) -> None:
    world.provision("a")
    world.provision("b", ctx=world.ctx(fsType="xfs", region=OTHER_REGION))
    bodies = [r.body for r in world.api.calls("POST", "/v2/volumes")]
    assert [(b["name"], b["region"], b["filesystem_type"]) for b in bodies] == [
        ("rune-prod-a", REGION, "ext4"),
        ("rune-prod-b", OTHER_REGION, "xfs"),
    ]
    [b] = world.api.find_volumes("rune-prod-b")
    assert b["region"]["slug"] == OTHER_REGION and b["filesystem_type"] == "xfs"


def test_a_missing_region_is_a_configuration_error(world: World) -> None:
    params = world.params()
    del params["region"]
    ctx = world.ctx(parameters=params)
    raised(errors.DriverConfigError, lambda: world.driver.provision(ctx, prov()))
    assert world.api.requests == []


def test_restore_is_at_least_the_snapshots_min_disk_size(world: World) -> None:
    source = world.provision(size=5 * GIB)
    snap = world.snapshot(source)
    small = world.restore(snap, "small", size=1)
    big = world.restore(snap, "big", size=8 * GIB)
    assert world.remote(small)["size_gigabytes"] == 5
    assert world.remote(big)["size_gigabytes"] == 8
    seeded = world.api.add_snapshot("seeded", regions=[REGION], min_disk_size=7)
    seeded_restore = world.restore(SnapshotHandle(seeded["id"]), "seeded", size=GIB + 1)
    assert world.remote(seeded_restore)["size_gigabytes"] == 7
    bodies = [r.body for r in world.api.calls("POST", "/v2/volumes")][1:]
    assert [b["snapshot_id"] for b in bodies] == [snap, snap, seeded["id"]]


def test_observe_reports_the_size_and_missing_after_delete(world: World) -> None:
    handle = world.provision(size=3 * GIB)
    first = world.driver.observe(world.ctx(), handle)
    assert first.kind is ObservedKind.BLOCK_VOLUME and first.size_bytes == 3 * GIB
    assert world.driver.observe(world.ctx(), handle) == first
    world.driver.expand(world.ctx(), grow(handle, 4 * GIB))
    grown = world.driver.observe(world.ctx(), handle)
    assert grown.size_bytes == 4 * GIB and grown.fingerprint != first.fingerprint
    world.driver.delete(world.ctx(), handle)
    gone = world.driver.observe(world.ctx(), handle)
    assert gone.kind is ObservedKind.MISSING and not gone.exists


# ----------------------------------------------------------------------------- regions


def test_attach_to_a_droplet_in_another_region_is_refused_before_any_action(
    world: World,
) -> None:
    world.api.add_droplet("far-node", OTHER_REGION)
    handle = world.provision()
    exc = raised(
        errors.DriverConfigError, lambda: world.driver.attach(world.ctx(node="far-node"), handle)
    )
    assert REGION in str(exc) and OTHER_REGION in str(exc)
    assert world.api.calls("POST", ACTIONS_PATH) == []
    assert world.remote(handle)["droplet_ids"] == []


def test_attach_to_an_unknown_or_no_node_makes_no_action(world: World) -> None:
    handle = world.provision()
    raised(errors.ResourceNotFound, lambda: world.driver.attach(world.ctx(node="nowhere"), handle))
    raised(errors.DriverConfigError, lambda: world.driver.attach(world.ctx(node=""), handle))
    assert world.api.calls("POST", ACTIONS_PATH) == []


def test_restore_from_a_snapshot_in_another_region_is_refused(world: World) -> None:
    far = world.api.add_snapshot("far", regions=[OTHER_REGION], min_disk_size=1)
    exc = raised(errors.DriverConfigError, lambda: world.restore(SnapshotHandle(far["id"])))
    assert OTHER_REGION in str(exc)
    assert world.api.calls("POST", "/v2/volumes") == []


# ----------------------------------------------------------------------------- expand


def test_expand_while_attached_is_refused_before_any_resize(world: World) -> None:
    handle = world.provision()
    world.driver.attach(world.ctx(), handle)
    exc = raised(
        errors.OnlineExpandUnsupported,
        lambda: world.driver.expand(world.ctx(), grow(handle, 2 * GIB)),
    )
    assert "attached" in str(exc) and "online expand is unsupported" in str(exc)
    assert [b["type"] for b in world.action_posts()] == ["attach"]
    assert world.remote(handle)["size_gigabytes"] == 1


def test_an_expand_request_marked_attached_is_refused_before_any_request(world: World) -> None:
    handle = world.provision()
    world.api.clear_requests()
    raised(
        errors.OnlineExpandUnsupported,
        lambda: world.driver.expand(world.ctx(), grow(handle, 2 * GIB, attached=True)),
    )
    assert world.api.requests == []


def test_expand_of_a_detached_volume_resizes_and_polls(world: World) -> None:
    world.api.action_polls = 3
    handle = world.provision()
    world.driver.expand(world.ctx(), grow(handle, 3 * GIB))
    assert world.remote(handle)["size_gigabytes"] == 3
    [resize] = world.action_posts()
    assert resize == {"type": "resize", "size_gigabytes": 3, "region": REGION}
    assert len(world.api.calls("GET", "/v2/actions/{id}")) == 3
    assert [a["status"] for a in world.api.actions] == ["completed"]


def test_expand_to_the_current_size_or_below_makes_no_action(world: World) -> None:
    handle = world.provision(size=2 * GIB)
    world.driver.expand(world.ctx(), grow(handle, 2 * GIB))
    world.driver.expand(world.ctx(), grow(handle, GIB + 1))
    world.driver.expand(world.ctx(), grow(handle, 1))
    assert world.action_posts() == []
    assert world.remote(handle)["size_gigabytes"] == 2


def test_expand_of_a_missing_volume_is_not_found(world: World) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    raised(
        errors.ResourceNotFound, lambda: world.driver.expand(world.ctx(), grow(missing, 2 * GIB))
    )


# ----------------------------------------------------------------------------- names


def test_a_name_over_64_characters_is_refused_naming_the_limit(world: World) -> None:
    namespace, name = "a" * 20, "b" * 40  # rune-<20>-<40>: 66 characters
    exc = raised(errors.DriverConfigError, lambda: world.provision(name, namespace=namespace))
    assert "64" in str(exc) and "66" in str(exc)
    snap = SnapshotHandle("whatever")
    request = RestoreRequest(
        name=name, namespace=namespace, size=Quantity(GIB), access_mode=RWO, source=snap
    )
    raised(
        errors.DriverConfigError, lambda: world.driver.restore_from_snapshot(world.ctx(), request)
    )
    assert world.api.requests == []


def test_a_name_of_exactly_64_characters_is_accepted(world: World) -> None:
    namespace, name = "a" * 18, "b" * 40
    handle = world.provision(name, namespace=namespace)
    assert len(world.remote(handle)["name"]) == 64


def _do_class(url: str, region: str = REGION) -> str:
    return (
        "storageClass:\n"
        "  name: do-nyc3\n"
        "  driver: do-volume\n"
        "  reclaimPolicy: retain\n"
        "  parameters:\n"
        f"    region: {region}\n"
        "    apiToken: secret:do-api-token.shared.rune/token\n"
        f"    apiEndpoint: {url}\n"
    )


def _plan_time_problems(tmp_path: Path, files: Mapping[str, str]) -> list[str]:
    """Errors that validate or plan report for ``files`` (an empty state)."""
    src = write_source(tmp_path / "src", {**files, "runefile.yaml": "storage: {}\n"})
    result = validate_directory(src, drivers=CAPABILITIES, parameter_rules=PARAMETER_RULES, cwd=src)
    if not result.ok:
        return [str(d) for d in result.diagnostics]
    try:
        desired = desired_set(result.specs, result.runefile.storage)
        make_plan(
            PlanInput(
                desired=desired,
                records={},
                capabilities=CAPABILITIES,
                observations={},
                options=Options(),
            )
        )
    except errors.RuneSyncError as exc:
        return [str(exc)]
    return []


def test_a_name_over_64_characters_is_a_plan_time_error(tmp_path: Path) -> None:
    files = {
        "class.yaml": _do_class("http://127.0.0.1:9"),
        "vol.yaml": volume("b" * 40, namespace="a" * 20, storage_class="do-nyc3"),
    }
    problems = _plan_time_problems(tmp_path, files)
    assert any("64" in p for p in problems), problems


def test_two_volumes_mapping_to_one_name_are_a_plan_time_error(tmp_path: Path) -> None:
    files = {
        "class.yaml": _do_class("http://127.0.0.1:9"),
        "a.yaml": volume("web", namespace="team-a", storage_class="do-nyc3"),
        "b.yaml": volume("a-web", namespace="team", storage_class="do-nyc3"),
    }
    problems = _plan_time_problems(tmp_path, files)
    assert any("rune-team-a-web" in p for p in problems), problems


# ----------------------------------------------------------------------------- transient


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_transient_and_the_retry_succeeds(world: World, status: int) -> None:
    world.api.fail(status, method="GET", path="/v2/volumes")
    exc = raised(errors.DriverTransientError, world.provision)
    assert f"→ {status}" in str(exc) and "GET /v2/volumes" in str(exc)
    assert world.api.volumes == []
    handle = world.provision()
    assert [v["id"] for v in world.api.volumes] == [handle]


def test_429_carries_retry_after_from_the_header(world: World) -> None:
    world.api.throttle(retry_after=7)
    exc = raised(errors.DriverTransientError, world.provision)
    assert isinstance(exc, errors.DriverTransientError)
    assert exc.retry_after == 7.0
    assert "rate limited" in str(exc)


def test_429_without_retry_after_waits_for_the_ratelimit_reset(world: World) -> None:
    world.api.throttle(retry_after=None, reset_in=30)
    exc = raised(errors.DriverTransientError, world.provision)
    assert isinstance(exc, errors.DriverTransientError)
    assert exc.retry_after is not None and 28 <= exc.retry_after <= 31


def test_a_500_with_budget_left_asks_for_no_long_wait(world: World) -> None:
    handle = world.provision()  # one earlier request starts the hourly window
    world.api.fail(500, path="/v2/volumes/{id}")
    exc = raised(errors.DriverTransientError, lambda: world.driver.observe(world.ctx(), handle))
    assert isinstance(exc, errors.DriverTransientError)
    assert exc.retry_after is None or exc.retry_after <= 60, exc.retry_after


def test_a_dropped_connection_is_transient(world: World) -> None:
    handle = world.provision()
    world.api.drop(path="/v2/volumes/{id}")
    exc = raised(errors.DriverTransientError, lambda: world.driver.observe(world.ctx(), handle))
    assert "cannot reach" in str(exc)
    assert world.driver.observe(world.ctx(), handle).exists


def test_a_timeout_is_transient(do_api: FakeDigitalOcean) -> None:
    w = World(do_api, make_driver(request_timeout=0.2))
    do_api.slow(1.0, method="GET", path="/v2/volumes")
    started = time.monotonic()
    exc = raised(errors.DriverTransientError, w.provision)
    assert time.monotonic() - started < 0.9
    assert "timed out" in str(exc)


@pytest.mark.parametrize("kind", ["attach", "detach", "resize"])
def test_an_errored_action_is_transient_and_changes_nothing(world: World, kind: str) -> None:
    handle = world.provision()
    if kind == "detach":
        world.driver.attach(world.ctx(), handle)
    before = world.remote(handle)
    world.api.fail_actions(action_type=kind)
    d, ctx = world.driver, world.ctx()
    call: Callable[[], object] = {
        "attach": lambda: d.attach(ctx, handle),
        "detach": lambda: d.detach(ctx, handle),
        "resize": lambda: d.expand(ctx, grow(handle, 2 * GIB)),
    }[kind]
    exc = raised(errors.DriverTransientError, call)
    assert "errored" in str(exc)
    assert world.remote(handle) == before
    call()  # the retry goes through
    assert world.remote(handle) != before


def test_an_action_that_never_completes_times_out_as_transient(do_api: FakeDigitalOcean) -> None:
    do_api.add_droplet(NODE, REGION)
    w = World(do_api, make_driver(action_timeout=0.2))
    handle = w.provision()
    do_api.action_polls = 1_000_000
    exc = raised(errors.DriverTransientError, lambda: w.driver.attach(w.ctx(), handle))
    assert "did not complete" in str(exc)


def test_actions_are_polled_at_most_twice_a_second_by_default(do_api: FakeDigitalOcean) -> None:
    do_api.add_droplet(NODE, REGION)
    driver = DoVolumeDriver(settings=StorageSettings())  # the default poll interval
    _OPEN.append(driver)
    w = World(do_api, driver)
    handle = w.provision()
    do_api.action_polls = 2
    w.driver.attach(w.ctx(), handle)
    polls = [r.at for r in do_api.calls("GET", "/v2/actions/{id}")]
    [posted] = [r.at for r in do_api.calls("POST", ACTIONS_PATH)]
    assert len(polls) == 2
    gaps = [b - a for a, b in zip([posted, *polls], polls, strict=False)]
    assert min(gaps) >= 0.45, gaps


# ----------------------------------------------------------------------------- apply engine

SECRET_ENV = "RUNE_SECRET_SHARED_DO_API_TOKEN_TOKEN"


@dataclass
class Applying:
    """A do-volume source applied by the real engine to a real SQLite state."""

    tmp: Path
    api: FakeDigitalOcean
    driver: DoVolumeDriver
    token: str
    backend: StateBackend
    state_path: Path

    @property
    def resolver(self) -> Resolver:
        return Resolver.from_sources(secrets_dir=None, environ={SECRET_ENV: self.token})

    def source(self, name: str = "src") -> Path:
        files = {
            "class.yaml": _do_class(self.api.url),
            "vol.yaml": volume("web", storage_class="do-nyc3", size="1Gi"),
            "runefile.yaml": f"storage:\n  localVolumeRoot: {self.tmp / 'volumes'}\n",
        }
        return write_source(self.tmp / name, files)

    def plan(self, src: Path) -> Plan:
        validated = validate(src)
        desired = desired_set(validated.specs, validated.runefile.storage)
        records = self.backend.load_all()
        registry = DriverRegistry({"do-volume": self.driver})
        observations = refresh.observe(records, registry, resolve=self.resolver)
        return make_plan(
            PlanInput(
                desired=desired,
                records=records,
                capabilities=CAPABILITIES,
                observations=observations,
                options=Options(),
            )
        )

    def apply(
        self, plan: Plan, *, retry: RetryPolicy, stop: threading.Event | None = None
    ) -> engine.Result:
        local = LocalDriver(settings=StorageSettings(local_volume_root=self.tmp / "volumes"))
        drivers: dict[str, Driver] = {"do-volume": self.driver, "local": local}
        return engine.execute(
            plan,
            backend=self.backend,
            drivers=lambda name: drivers[name],
            reporter=Collect(),
            settings=engine.ApplySettings(retry=retry),
            stop=stop,
            resolve=self.resolver,
        )


FAST_RETRY = RetryPolicy(attempts=5, initial=0.001, maximum=0.01, jitter=0)


@pytest.fixture
def applying(tmp_path: Path, do_api: FakeDigitalOcean) -> Iterator[Applying]:
    token = "dop_v1_" + "5eed" * 16
    do_api.add_token(token, DRIVER_SCOPES)
    state_path = tmp_path / "state" / "state.db"
    backend = open_backend(state_path, create=True)
    try:
        yield Applying(tmp_path, do_api, make_driver(), token, backend, state_path)
    finally:
        backend.close()


def test_apply_rides_out_a_storm_of_5xx_and_429_and_records_the_volume(
    applying: Applying,
) -> None:
    do = applying.api
    plan = applying.plan(applying.source())
    assert actions(plan) == {"storageclass/do-nyc3": "create", "volume/prod/web": "create"}
    do.fail(500, times=2, method="GET", path="/v2/volumes")
    do.throttle(times=1, retry_after=0, method="GET", path="/v2/volumes")
    do.fail(503, times=1, method="GET", path="/v2/volumes")

    result = applying.apply(plan, retry=FAST_RETRY)

    assert result.ok, result.summary()
    [created] = do.find_volumes("rune-prod-web", REGION)
    record = applying.backend.get(Address.parse("volume/prod/web"))
    assert record is not None
    assert record.handle == created["id"]
    assert record.status == "Available"
    assert record.attempts == 5  # four transient failures, then success
    assert record.driver_parameters["apiToken"] == "secret:do-api-token.shared.rune/token"
    assert [r.status for r in do.calls("GET", "/v2/volumes")] == [500, 500, 429, 503, 200]
    # Converged: a fresh plan, refreshed through the driver, has nothing to do.
    assert actions(applying.plan(applying.source("again"))) == {}
    # The resolved token reached DigitalOcean and nowhere else on disk.
    for path in applying.state_path.parent.iterdir():
        assert applying.token.encode() not in path.read_bytes(), path


def test_apply_waits_as_long_as_retry_after_asks(applying: Applying) -> None:
    plan = applying.plan(applying.source())
    applying.api.throttle(times=1, retry_after=1, method="GET", path="/v2/volumes")
    started = time.monotonic()
    result = applying.apply(plan, retry=FAST_RETRY)
    assert result.ok, result.summary()
    assert time.monotonic() - started >= 1.0
    assert len(applying.api.find_volumes("rune-prod-web", REGION)) == 1


def test_apply_fails_at_once_on_a_rejected_token(applying: Applying) -> None:
    plan = applying.plan(applying.source())
    applying.api.add_token(applying.token, scopes_except(BLOCK_STORAGE_CREATE))
    result = applying.apply(plan, retry=FAST_RETRY)
    assert not result.ok
    [failed] = result.failed
    assert BLOCK_STORAGE_CREATE in failed.message
    assert len(applying.api.calls("POST", "/v2/volumes")) == 1  # not retried
    assert applying.api.volumes == []


def test_apply_retries_a_500_after_earlier_requests_promptly(applying: Applying) -> None:
    plan = applying.plan(applying.source())
    applying.api.fail(500, times=1, method="POST", path="/v2/volumes")
    stop = threading.Event()
    timer = threading.Timer(2.0, stop.set)
    timer.start()
    try:
        result = applying.apply(plan, retry=FAST_RETRY, stop=stop)
    finally:
        timer.cancel()
    assert result.ok, result.summary()


# ----------------------------------------------------------------------------- apiEndpoint


def test_the_class_endpoint_wins_over_the_environment(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGITALOCEAN_API_URL", "http://127.0.0.1:9")
    handle = world.provision()
    assert world.remote(handle)["name"] == "rune-prod-web"


def test_the_environment_wins_over_the_default(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIGITALOCEAN_API_URL", world.api.url + "/")
    params = world.params()
    del params["apiEndpoint"]
    handle = world.provision(ctx=world.ctx(parameters=params))
    assert world.remote(handle)["name"] == "rune-prod-web"


def test_without_endpoint_or_environment_the_public_api_is_used(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Route https through a proxy that is not there: nothing leaves this machine, and
    # the error says which URL the driver tried.
    monkeypatch.delenv("DIGITALOCEAN_API_URL", raising=False)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    driver = make_driver(request_timeout=2.0)
    params = world.params()
    del params["apiEndpoint"]
    ctx = world.ctx(parameters=params)
    exc = raised(errors.DriverTransientError, lambda: driver.provision(ctx, prov()))
    assert "https://api.digitalocean.com" in str(exc)
    assert world.api.requests == []


@pytest.mark.parametrize(
    "endpoint", ["ftp://api.example.com", "api.digitalocean.com", "file:///etc/passwd"]
)
def test_a_non_http_endpoint_is_a_configuration_error(
    world: World, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    exc = raised(
        errors.DriverConfigError, lambda: world.provision(ctx=world.ctx(apiEndpoint=endpoint))
    )
    assert "apiEndpoint" in str(exc)
    params = world.params()
    del params["apiEndpoint"]
    monkeypatch.setenv("DIGITALOCEAN_API_URL", endpoint)
    raised(errors.DriverConfigError, lambda: world.provision(ctx=world.ctx(parameters=params)))
    assert world.api.requests == []


# ----------------------------------------------------------------------------- secrecy

CANARY = "dop_v1_" + "c0ffee5ecre7" * 5 + "ca11ab1e"


def _leak_cases() -> dict[str, Callable[[World], Callable[[], object]]]:
    def ctx(w: World, **kw: Any) -> OpContext:
        return w.ctx(token=CANARY, **kw)

    def unauthorized(w: World) -> Callable[[], object]:
        w.api.remove_token(CANARY)
        return lambda: w.driver.provision(ctx(w), prov())

    def forbidden(w: World) -> Callable[[], object]:
        w.api.add_token(CANARY, scopes_except(BLOCK_STORAGE_CREATE))
        return lambda: w.driver.provision(ctx(w), prov())

    def not_found(w: World) -> Callable[[], object]:
        return lambda: w.driver.attach(ctx(w), VolumeHandle("no-such-volume"))

    def conflict_409(w: World) -> Callable[[], object]:
        w.api.fail(409, method="POST", path="/v2/volumes")
        return lambda: w.driver.provision(ctx(w), prov())

    def conflict_422(w: World) -> Callable[[], object]:
        other = w.api.add_droplet("other-node", REGION)
        taken = w.api.add_volume("rune-prod-taken", REGION, 1, droplet_id=other["id"])
        return lambda: w.driver.attach(ctx(w), VolumeHandle(taken["id"]))

    def rate_limited(w: World) -> Callable[[], object]:
        w.api.throttle(retry_after=3)
        return lambda: w.driver.provision(ctx(w), prov())

    def server_error(w: World) -> Callable[[], object]:
        w.api.fail(500, message="upstream failure")
        return lambda: w.driver.provision(ctx(w), prov())

    def timeout(w: World) -> Callable[[], object]:
        w.driver = make_driver(request_timeout=0.2)
        w.api.slow(0.6)
        return lambda: w.driver.provision(ctx(w), prov())

    def dropped(w: World) -> Callable[[], object]:
        w.api.drop()
        return lambda: w.driver.provision(ctx(w), prov())

    def errored_action(w: World) -> Callable[[], object]:
        handle = w.provision()
        w.api.fail_actions()
        return lambda: w.driver.attach(ctx(w), handle)

    def no_droplet(w: World) -> Callable[[], object]:
        handle = w.provision()
        return lambda: w.driver.attach(ctx(w, node="ghost"), handle)

    def bad_endpoint(w: World) -> Callable[[], object]:
        return lambda: w.driver.provision(ctx(w, apiEndpoint="ftp://x"), prov())

    return {
        "401": unauthorized,
        "403": forbidden,
        "404": not_found,
        "409": conflict_409,
        "422": conflict_422,
        "429": rate_limited,
        "500": server_error,
        "timeout": timeout,
        "dropped": dropped,
        "errored-action": errored_action,
        "no-droplet": no_droplet,
        "bad-endpoint": bad_endpoint,
    }


LEAK_CASES = _leak_cases()


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__]
    return seen


def _assert_no_canary(text: str, what: str) -> None:
    assert CANARY not in text, f"the token leaked into {what}"
    assert CANARY[-20:] not in text, f"part of the token leaked into {what}"


@pytest.mark.parametrize("case", sorted(LEAK_CASES))
def test_the_token_never_leaks_into_errors(world: World, case: str) -> None:
    world.api.add_token(CANARY, DRIVER_SCOPES)
    call = LEAK_CASES[case](world)
    exc = raised(DriverError, call)
    _assert_no_canary(str(exc), "str(exc)")
    _assert_no_canary(repr(exc), "repr(exc)")
    _assert_no_canary("".join(traceback.format_exception(exc)), "the traceback")
    for link in _chain(exc):
        _assert_no_canary(f"{link!s} {link!r} {link.args!r}", f"chained {type(link).__name__}")
    # And the token went out only in the Authorization header: no body or query held it.
    for request in world.api.requests:
        assert not request.body_redacted, request
        assert "<redacted>" not in request.path + repr(dict(request.query)), request


@pytest.mark.parametrize(
    "case",
    [case for case in sorted(LEAK_CASES)],
)
def test_the_token_never_leaks_into_a_traceback_with_locals(world: World, case: str) -> None:
    # Error reporters (pytest -l, Sentry) show every frame's locals.
    world.api.add_token(CANARY, DRIVER_SCOPES)
    exc = raised(DriverError, LEAK_CASES[case](world))
    with_locals = traceback.TracebackException.from_exception(exc, capture_locals=True)
    _assert_no_canary("".join(with_locals.format()), "a traceback with locals")


def test_the_token_never_leaks_into_reprs(world: World) -> None:
    world.api.add_token(CANARY, DRIVER_SCOPES)
    storage_class = StorageClass(
        name="do-nyc3",
        driver="do-volume",
        parameters={"region": REGION, "apiToken": "secret:do-api-token.shared.rune/token"},
    )
    vol = Volume(name="web", namespace="prod", size=Quantity(GIB), access_mode=RWO)
    ctx = OpContext(
        storage_class=storage_class,
        volume=vol,
        parameters=MappingProxyType(world.params(token=CANARY)),
        node=NODE,
        address=ADDRESS,
    )
    handle = world.driver.provision(ctx, prov())
    world.driver.attach(ctx, handle)
    _assert_no_canary(repr(ctx), "repr(OpContext)")
    _assert_no_canary(str(ctx), "str(OpContext)")
    _assert_no_canary(repr(world.driver), "repr(driver)")
    _assert_no_canary(repr(vars(world.driver)), "the driver's attributes")
    assert world.api.requests[-1].token == f"token-{token_hash(CANARY)}"
