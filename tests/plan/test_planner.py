"""The planner's decisions and gates (DESIGN §6), one behaviour per test.

Every case builds a :class:`PlanInput` from the desired set of a small real source
(validated and expanded) and hand-made :class:`StateRecord` values; observations are
real :class:`Observation` values. The last test is a Hypothesis property: after a plan
is "applied" (each change turned into the record apply would write), a new plan is all
no-ops.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rune_sync.cli.render.plan_text import NO_DATA_DESTROYED, verdict_lines
from rune_sync.drivers.base import Observation, ObservedKind
from rune_sync.errors import PlanError
from rune_sync.plan.model import Action, DiffOp, FieldDiff, Options, Plan
from rune_sync.plan.planner import PlanInput, make_plan
from rune_sync.spec.expand import DesiredSet
from rune_sync.spec.model import (
    AccessMode,
    Address,
    ClaimRef,
    ClaimTemplate,
    Kind,
    ReclaimPolicy,
    Service,
    Snapshot,
    SpecSet,
    StorageClass,
    Volume,
    VolumeMount,
)
from rune_sync.spec.quantity import parse
from rune_sync.state.model import StateRecord, canonical_json
from tests.plan import (
    CAPABILITIES,
    actions,
    by_address,
    change_at,
    desired_from,
    expand,
    handle_of,
    record_for,
    records_for,
    simulate_apply,
)

GIB = 1024**3


def make(
    desired: DesiredSet,
    records=(),
    *,
    observations=None,
    capabilities=CAPABILITIES,
    **options,
) -> Plan:
    records = records.values() if isinstance(records, dict) else records
    return make_plan(
        PlanInput(
            desired=desired,
            records=by_address(records),
            capabilities=capabilities,
            observations=observations or {},
            options=Options(**options),
        )
    )


def a(text: str) -> Address:
    return Address.parse(text)


def volume(name: str, *extra: str, size: str = "1Gi", namespace: str = "prod") -> str:
    lines = [
        "volume:",
        f"  name: {name}",
        f"  namespace: {namespace}",
        f"  size: {size}",
        "  accessMode: ReadWriteOnce",
        *(f"  {e}" for e in extra),
    ]
    return "\n".join(lines) + "\n"


def docs(*parts: str) -> str:
    return "---\n".join(parts)


FAST_DELETE = "storageClass:\n  name: fast\n  driver: local\n  reclaimPolicy: delete\n"
HOST_RUNEFILE = "storage:\n  hostPathAllowlist: [/srv/rune]\n"


@pytest.fixture
def src(tmp_path: Path):
    """``src(files)`` → the desired set of a fresh source directory."""
    counter = iter(range(1000))
    return lambda files: desired_from(tmp_path / f"src{next(counter)}", files)


# ----------------------------------------------------------------------------- create, no-op


def test_new_volume_is_created_with_its_desired_spec_and_status(src):
    desired = src({"v.yaml": docs(FAST_DELETE, volume("web", "storageClassName: fast"))})
    plan = make(desired)
    assert actions(plan) == {"storageclass/fast": "create", "volume/prod/web": "create"}
    web = change_at(plan, "volume/prod/web")
    assert web.reason == "not in the state yet"
    assert web.after == dict(desired.resources[a("volume/prod/web")].spec)
    assert web.before is None
    assert web.status == "Available"
    assert web.driver == "local"
    assert web.depends_on == (a("storageclass/fast"),)
    assert [str(c.address) for c in plan.changes] == ["storageclass/fast", "volume/prod/web"]
    assert plan.summary.line() == (
        "Plan: 2 to create, 0 to update, 0 to replace, 0 to destroy, 0 to forget."
    )


def test_unchanged_resources_are_no_ops_that_say_why(src):
    desired = src(
        {
            "v.yaml": docs(
                FAST_DELETE,
                volume("web", "storageClassName: fast", "labels: {app: web}"),
                "snapshot:\n  name: s1\n  namespace: prod\n  source: {volume: web}\n",
            )
        }
    )
    plan = make(desired, records_for(desired))
    assert set(actions(plan).values()) == {"no-op"}
    assert {c.reason for c in plan.changes} == {"matches the state"}
    assert change_at(plan, "volume/prod/web").handle == handle_of(a("volume/prod/web"))
    assert not plan.has_changes
    assert plan.summary.changes == 0


def test_equal_sizes_written_differently_are_no_ops(src):
    before = src({"v.yaml": volume("web", size="1Gi")})
    after = src({"v.yaml": volume("web", size="1024Mi")})
    change = change_at(make(after, records_for(before)), "volume/prod/web")
    assert (change.action, change.diffs) == (Action.NOOP, ())


# ----------------------------------------------------------------------------- update


def test_label_change_is_an_update_with_field_diffs(src):
    before = src({"v.yaml": volume("web", "labels: {app: web, tier: gold}")})
    after = src({"v.yaml": volume("web", "labels: {app: api, team: core}")})
    change = change_at(make(after, records_for(before)), "volume/prod/web")
    assert change.action is Action.UPDATE
    assert change.reason == "labels changed"
    assert change.diffs == (
        FieldDiff(op=DiffOp.CHANGE, path="labels.app", old="web", new="api"),
        FieldDiff(op=DiffOp.ADD, path="labels.team", new="core"),
        FieldDiff(op=DiffOp.REMOVE, path="labels.tier", old="gold"),
    )
    assert change.blocked is None and not change.destroys_data


def test_reclaim_policy_change_is_an_update(src):
    before = src({"v.yaml": volume("web")})
    after = src({"v.yaml": volume("web", "reclaimPolicy: delete")})
    change = change_at(make(after, records_for(before)), "volume/prod/web")
    assert change.action is Action.UPDATE
    assert change.reason == "reclaimPolicy changed"
    assert change.diffs == (
        FieldDiff(op=DiffOp.CHANGE, path="reclaimPolicy", old="retain", new="delete"),
    )


def test_size_increase_on_an_expandable_driver_is_an_update(src):
    before = src({"v.yaml": volume("web", size="1Gi")})
    after = src({"v.yaml": volume("web", size="3Gi")})
    change = change_at(make(after, records_for(before)), "volume/prod/web")
    assert change.action is Action.UPDATE
    assert change.reason == "expand 1Gi → 3Gi"
    assert change.diffs == (FieldDiff(op=DiffOp.CHANGE, path="sizeBytes", old=GIB, new=3 * GIB),)
    assert not change.destroys_data


def test_size_increase_without_expand_capability_is_a_plan_error(src):
    before = src({"v.yaml": volume("web", size="1Gi")})
    after = src({"v.yaml": volume("web", size="2Gi")})
    caps = {**CAPABILITIES, "local": replace(CAPABILITIES["local"], expand=False)}
    with pytest.raises(PlanError) as err:
        make(after, records_for(before), capabilities=caps)
    assert "volume/prod/web: driver 'local' cannot expand volumes (1Gi → 2Gi)" in str(err.value)


def test_shrinking_is_a_plan_error_and_every_problem_is_reported(src):
    before = src({"v.yaml": docs(volume("web", size="2Gi"), volume("db", size="10Gi"))})
    after = src({"v.yaml": docs(volume("web", size="1Gi"), volume("db", size="512Mi"))})
    with pytest.raises(PlanError) as err:
        make(after, records_for(before))
    message = str(err.value)
    assert message.startswith("cannot plan:")
    assert (
        "volume/prod/web: size 1Gi is smaller than the current 2Gi: shrinking a volume is "
        "not supported" in message
    )
    assert "volume/prod/db: size 512Mi is smaller than the current 10Gi" in message


def test_class_settings_change_is_an_update_of_the_class(src):
    before = src({"c.yaml": "storageClass:\n  name: fast\n  driver: local\n"})
    after = src({"c.yaml": "storageClass:\n  name: fast\n  driver: local\n  labels: {a: b}\n"})
    change = change_at(make(after, records_for(before)), "storageclass/fast")
    assert change.action is Action.UPDATE
    assert change.reason == "class settings changed (classes hold no data)"
    assert change.diffs == (FieldDiff(op=DiffOp.ADD, path="labels.a", new="b"),)


def test_snapshot_label_change_is_an_update(src):
    snap = "snapshot:\n  name: s1\n  namespace: prod\n  source: {volume: web}\n"
    before = src({"v.yaml": docs(volume("web"), snap)})
    after = src({"v.yaml": docs(volume("web"), snap + "  labels: {k: v}\n")})
    change = change_at(make(after, records_for(before)), "snapshot/prod/s1")
    assert (change.action, change.reason) == (Action.UPDATE, "labels changed")


# ----------------------------------------------------------------------------- replace


def test_access_mode_and_parameters_change_is_a_replace_blocked_without_the_flag(src):
    files = {"runefile.yaml": HOST_RUNEFILE}
    host = ("storageClassName: local-host", "parameters: {hostPath: /srv/rune/x}")
    before = src({**files, "v.yaml": volume("media", *host)})
    after = src(
        {
            **files,
            "v.yaml": volume("media", *host)
            .replace("ReadWriteOnce", "ReadOnlyMany")
            .replace("/srv/rune/x", "/srv/rune/y"),
        }
    )
    plan = make(after, records_for(before))
    change = change_at(plan, "volume/prod/media")
    assert change.action is Action.REPLACE
    assert change.reason == (
        "immutable field changed: accessMode, parameters: the old one is destroyed and a new "
        "one created"
    )
    assert change.blocked == "--allow-replace"
    assert change.destroys_data
    assert not change.snapshot_first  # local-host has no snapshots
    assert change.handle == "/srv/rune/x"  # local-host's handle is its host path
    assert [v.address for v in plan.victims] == [a("volume/prod/media")]
    assert plan.blocked == (change,)


def test_class_change_is_a_replace_allowed_with_the_flag_and_snapshotted_first(src):
    before = src({"v.yaml": docs(FAST_DELETE, volume("web"))})
    after = src({"v.yaml": docs(FAST_DELETE, volume("web", "storageClassName: fast"))})
    plan = make(after, records_for(before), allow_replace=True)
    change = change_at(plan, "volume/prod/web")
    assert change.action is Action.REPLACE
    assert change.reason.startswith("immutable field changed: storageClassName:")
    assert change.blocked is None
    assert change.destroys_data  # allowed, still in the verdict
    assert change.snapshot_first  # local takes snapshots
    assert [(v.address, v.action, v.blocked) for v in plan.victims] == [
        (a("volume/prod/web"), Action.REPLACE, None)
    ]


def test_no_snapshot_before_destroy_turns_the_snapshot_off(src):
    before = src({"v.yaml": docs(FAST_DELETE, volume("web"))})
    after = src({"v.yaml": docs(FAST_DELETE, volume("web", "storageClassName: fast"))})
    plan = make(after, records_for(before), allow_replace=True, snapshot_before_destroy=False)
    change = change_at(plan, "volume/prod/web")
    assert (change.action, change.snapshot_first, change.destroys_data) == (
        Action.REPLACE,
        False,
        True,
    )


def test_snapshot_whose_source_changed_is_replaced(src):
    snap = "snapshot:\n  name: s1\n  namespace: prod\n  source: {volume: web}\n"
    before = src({"v.yaml": docs(volume("web"), volume("db"), snap)})
    after = src({"v.yaml": docs(volume("web"), volume("db"), snap.replace("web}", "db}"))})
    change = change_at(make(after, records_for(before)), "snapshot/prod/s1")
    assert change.action is Action.REPLACE
    assert change.blocked == "--allow-replace"
    assert not change.snapshot_first  # only volumes are snapshotted first


# ----------------------------------------------------------------------------- destroy, forget


def test_removed_volume_under_delete_is_a_destroy_blocked_without_the_flag(src):
    before = src(
        {"v.yaml": docs(FAST_DELETE, *(volume(n, "storageClassName: fast") for n in "abc"))}
    )
    after = src({"v.yaml": docs(FAST_DELETE, volume("a", "storageClassName: fast"))})
    plan = make(after, records_for(before))
    gone = change_at(plan, "volume/prod/b")
    assert gone.action is Action.DESTROY
    assert gone.reason == "removed from the source and reclaimPolicy is delete"
    assert gone.blocked == "--allow-destroy"
    assert gone.destroys_data and gone.snapshot_first
    assert gone.handle == handle_of(a("volume/prod/b"))
    assert gone.after is None and gone.before is not None
    allowed = change_at(make(after, records_for(before), allow_destroy=True), "volume/prod/b")
    assert (allowed.action, allowed.blocked, allowed.destroys_data) == (
        Action.DESTROY,
        None,
        True,
    )


def test_removed_volume_under_retain_is_forgotten_keeping_the_handle(src):
    before = src({"v.yaml": docs(volume("a"), volume("b"), volume("c"))})
    after = src({"v.yaml": docs(volume("a"), volume("c"))})
    plan = make(after, records_for(before), allow_destroy=True)
    gone = change_at(plan, "volume/prod/b")
    assert gone.action is Action.FORGET
    assert gone.reason == (
        "removed from the source; reclaimPolicy retain keeps the data "
        "(/var/lib/rune/volumes/prod/b); the state keeps a retained record"
    )
    assert not gone.destroys_data and gone.blocked is None
    assert plan.victims == ()


def test_retained_records_are_left_alone(src):
    before = src(
        {
            "v.yaml": docs(
                FAST_DELETE,
                volume("a"),
                volume("kept", "reclaimPolicy: delete"),
                SNAP.replace("web", "a"),
            )
        }
    )
    after = src({"v.yaml": volume("a")})
    records = records_for(before)
    for address in ("volume/prod/kept", "snapshot/prod/s1"):
        records[a(address)] = replace(records[a(address)], retained=True)
    plan = make(after, records, allow_destroy=True)
    # Even --allow-destroy leaves them be: only the class (not retainable) goes.
    assert actions(plan) == {"volume/prod/a": "no-op", "storageclass/fast": "destroy"}


def test_retained_volume_that_comes_back_is_readopted_with_its_data(src):
    desired = src({"v.yaml": volume("web", "labels: {app: web}")})
    kept = record_for(desired.resources[a("volume/prod/web")], retained=True)
    change = change_at(make(desired, [kept]), "volume/prod/web")
    assert change.action is Action.UPDATE
    assert change.reason == (
        "re-adopted from a retained record with its data (/var/lib/rune/volumes/prod/web)"
    )
    assert change.handle == kept.handle
    assert not change.destroys_data


def test_retained_snapshot_that_comes_back_is_readopted(src):
    desired = src(
        {
            "v.yaml": docs(
                volume("web"), "snapshot:\n  name: s1\n  namespace: prod\n  source: {volume: web}\n"
            )
        }
    )
    records = records_for(desired)
    records[a("snapshot/prod/s1")] = replace(records[a("snapshot/prod/s1")], retained=True)
    change = change_at(make(desired, records), "snapshot/prod/s1")
    assert change.action is Action.UPDATE
    assert change.reason.startswith("re-adopted from a retained record")


def test_removed_class_is_destroyed_without_a_flag_and_holds_no_data(src):
    before = src({"v.yaml": docs(FAST_DELETE, volume("web"))})
    after = src({"v.yaml": volume("web")})
    change = change_at(make(after, records_for(before)), "storageclass/fast")
    assert change.action is Action.DESTROY
    assert change.reason == "removed from the source (classes hold no data)"
    assert change.blocked is None and not change.destroys_data


# ----------------------------------------------------------------------------- templates, binding

POSTGRES = """\
service:
  name: postgres
  namespace: prod
  scale: 3
  volumes:
    - name: pgdata
      mountPath: /data
      claimTemplate: {size: 1Gi, accessMode: ReadWriteOnce, reclaimPolicy: delete}
