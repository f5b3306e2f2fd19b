"""What each (kind, action) does on the real local driver, and what the state says while
it runs (DESIGN §5–§7, seed 001 "Volume lifecycle", "Reclaim policy", "Snapshots").

Every test applies real plans of real sources to real directories and a real SQLite
state; after each apply a fresh plan of the same source is a no-op and no record is
left with an intent.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from rune_sync.apply.events import Phase
from rune_sync.apply.steps import predestroy_name
from rune_sync.drivers.base import OpContext
from rune_sync.errors import UnsafePlanError
from rune_sync.plan.model import Action
from rune_sync.spec import names
from tests.apply import (
    Env,
    Flaky,
    actions,
    docs,
    read_record,
    service_claiming,
    snapshot,
    storage_class,
    volume,
)

STAMP = re.compile(r"^(?P<volume>.+)-predestroy-\d{8}t\d{6}z$")


def write(path: Path, text: str = "precious") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def predestroy_records(env: Env, volume_name: str) -> dict[str, Any]:
    return {
        a: r
        for a, r in env.records().items()
        if r.kind.value == "snapshot" and r.spec.get("preDestroyOf") == f"volume/prod/{volume_name}"
    }


# ----------------------------------------------------------------------------- create


def test_create_class_volumes_and_snapshot(env: Env):
    files = {
        "v.yaml": docs(
            storage_class("fast"),
            volume("a", storage_class="fast"),
            volume("b"),
            snapshot("s", "a"),
        )
    }
    applied = env.apply(files)
    assert applied.result.ok, applied.result.summary()
    assert applied.result.summary() == (
        "Apply complete: 4 created, 0 updated, 0 replaced, 0 destroyed, 0 forgotten."
    )
    records = env.records()
    assert records["storageclass/fast"].status == "Available"
    for name in ("a", "b"):
        record = records[f"volume/prod/{name}"]
        assert record.status == "Available"
        assert record.handle == str(env.root / "prod" / name)
        assert Path(record.handle).is_dir()
        assert record.attempts == 1
        assert record.failed_runs == 0
    snap = records["snapshot/prod/s"]
    assert snap.status == "Ready"
    assert snap.handle == str(env.snapshots / "prod" / "s")
    assert Path(snap.handle).is_dir()
    assert env.volume_dirs() == {str(env.root / "prod" / "a"), str(env.root / "prod" / "b")}
    env.assert_converged(files)


def test_restored_volume_holds_the_snapshot_data(env: Env):
    base = {"v.yaml": volume("db")}
    assert env.apply(base).result.ok
    write(env.root / "prod" / "db" / "pg" / "table.dat", "rows at snapshot time")
    files = {
        "v.yaml": docs(volume("db"), snapshot("nightly", "db"), volume("copy", restore="nightly"))
    }
    applied = env.apply(files)
    assert applied.result.ok, applied.result.summary()
    copy = env.record("volume/prod/copy")
    assert copy.status == "Available"
    assert copy.spec["restoreFrom"] == "nightly"
    assert (Path(str(copy.handle)) / "pg" / "table.dat").read_text() == "rows at snapshot time"
    snap = env.record("snapshot/prod/nightly")
    assert (Path(str(snap.handle)) / "pg" / "table.dat").read_text() == "rows at snapshot time"
    (done,) = applied.events.of("volume/prod/copy", Phase.DONE)
    assert done.message.startswith("restored (")
    # Later writes to the source volume do not reach the copy.
    write(env.root / "prod" / "db" / "pg" / "table.dat", "newer rows")
    assert (Path(str(copy.handle)) / "pg" / "table.dat").read_text() == "rows at snapshot time"
    env.assert_converged(files)


# ----------------------------------------------------------------------------- update


def test_label_change_is_an_in_place_update(env: Env):
    assert env.apply({"v.yaml": volume("web", labels={"app": "web"})}).result.ok
    write(env.root / "prod" / "web" / "index.html")
    files = {"v.yaml": volume("web", labels={"app": "api", "tier": "1"})}
    planned = env.plan(files)
    assert actions(planned.plan) == {"volume/prod/web": "update"}
    applied = env.apply(planned)
    assert applied.result.ok
    assert applied.result.count(Action.UPDATE) == 1
    record = env.record("volume/prod/web")
    assert record.spec["labels"] == {"app": "api", "tier": "1"}
    assert record.status == "Available"
    assert (env.root / "prod" / "web" / "index.html").read_text() == "precious"
    env.assert_converged(files)


def test_size_growth_on_local_is_a_record_update(env: Env):
    assert env.apply({"v.yaml": volume("web", size="1Gi")}).result.ok
    write(env.root / "prod" / "web" / "f")
    files = {"v.yaml": volume("web", size="3Gi")}
    planned = env.plan(files)
    assert actions(planned.plan) == {"volume/prod/web": "update"}
    applied = env.apply(planned)
    assert applied.result.ok
    record = env.record("volume/prod/web")
    assert record.spec["size"] == "3Gi"
    assert record.spec["sizeBytes"] == 3 * 1024**3
    assert record.handle == str(env.root / "prod" / "web")
    assert (env.root / "prod" / "web" / "f").read_text() == "precious"
    (done,) = applied.events.of("volume/prod/web", Phase.DONE)
    assert "expanded to 3Gi" in done.message
    env.assert_converged(files)


def test_binding_change_makes_the_volume_bound_then_released(env: Env):
    alone = {"v.yaml": volume("web-data")}
    assert env.apply(alone).result.ok
    assert env.record("volume/prod/web-data").status == "Available"
    claimed = {"v.yaml": volume("web-data"), "s.yaml": service_claiming("web", "web-data")}
    applied = env.apply(claimed)
    assert applied.result.ok
    record = env.record("volume/prod/web-data")
    assert record.status == "Bound"
    assert record.bound_claim == "service/prod/web"
    env.assert_converged(claimed)
    assert env.apply(alone).result.ok
    record = env.record("volume/prod/web-data")
    assert record.status == "Released"
    assert record.bound_claim is None
    assert Path(str(record.handle)).is_dir()
    env.assert_converged(alone)


def claim_template(scale: int) -> str:
    return textwrap.dedent(
        f"""\
        service:
          name: pg
          namespace: prod
          image: postgres:16
          scale: {scale}
          volumes:
            - name: data
              mountPath: /var/lib/postgresql/data
              claimTemplate:
                size: 1Gi
                accessMode: ReadWriteOnce
        """
    )


def test_scaling_down_releases_the_replica_volume_and_scaling_up_binds_it_again(env: Env):
    assert env.apply({"s.yaml": claim_template(2)}).result.ok
    for n in (0, 1):
        record = env.record(f"volume/prod/data-pg-{n}")
        assert (record.status, record.owner_service) == ("Bound", "pg")
    write(env.root / "prod" / "data-pg-1" / "PG_VERSION", "16")
    down = {"s.yaml": claim_template(1)}
    applied = env.apply(down)
    assert applied.result.ok and applied.result.count(Action.UPDATE) == 1
    record = env.record("volume/prod/data-pg-1")
    assert (record.status, record.bound_claim, record.retained) == ("Released", None, False)
    assert (env.root / "prod" / "data-pg-1" / "PG_VERSION").read_text() == "16"
    assert env.record("volume/prod/data-pg-0").status == "Bound"
    env.assert_converged(down, allow_destroy=True)
    up = {"s.yaml": claim_template(2)}
    assert env.apply(up).result.ok
    assert env.record("volume/prod/data-pg-1").status == "Bound"
    assert (env.root / "prod" / "data-pg-1" / "PG_VERSION").read_text() == "16"
    env.assert_converged(up)


def test_snapshot_label_change_is_an_update(env: Env):
    assert env.apply({"v.yaml": docs(volume("a"), snapshot("s", "a"))}).result.ok
    files = {"v.yaml": docs(volume("a"), snapshot("s", "a", labels={"keep": "yes"}))}
    applied = env.apply(files)
    assert applied.result.ok
    assert env.record("snapshot/prod/s").spec["labels"] == {"keep": "yes"}
    env.assert_converged(files)


def test_class_change_is_an_in_place_update_and_a_removed_class_is_dropped(env: Env):
    assert env.apply({"c.yaml": storage_class("fast"), "v.yaml": volume("a")}).result.ok
    files = {"c.yaml": storage_class("fast", reclaim="retain"), "v.yaml": volume("a")}
    planned = env.plan(files)
    assert actions(planned.plan) == {"storageclass/fast": "update"}
    assert env.apply(planned).result.ok
    assert env.record("storageclass/fast").spec["reclaimPolicy"] == "retain"
    env.assert_converged(files)
    gone = {"v.yaml": volume("a")}
    applied = env.apply(gone)
    assert applied.result.ok and applied.result.count(Action.DESTROY) == 1
    assert "storageclass/fast" not in env.records()
    assert (env.root / "prod" / "a").is_dir()
    env.assert_converged(gone)


# ----------------------------------------------------------------------------- replace


def test_replace_destroys_old_data_after_a_verified_predestroy_snapshot(env: Env):
    before = {"v.yaml": docs(storage_class("fast"), volume("a"))}
    assert env.apply(before).result.ok
    write(env.root / "prod" / "a" / "old.txt", "old data")
    after = {"v.yaml": docs(storage_class("fast"), volume("a", storage_class="fast"))}
    blocked = env.plan(after)
    (change,) = [c for c in blocked.plan.changes if c.action is Action.REPLACE]
    assert change.blocked == "--allow-replace"
    with pytest.raises(UnsafePlanError):
        env.apply(blocked)
    assert (env.root / "prod" / "a" / "old.txt").exists()

    applied = env.apply(after, allow_replace=True)
    assert applied.result.ok, applied.result.summary()
    assert applied.result.count(Action.REPLACE) == 1
    volume_dir = env.root / "prod" / "a"
    assert volume_dir.is_dir()
    assert list(volume_dir.iterdir()) == []  # a new, empty volume
    record = env.record("volume/prod/a")
    assert record.status == "Available"
    assert record.spec["storageClassName"] == "fast"
    assert record.handle == str(volume_dir)

    (address, snap), *more = predestroy_records(env, "a").items()
    assert more == []
    assert STAMP.match(snap.address.name) and snap.address.name.startswith("a-predestroy-")
    assert snap.status == "Ready"
    assert snap.retained is True
    assert snap.intent is None
    assert snap.spec["sourceVolume"] == "a"
    assert (Path(str(snap.handle)) / "old.txt").read_text() == "old data"
    notes = applied.events.of("volume/prod/a", Phase.NOTE)
    assert len(notes) == 1 and address in notes[0].message and "checked" in notes[0].message
    env.assert_converged(after)


# ----------------------------------------------------------------------------- destroy


def three(*, a_policy: str = "delete", keep_a: bool = True) -> dict[str, str]:
    parts = [volume("b"), volume("c")]
    if keep_a:
        parts.insert(0, volume("a", reclaim=a_policy))
    return {"v.yaml": docs(*parts)}


def test_destroy_deletes_the_directory_and_the_record_after_a_snapshot(env: Env):
    assert env.apply(three()).result.ok
    write(env.root / "prod" / "a" / "data.bin", "last words")
    blocked = env.plan(three(keep_a=False))
    assert [c.blocked for c in blocked.plan.changes if c.action is Action.DESTROY] == [
        "--allow-destroy"
    ]
    applied = env.apply(three(keep_a=False), allow_destroy=True)
    assert applied.result.ok, applied.result.summary()
    assert applied.result.count(Action.DESTROY) == 1
    assert not (env.root / "prod" / "a").exists()
    assert "volume/prod/a" not in env.records()
    (snap,) = predestroy_records(env, "a").values()
    assert snap.status == "Ready" and snap.retained
    assert (Path(str(snap.handle)) / "data.bin").read_text() == "last words"
    assert env.volume_dirs() == {str(env.root / "prod" / n) for n in ("b", "c")}
    env.assert_converged(three(keep_a=False), allow_destroy=True)


def test_destroy_without_snapshot_before_destroy_takes_no_snapshot(env: Env):
    assert env.apply(three()).result.ok
    write(env.root / "prod" / "a" / "data.bin")
    planned = env.plan(three(keep_a=False), allow_destroy=True, snapshot_before_destroy=False)
    (change,) = [c for c in planned.plan.changes if c.action is Action.DESTROY]
    assert change.snapshot_first is False
    applied = env.apply(planned)
    assert applied.result.ok
    assert not (env.root / "prod" / "a").exists()
    assert predestroy_records(env, "a") == {}
    assert env.snapshot_dirs() == set()
    assert applied.events.of("volume/prod/a", Phase.NOTE) == []
    env.assert_converged(three(keep_a=False))


# ----------------------------------------------------------------------------- forget


def test_forget_keeps_the_data_and_a_retained_record(env: Env):
    assert env.apply(three(a_policy="retain")).result.ok
    write(env.root / "prod" / "a" / "data.bin", "keep me")
    kept = env.record("volume/prod/a")
    planned = env.plan(three(keep_a=False))
    assert actions(planned.plan) == {"volume/prod/a": "forget"}
    applied = env.apply(planned)
    assert applied.result.ok
    assert applied.result.count(Action.FORGET) == 1
    record = env.record("volume/prod/a")
    assert record.retained is True
    assert record.status == kept.status
    assert record.handle == kept.handle
    assert (env.root / "prod" / "a" / "data.bin").read_text() == "keep me"
    assert env.snapshot_dirs() == set()
    # Later plans leave the retained record alone, even with --allow-destroy.
    env.assert_converged(three(keep_a=False), allow_destroy=True)
    # Back in the source, it is re-adopted with its data.
    again = env.apply(three(a_policy="retain"))
    assert again.result.ok
    record = env.record("volume/prod/a")
    assert record.retained is False
    assert record.handle == kept.handle
    assert (env.root / "prod" / "a" / "data.bin").read_text() == "keep me"
    env.assert_converged(three(a_policy="retain"))


def test_removed_snapshot_is_forgotten_without_allow_destroy(env: Env):
    with_snap = {"v.yaml": docs(volume("a"), snapshot("s", "a"))}
    assert env.apply(with_snap).result.ok
    without = {"v.yaml": volume("a")}
    applied = env.apply(without)
    assert applied.result.ok
    record = env.record("snapshot/prod/s")
    assert record.retained is True and record.status == "Ready"
    assert Path(str(record.handle)).is_dir()
    env.assert_converged(without, allow_destroy=True)


def test_removed_snapshot_is_deleted_in_two_phases_with_allow_destroy(env: Env):
    with_snap = {"v.yaml": docs(volume("a"), snapshot("s", "a"))}
    assert env.apply(with_snap).result.ok
    handle = env.record("snapshot/prod/s").handle
    seen: dict[str, Any] = {}

    def during_delete(ctx: OpContext, _: object) -> None:
        seen["record"] = read_record(env.state_path, "snapshot/prod/s")

    driver = Flaky(env.driver, before={"delete_snapshot": during_delete})
    without = {"v.yaml": volume("a")}
    applied = env.apply(without, driver=driver, allow_destroy=True)
    assert applied.result.ok, applied.result.summary()
    assert seen["record"].status == "Deleting"
    assert seen["record"].intent == "delete-snapshot"
    assert not Path(str(handle)).exists()
    assert "snapshot/prod/s" not in env.records()
    (done,) = applied.events.of("snapshot/prod/s", Phase.DONE)
    assert done.message == f"deleted ({handle})"
    assert (env.root / "prod" / "a").is_dir()
    env.assert_converged(without, allow_destroy=True)


# ----------------------------------------------------------------------------- status during calls


def test_state_tells_what_is_in_flight_during_every_driver_call(env: Env):
    """A second connection reading the state during each call sees its intent."""
    seen: dict[str, Any] = {}

    def look(key: str, address: str):
        def hook(ctx: OpContext, _: object) -> None:
            seen[key] = read_record(env.state_path, address)

        return hook

    driver = Flaky(
        env.driver,
        before={
            "provision": look("provision", "volume/prod/a"),
            "snapshot": look("snapshot", "snapshot/prod/s"),
            "restore_from_snapshot": look("restore", "volume/prod/r"),
        },
    )
    files = {"v.yaml": docs(volume("a"), snapshot("s", "a"), volume("r", restore="s"))}
    assert env.apply(files, driver=driver).result.ok
    provision = seen["provision"]
    assert (provision.status, provision.intent, provision.handle) == (
        "Provisioning",
        "provision",
        None,
    )
    snap = seen["snapshot"]
    assert (snap.status, snap.intent, snap.handle) == ("Creating", "snapshot", None)
    restore = seen["restore"]
    assert (restore.status, restore.intent) == ("Provisioning", "restore")
    env.assert_converged(files)


def test_state_tells_what_is_in_flight_during_expand(env: Env):
    assert env.apply({"v.yaml": volume("a", size="1Gi")}).result.ok
    seen: dict[str, Any] = {}

    def hook(ctx: OpContext, _: object) -> None:
        seen["expand"] = read_record(env.state_path, "volume/prod/a")

    files = {"v.yaml": volume("a", size="2Gi")}
    assert env.apply(files, driver=Flaky(env.driver, before={"expand": hook})).result.ok
    assert (seen["expand"].status, seen["expand"].intent) == ("Available", "expand")
    assert seen["expand"].spec["size"] == "1Gi"  # the new spec is written with the result
    assert env.record("volume/prod/a").intent is None
    env.assert_converged(files)


def test_state_tells_what_is_in_flight_during_a_destroy(env: Env):
    assert env.apply(three()).result.ok
    seen: dict[str, Any] = {}
    prefix = "snapshot/prod/a-predestroy-"

    def during_snapshot(ctx: OpContext, request: Any) -> None:
        seen["volume at snapshot"] = read_record(env.state_path, "volume/prod/a")
        seen["snapshot at snapshot"] = read_record(env.state_path, f"snapshot/prod/{request.name}")

    def during_delete(ctx: OpContext, _: object) -> None:
        seen["volume at delete"] = read_record(env.state_path, "volume/prod/a")
        with_prefix = [
            r for a, r in env.records().items() if a.startswith(prefix)
        ]  # the recorder's own connection: written before delete was called
        seen["snapshot at delete"] = with_prefix

    driver = Flaky(env.driver, before={"snapshot": during_snapshot, "delete": during_delete})
    applied = env.apply(three(keep_a=False), driver=driver, allow_destroy=True)
    assert applied.result.ok, applied.result.summary()
    at_snapshot = seen["volume at snapshot"]
    assert (at_snapshot.status, at_snapshot.intent) == ("Available", None)
    snap = seen["snapshot at snapshot"]
    assert (snap.status, snap.intent, snap.retained) == ("Creating", "predestroy-snapshot", True)
    at_delete = seen["volume at delete"]
    assert (at_delete.status, at_delete.intent) == ("Released", "delete")
    assert at_delete.handle == str(env.root / "prod" / "a")
    (ready,) = seen["snapshot at delete"]
    assert ready.status == "Ready" and ready.handle
    assert driver.count("verify_snapshot") == 1


# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize("length", [1, 20, 35, 36, 63])
def test_predestroy_name_is_a_dns_label_that_keeps_the_stamp(length: int):
    name = ("v" * length)[:length]
    made = predestroy_name(name, "20251121t120000z")
    assert len(made) <= 63
    assert names.label_problem(made) is None
    assert made.endswith("-predestroy-20251121t120000z")
    if len(name) + len("-predestroy-20251121t120000z") <= 63:
        assert made == f"{name}-predestroy-20251121t120000z"


def test_predestroy_names_of_long_volumes_with_a_common_prefix_differ():
    a = predestroy_name("x" * 50 + "-one", "20251121t120000z")
    b = predestroy_name("x" * 50 + "-two", "20251121t120000z")
    assert a != b


def test_destroying_a_volume_with_a_63_character_name(env: Env):
    long = "d" * 63
    files = {"v.yaml": docs(volume(long, reclaim="delete"), volume("b"), volume("c"))}
    assert env.apply(files).result.ok
    write(env.root / "prod" / long / "f", "long")
    applied = env.apply({"v.yaml": docs(volume("b"), volume("c"))}, allow_destroy=True)
    assert applied.result.ok, applied.result.summary()
    (snap,) = predestroy_records(env, long).values()
    assert len(snap.address.name) <= 63
    assert (Path(str(snap.handle)) / "f").read_text() == "long"