"""


def test_scale_down_releases_the_replicas_beyond_the_scale(src):
    before = src({"s.yaml": POSTGRES})
    after = src({"s.yaml": POSTGRES.replace("scale: 3", "scale: 1")})
    plan = make(after, records_for(before), allow_destroy=True, allow_mass_delete=True)
    assert actions(plan) == {
        "volume/prod/pgdata-postgres-0": "no-op",
        "volume/prod/pgdata-postgres-1": "update",
        "volume/prod/pgdata-postgres-2": "update",
    }
    released = change_at(plan, "volume/prod/pgdata-postgres-2")
    assert released.reason == (
        "release: its replica is beyond the scale; claim-template volumes are kept "
        "(scaling down never deletes)"
    )
    assert released.status == "Released"
    assert released.diffs == (
        FieldDiff(op=DiffOp.CHANGE, path="status", old="Bound", new="Released"),
    )
    assert released.handle == handle_of(released.address)
    assert plan.victims == () and plan.mass_delete is None


def test_released_replica_stays_a_no_op_that_says_why(src):
    before = src({"s.yaml": POSTGRES})
    after = src({"s.yaml": POSTGRES.replace("scale: 3", "scale: 2")})
    records = records_for(before)
    gone = a("volume/prod/pgdata-postgres-2")
    records[gone] = replace(records[gone], status="Released", bound_claim=None)
    change = change_at(make(after, records), str(gone))
    assert change.action is Action.NOOP
    assert change.reason.startswith("Released: its replica is beyond the scale;")


def test_removed_service_releases_its_volumes_never_destroys_them(src):
    before = src({"s.yaml": POSTGRES, "v.yaml": volume("other")})
    after = src({"v.yaml": volume("other")})
    plan = make(after, records_for(before), allow_destroy=True, allow_mass_delete=True)
    for k in range(3):
        change = change_at(plan, f"volume/prod/pgdata-postgres-{k}")
        assert change.action is Action.UPDATE
        assert change.reason.startswith("release: its service was removed;")
        assert change.status == "Released"
    assert plan.summary.destroy == plan.summary.forget == 0


def test_scale_up_binds_a_released_replica_again(src):
    before = src({"s.yaml": POSTGRES})
    records = records_for(before)
    back = a("volume/prod/pgdata-postgres-2")
    records[back] = replace(records[back], status="Released", bound_claim=None)
    change = change_at(make(before, records), str(back))
    assert change.action is Action.UPDATE
    assert change.status == "Bound"
    assert change.bound_claim == "service/prod/postgres"
    assert FieldDiff(op=DiffOp.CHANGE, path="status", old="Released", new="Bound") in change.diffs


CLAIMED = docs(
    volume("web"),
    """\
service:
  name: app
  namespace: prod
  volumes:
    - {name: data, mountPath: /data, claim: {name: web}}
""",
)


def test_removing_the_claim_releases_a_bound_volume(src):
    before = src({"v.yaml": CLAIMED})
    after = src({"v.yaml": volume("web")})
    records = records_for(before)
    assert records[a("volume/prod/web")].status == "Bound"
    change = change_at(make(after, records), "volume/prod/web")
    assert change.action is Action.UPDATE
    assert change.diffs == (
        FieldDiff(op=DiffOp.CHANGE, path="boundClaim", old="service/prod/app", new=None),
        FieldDiff(op=DiffOp.CHANGE, path="status", old="Bound", new="Released"),
    )
    assert change.bound_claim is None


def test_released_volume_change_carries_the_released_status(src):
    before = src({"v.yaml": CLAIMED})
    after = src({"v.yaml": volume("web")})
    change = change_at(make(after, records_for(before)), "volume/prod/web")
    assert change.status == "Released"


def test_adding_a_claim_binds_an_available_volume(src):
    before = src({"v.yaml": volume("web")})
    after = src({"v.yaml": CLAIMED})
    change = change_at(make(after, records_for(before)), "volume/prod/web")
    assert change.action is Action.UPDATE
    assert change.reason == "binding changed"
    assert change.status == "Bound"


# ----------------------------------------------------------------------------- snapshots

SNAP = "snapshot:\n  name: s1\n  namespace: prod\n  source: {volume: web}\n"


def test_removed_snapshot_is_forgotten_without_allow_destroy(src):
    before = src({"v.yaml": docs(volume("web"), SNAP)})
    after = src({"v.yaml": volume("web")})
    plan = make(after, records_for(before))
    change = change_at(plan, "snapshot/prod/s1")
    assert change.action is Action.FORGET
    assert change.reason == (
        "removed from the source; the snapshot is kept as a retained record "
        "(--allow-destroy would delete it)"
    )
    assert not change.destroys_data
    assert list(verdict_lines(plan)) == [NO_DATA_DESTROYED]


def test_removed_snapshot_is_destroyed_with_allow_destroy_and_named_in_the_verdict(src):
    before = src({"v.yaml": docs(volume("web"), SNAP)})
    after = src({"v.yaml": volume("web")})
    plan = make(after, records_for(before), allow_destroy=True)
    change = change_at(plan, "snapshot/prod/s1")
    assert change.action is Action.DESTROY
    assert change.reason == "removed from the source; --allow-destroy deletes the snapshot"
    assert change.destroys_data and change.blocked is None
    assert list(verdict_lines(plan)) == [
        "This plan would destroy the data of 1 resource(s):",
        "  snapshot/prod/s1 (/var/lib/rune/volumes/.snapshots/prod/s1): destroy",
    ]


@pytest.mark.parametrize("status", ["Pending", "Creating", "Failed", "Deleting"])
def test_unfinished_snapshot_is_created_again(src, status):
    desired = src({"v.yaml": docs(volume("web"), SNAP)})
    records = records_for(desired)
    records[a("snapshot/prod/s1")] = replace(records[a("snapshot/prod/s1")], status=status)
    change = change_at(make(desired, records), "snapshot/prod/s1")
    assert change.action is Action.CREATE
    assert change.reason == f"snapshot is {status}: create it again (idempotent)"


# ----------------------------------------------------------------------------- lifecycle statuses


def test_stalled_volume_is_a_no_op_naming_state_retry(src):
    desired = src({"v.yaml": volume("web", size="2Gi")})
    stalled = record_for(
        desired.resources[a("volume/prod/web")],
        status="Stalled",
        failed_runs=3,
        failure_message="permission denied",
    )
    plan = make(desired, [stalled])
    change = change_at(plan, "volume/prod/web")
    assert change.action is Action.NOOP
    assert change.status == "Stalled"
    assert change.reason == (
        "Stalled after 3 failed runs (permission denied); run `rune-sync state retry "
        "volume/prod/web` to try again"
    )
    assert not plan.has_changes


@pytest.mark.parametrize("status", ["Pending", "Provisioning", "Failed"])
def test_unfinished_volume_is_created_again(src, status):
    desired = src({"v.yaml": volume("web")})
    record = record_for(desired.resources[a("volume/prod/web")], status=status)
    change = change_at(make(desired, [record]), "volume/prod/web")
    assert change.action is Action.CREATE
    assert change.reason == f"volume is {status}: provision it again (idempotent)"
    assert change.handle == record.handle


def test_volume_without_handle_is_created_again(src):
    desired = src({"v.yaml": volume("web")})
    record = record_for(desired.resources[a("volume/prod/web")], handle=None)
    assert change_at(make(desired, [record]), "volume/prod/web").action is Action.CREATE


# ----------------------------------------------------------------------------- drift


def test_missing_volume_is_created_again_with_drift(src):
    desired = src({"v.yaml": volume("web")})
    records = records_for(desired)
    plan = make(
        desired,
        records,
        observations={a("volume/prod/web"): Observation(kind=ObservedKind.MISSING)},
    )
    change = change_at(plan, "volume/prod/web")
    assert change.action is Action.CREATE
    assert change.reason == "provision it again"
    assert change.drift == (
        "/var/lib/rune/volumes/prod/web no longer exists (removed outside rune-sync)"
    )
    assert plan.victims == ()


@pytest.mark.parametrize(
    ("observed", "drift"),
    [
        (
            Observation(kind=ObservedKind.SYMLINK, detail="symlink to /etc"),
            "/var/lib/rune/volumes/prod/web is now symlink to /etc",
        ),
        (
            Observation(kind=ObservedKind.NOT_A_DIRECTORY),
            "/var/lib/rune/volumes/prod/web is now not-a-directory",
        ),
    ],
)
def test_something_else_at_the_handle_is_a_blocked_replace_with_drift(src, observed, drift):
    desired = src({"v.yaml": volume("web")})
    plan = make(desired, records_for(desired), observations={a("volume/prod/web"): observed})
    change = change_at(plan, "volume/prod/web")
    assert change.action is Action.REPLACE
    assert change.drift == drift
    assert change.blocked == "--allow-replace"
    assert change.reason.startswith("what stands at the handle is not the volume")
    assert change.destroys_data


def test_a_directory_with_data_in_it_is_no_drift(src):
    desired = src({"v.yaml": volume("web")})
    seen = Observation(kind=ObservedKind.DIRECTORY, size_bytes=5 * GIB, fingerprint="1:2")
    change = change_at(
        make(desired, records_for(desired), observations={a("volume/prod/web"): seen}),
        "volume/prod/web",
    )
    assert (change.action, change.drift) == (Action.NOOP, None)


DO_CLASS = """\
storageClass:
  name: do
  driver: do-volume
  parameters: {region: nyc3, apiToken: "secret:tok.shared.rune/token"}
"""


def test_block_volume_rounded_up_to_whole_gib_is_no_drift(src):
    desired = src({"v.yaml": docs(DO_CLASS, volume("db", "storageClassName: do", size="1.5Gi"))})
    seen = Observation(kind=ObservedKind.BLOCK_VOLUME, size_bytes=2 * GIB)
    change = change_at(
        make(desired, records_for(desired), observations={a("volume/prod/db"): seen}),
        "volume/prod/db",
    )
    assert (change.action, change.drift) == (Action.NOOP, None)


def test_block_volume_smaller_at_the_backend_is_drift_and_expanded(src):
    desired = src({"v.yaml": docs(DO_CLASS, volume("db", "storageClassName: do", size="1.5Gi"))})
    seen = Observation(kind=ObservedKind.BLOCK_VOLUME, size_bytes=GIB)
    change = change_at(
        make(desired, records_for(desired), observations={a("volume/prod/db"): seen}),
        "volume/prod/db",
    )
    assert change.action is Action.UPDATE
    assert change.drift == "size is 1Gi at the backend, the state recorded 1536Mi"


def test_block_volume_expand_reason_names_the_observed_size(src):
    desired = src({"v.yaml": docs(DO_CLASS, volume("db", "storageClassName: do", size="1.5Gi"))})
    seen = Observation(kind=ObservedKind.BLOCK_VOLUME, size_bytes=GIB)
    change = change_at(
        make(desired, records_for(desired), observations={a("volume/prod/db"): seen}),
        "volume/prod/db",
    )
    assert change.reason.startswith("expand 1Gi → 1.5Gi")


def test_block_volume_resized_in_the_console_shows_as_drift(src):
    desired = src({"v.yaml": docs(DO_CLASS, volume("db", "storageClassName: do", size="10Gi"))})
    seen = Observation(kind=ObservedKind.BLOCK_VOLUME, size_bytes=20 * GIB)
    try:
        plan = make(desired, records_for(desired), observations={a("volume/prod/db"): seen})
    except PlanError as exc:  # an error is acceptable only if it names the cause
        assert "20Gi at the backend" in str(exc)
    else:
        assert "20Gi" in (change_at(plan, "volume/prod/db").drift or "")


# ----------------------------------------------------------------------------- mass delete


def _fleet(src, keep: int, total: int = 4, *extra: str):
    before = src({"v.yaml": docs(*(volume(f"v{i}") for i in range(total)), *extra)})
    after = src({"v.yaml": docs(*(volume(f"v{i}") for i in range(keep)), *extra)})
    return before, after


def test_breaker_does_not_trip_at_exactly_half(src):
    before, after = _fleet(src, keep=2)
    plan = make(after, records_for(before))
    assert plan.summary.forget == 2
    assert plan.mass_delete is None


def test_breaker_trips_above_half(src):
    before, after = _fleet(src, keep=1)
    plan = make(after, records_for(before))
    assert plan.mass_delete == (
        "the plan would forget or destroy 3 of 4 managed volumes (more than half)"
    )


def test_breaker_trips_when_every_volume_would_go(src):
    before = src({"v.yaml": docs(*(volume(f"v{i}") for i in range(4)))})
    empty = src({"runefile.yaml": "storage: {}\n"})
    plan = make(empty, records_for(before))
    assert plan.mass_delete == (
        "the plan would forget or destroy all 4 managed volumes — is the source empty (a bad "
        "checkout, a wrong --path)?"
    )


def test_breaker_counts_destroys_too_and_allow_mass_delete_overrides(src):
    before = src(
        {
            "v.yaml": docs(
                FAST_DELETE, *(volume(f"v{i}", "storageClassName: fast") for i in range(3))
            )
        }
    )
    after = src({"v.yaml": docs(FAST_DELETE, volume("v0", "storageClassName: fast"))})
    assert make(after, records_for(before)).mass_delete is not None
    assert make(after, records_for(before), allow_mass_delete=True).mass_delete is None


def test_breaker_ignores_retained_records(src):
    before, after = _fleet(src, keep=2)
    records = records_for(before)
    for i in range(4):  # four old volumes the operator owns: neither managed nor leaving
        old = record_for(before.resources[a("volume/prod/v0")])
        address = a(f"volume/prod/old{i}")
        records[address] = replace(old, address=address, retained=True)
    plan = make(after, records)
    assert plan.summary.forget == 2
    assert plan.mass_delete is None
    before3, after3 = _fleet(src, keep=1)
    records3 = {**records_for(before3), **{k: v for k, v in records.items() if v.retained}}
    assert make(after3, records3).mass_delete == (
        "the plan would forget or destroy 3 of 4 managed volumes (more than half)"
    )


def test_released_replicas_do_not_count_as_leaving(src):
    before = src({"s.yaml": POSTGRES})
    after = src({"runefile.yaml": "storage: {}\n"})
    plan = make(after, records_for(before))
    assert plan.summary.update == 3
    assert plan.mass_delete is None


def test_breaker_trips_when_the_source_comes_back_empty_with_template_volumes(src):
    before = src({"s.yaml": POSTGRES, "v.yaml": docs(volume("web"), volume("db"))})
    empty = src({"runefile.yaml": "storage: {}\n"})
    plan = make(empty, records_for(before))
    assert (plan.summary.forget, plan.summary.update) == (2, 3)
    assert plan.mass_delete is not None


# ----------------------------------------------------------------------------- target


RESTORE_CHAIN = docs(
    FAST_DELETE,
    volume("web", "storageClassName: fast"),
    SNAP,
    volume("copy", "restoreFrom: {snapshot: s1}"),
    volume("other"),
)


def test_target_limits_the_plan_to_the_address_and_its_dependencies(src):
    desired = src({"v.yaml": RESTORE_CHAIN})
    plan = make(desired, targets=("volume/prod/copy",))
    assert [str(c.address) for c in plan.changes] == [
        "storageclass/fast",
        "volume/prod/web",
        "snapshot/prod/s1",
        "volume/prod/copy",
    ]
    only_web = make(desired, targets=("volume/prod/web",))
    assert [str(c.address) for c in only_web.changes] == ["storageclass/fast", "volume/prod/web"]
    assert only_web.options.targets == ("volume/prod/web",)


def test_target_of_an_unknown_address_plans_nothing(src):
    desired = src({"v.yaml": RESTORE_CHAIN})
    assert make(desired, targets=("volume/prod/nope",)).changes == ()


# ----------------------------------------------------------------------------- order, verdict


def test_restored_volume_is_created_after_its_snapshot_after_its_source(src):
    plan = make(src({"v.yaml": RESTORE_CHAIN}))
    order = [str(c.address) for c in plan.changes]
    assert order.index("storageclass/fast") < order.index("volume/prod/web")
    assert order.index("volume/prod/web") < order.index("snapshot/prod/s1")
    assert order.index("snapshot/prod/s1") < order.index("volume/prod/copy")


def test_destroys_run_in_reverse_dependency_order(src):
    before = src({"v.yaml": docs(FAST_DELETE, volume("web", "storageClassName: fast"), SNAP)})
    after = src({"v.yaml": volume("other")})
    plan = make(after, records_for(before), allow_destroy=True, allow_mass_delete=True)
    order = [str(c.address) for c in plan.changes if c.action is Action.DESTROY]
    assert order == ["snapshot/prod/s1", "volume/prod/web", "storageclass/fast"]


def test_verdict_lists_every_victim_with_handle_and_blocking_flag(src):
    before = src(
        {
            "runefile.yaml": HOST_RUNEFILE,
            "v.yaml": docs(
                FAST_DELETE,
                *(volume(n, "storageClassName: fast") for n in ("a", "b", "c")),
            ),
        }
    )
    after = src(
        {
            "runefile.yaml": HOST_RUNEFILE,
            "v.yaml": docs(
                FAST_DELETE,
                volume("a", "storageClassName: fast"),
                volume("b", "storageClassName: fast").replace("1Gi", "2Gi"),
                volume("c"),
            ),
        }
    )
    plan = make(after, records_for(before))
    assert list(verdict_lines(plan)) == [
        "This plan would destroy the data of 1 resource(s):",
        "  volume/prod/c (/var/lib/rune/volumes/prod/c): replace — blocked: needs --allow-replace",
    ]
    assert plan.to_json()["verdict"] == {
        "destroysData": True,
        "volumes": [
            {
                "address": "volume/prod/c",
                "handle": "/var/lib/rune/volumes/prod/c",
                "action": "replace",
                "blocked": "--allow-replace",
            }
        ],
    }


def test_a_plan_without_victims_says_no_data_will_be_destroyed(src):
    before = src({"v.yaml": docs(volume("a"), volume("b"), volume("c"))})
    after = src({"v.yaml": docs(volume("a", "labels: {x: y}"), volume("b"), volume("d"))})
    plan = make(after, records_for(before))
    assert plan.summary.line() == (
        "Plan: 1 to create, 1 to update, 0 to replace, 0 to destroy, 1 to forget."
    )
    assert list(verdict_lines(plan)) == ["No data will be destroyed."]
    assert plan.to_json()["verdict"] == {"destroysData": False, "volumes": []}


def test_same_inputs_give_the_same_plan(src):
    before = src({"v.yaml": RESTORE_CHAIN})
    after = src({"v.yaml": RESTORE_CHAIN.replace("name: other", "name: other2")})
    records = records_for(before)
    first = make(after, records)
    second = make(after, dict(reversed(list(records.items()))))
    assert first == second


def test_plan_json_round_trip_of_a_fresh_plan(src):
    plan = make(src({"v.yaml": RESTORE_CHAIN}), targets=("volume/prod/copy",))
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan


def test_plan_json_round_trip_with_recorded_specs(src):
    before = src({"v.yaml": volume("web", "labels: {a: b}")})
    after = src({"v.yaml": volume("web", "labels: {a: c}")})
    plan = make(after, records_for(before))
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan


# ----------------------------------------------------------------------------- property

NAMES = ("a", "b", "c")
SIZES = ("1Gi", "2Gi", "3Gi", "4Gi")


@st.composite
def spec_sets(draw, floor: dict[str, int]) -> SpecSet:
    """A small valid source: volumes a–c (sizes never below ``floor``), an optional
    class, a service with a claim template and a claim, a snapshot and a restore."""
    classes = []
    fast_policy = draw(st.sampled_from([ReclaimPolicy.RETAIN, ReclaimPolicy.DELETE]))
    has_fast = draw(st.booleans())
    if has_fast:
        classes.append(
            StorageClass(
                name="fast",
                driver="local",
                reclaim_policy=fast_policy,
                labels=draw(st.sampled_from([{}, {"tier": "1"}])),
            )
        )
    volumes = []
    for name in sorted(draw(st.sets(st.sampled_from(NAMES)))):
        size = draw(st.integers(floor.get(name, 0), len(SIZES) - 1))
        floor[name] = size
        volumes.append(
            Volume(
                name=name,
                namespace="prod",
                size=parse(SIZES[size]),
                access_mode=AccessMode.READ_WRITE_ONCE,
                storage_class_name=draw(
                    st.sampled_from(["local", "fast"] if has_fast else ["local"])
                ),
                reclaim_policy=draw(
                    st.sampled_from([None, ReclaimPolicy.RETAIN, ReclaimPolicy.DELETE])
                ),
                labels=draw(st.sampled_from([{}, {"app": "x"}, {"app": "y", "k": "v"}])),
            )
        )
    names = [v.name for v in volumes]
    snapshots = []
    if "a" in names and draw(st.booleans()):
        snapshots.append(Snapshot(name="s1", namespace="prod", source_volume="a"))
        if draw(st.booleans()):
            volumes.append(
                Volume(
                    name="r",
                    namespace="prod",
                    size=parse("4Gi"),
                    access_mode=AccessMode.READ_WRITE_ONCE,
                    restore_from="s1",
                )
            )
    services = []
    if draw(st.booleans()):
        mounts = [
            VolumeMount(
                name="data",
                mount_path="/data",
                claim_template=ClaimTemplate(
                    size=parse("1Gi"), access_mode=AccessMode.READ_WRITE_ONCE
                ),
            )
        ]
        services.append(
            Service(
                name="db", namespace="prod", scale=draw(st.integers(0, 3)), volumes=tuple(mounts)
            )
        )
    if "b" in names and draw(st.booleans()):
        services.append(
            Service(
                name="web",
                namespace="prod",
                volumes=(
                    VolumeMount(
                        name="d", mount_path="/d", claim=ClaimRef(name="b", namespace="prod")
                    ),
                ),
            )
        )
    return SpecSet(
        storage_classes=tuple(classes),
        volumes=tuple(volumes),
        snapshots=tuple(snapshots),
        services=tuple(services),
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_after_applying_a_plan_the_next_plan_is_all_no_ops(data):
    floor: dict[str, int] = {}
    records: dict[Address, StateRecord] = {}
    allow = {"allow_replace": True, "allow_destroy": True, "allow_mass_delete": True}
    for _step in range(3):
        desired = expand(data.draw(spec_sets(floor)))
        plan = make(desired, records, **allow)
        records = simulate_apply(records, plan)
        again = make(desired, records, **allow)
        assert [c for c in again.changes if c.action is not Action.NOOP] == []
        assert {c.address for c in again.changes} >= set(desired.resources)
        for address, want in desired.resources.items():
            assert records[address].spec_json == canonical_json(want.spec)
            assert not records[address].retained
        assert all(r.kind is not Kind.SERVICE for r in records.values())
