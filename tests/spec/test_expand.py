"""Expansion (DESIGN §4): from validated specs to the desired set the planner compares.

Each case is a real source directory validated with the installed drivers and expanded
with :func:`desired_set`; a few cases build specs directly where validation would refuse
the input on purpose (expansion assumes a valid source).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rune_sync.spec.expand import (
    BUILTIN_CLASSES,
    class_index,
    default_class_name,
    desired_set,
    effective_policy,
)
from rune_sync.spec.model import (
    AccessMode,
    Address,
    Kind,
    ReclaimPolicy,
    SpecSet,
    StorageClass,
    StorageSettings,
    Volume,
)
from rune_sync.spec.quantity import parse
from tests.plan import desired_from

VOLUME = """\
volume:
  name: web-data
  namespace: prod
  size: 10Gi
  accessMode: ReadWriteOnce
"""


def vol(address: str) -> Address:
    return Address.parse(address)


# ----------------------------------------------------------------------------- classes


def test_builtin_classes_are_local_and_local_host_and_need_no_record(tmp_path: Path):
    desired = desired_from(tmp_path, {"v.yaml": VOLUME})
    assert sorted(c.name for c in BUILTIN_CLASSES) == ["local", "local-host"]
    assert all(c.builtin and not c.default for c in BUILTIN_CLASSES)
    # Built-ins are not resources of their own: no storageclass address is desired.
    assert [str(a) for a in desired.resources] == ["volume/prod/web-data"]
    want = desired.resources[vol("volume/prod/web-data")]
    assert want.driver == "local"
    assert want.depends_on == ()


def test_a_redefined_builtin_replaces_it_and_becomes_a_resource(tmp_path: Path):
    desired = desired_from(
        tmp_path,
        {
            "c.yaml": """\
                storageClass:
                  name: local
                  driver: local
                  reclaimPolicy: delete
                  labels: {tier: disk}
            """,
            "v.yaml": VOLUME,
        },
    )
    cls = desired.resources[Address(Kind.STORAGE_CLASS, "", "local")]
    assert cls.spec["reclaimPolicy"] == "delete"
    assert cls.spec["labels"] == {"tier": "disk"}
    want = desired.resources[vol("volume/prod/web-data")]
    assert want.reclaim_policy is ReclaimPolicy.DELETE
    assert want.depends_on == (Address(Kind.STORAGE_CLASS, "", "local"),)


def test_class_index_keeps_builtins_that_are_not_redefined():
    mine = StorageClass(name="local-host", driver="local-host", labels={"x": "y"})
    index = class_index([mine])
    assert index["local"] is BUILTIN_CLASSES[0]
    assert index["local-host"] is mine


# ----------------------------------------------------------------------------- default class


def test_volume_without_class_gets_the_runefile_default(tmp_path: Path):
    desired = desired_from(
        tmp_path,
        {
            "runefile.yaml": "storage:\n  defaultStorageClass: fast\n",
            "c.yaml": "storageClass:\n  name: fast\n  driver: local\n",
            "v.yaml": VOLUME,
        },
    )
    want = desired.resources[vol("volume/prod/web-data")]
    assert want.spec["storageClassName"] == "fast"
    assert want.depends_on == (Address(Kind.STORAGE_CLASS, "", "fast"),)


def test_the_builtin_local_is_the_default_without_a_runefile(tmp_path: Path):
    desired = desired_from(tmp_path, {"v.yaml": VOLUME})
    assert desired.resources[vol("volume/prod/web-data")].spec["storageClassName"] == "local"


def test_a_class_marked_default_wins_over_the_runefile_default(tmp_path: Path):
    desired = desired_from(
        tmp_path,
        {
            "runefile.yaml": "storage:\n  defaultStorageClass: local\n",
            "c.yaml": "storageClass:\n  name: ssd\n  driver: local\n  default: true\n",
            "v.yaml": VOLUME,
        },
    )
    want = desired.resources[vol("volume/prod/web-data")]
    assert want.spec["storageClassName"] == "ssd"
    assert want.depends_on == (Address(Kind.STORAGE_CLASS, "", "ssd"),)


def test_a_class_marked_default_applies_even_when_the_runefile_disables_the_default(
    tmp_path: Path,
):
    desired = desired_from(
        tmp_path,
        {
            "runefile.yaml": 'storage:\n  defaultStorageClass: ""\n',
            "c.yaml": "storageClass:\n  name: ssd\n  driver: local\n  default: true\n",
            "v.yaml": VOLUME,
        },
    )
    assert desired.resources[vol("volume/prod/web-data")].spec["storageClassName"] == "ssd"


def test_an_explicit_class_is_kept_even_when_another_is_default(tmp_path: Path):
    desired = desired_from(
        tmp_path,
        {
            "c.yaml": "storageClass:\n  name: ssd\n  driver: local\n  default: true\n",
            "v.yaml": VOLUME.replace("size:", "storageClassName: local\n  size:"),
        },
    )
    assert desired.resources[vol("volume/prod/web-data")].spec["storageClassName"] == "local"


@pytest.mark.parametrize(
    ("setting", "expected"),
    [("local", "local"), ("", None), ("missing", None), ("local-host", "local-host")],
)
def test_default_class_name_from_settings(setting: str, expected: str | None):
    classes = class_index(())
    settings = StorageSettings(default_storage_class=setting)
    assert default_class_name(classes, settings) == expected


# ----------------------------------------------------------------------------- templates

POSTGRES = """\
service:
  name: postgres
  namespace: prod
  scale: 3
  image: postgres:16
  volumes:
    - name: pgdata
      mountPath: /var/lib/postgresql/data
      claimTemplate:
        size: 10Gi
        accessMode: ReadWriteOnce
        reclaimPolicy: delete
        parameters: {tuning: fast}
"""


def test_claim_template_yields_one_volume_per_replica_with_owner(tmp_path: Path):
    desired = desired_from(tmp_path, {"s.yaml": POSTGRES})
    names = sorted(str(a) for a in desired.resources)
    assert names == [
        "volume/prod/pgdata-postgres-0",
        "volume/prod/pgdata-postgres-1",
        "volume/prod/pgdata-postgres-2",
    ]
    for k in range(3):
        want = desired.resources[vol(f"volume/prod/pgdata-postgres-{k}")]
        assert want.owner_service == "postgres"
        assert want.spec["ownerService"] == "postgres"
        assert want.spec["size"] == "10Gi"
        assert want.spec["sizeBytes"] == 10 * 1024**3
        assert want.spec["storageClassName"] == "local"
        assert want.spec["reclaimPolicy"] == "delete"
        assert want.spec["parameters"] == {"tuning": "fast"}
    assert desired.template_owners == frozenset({("prod", "postgres")})


def test_template_names_are_stable_across_scale_changes(tmp_path: Path):
    three = desired_from(tmp_path / "a", {"s.yaml": POSTGRES})
    five = desired_from(tmp_path / "b", {"s.yaml": POSTGRES.replace("scale: 3", "scale: 5")})
    assert set(three.resources) < set(five.resources)
    for address, want in three.resources.items():
        assert five.resources[address].spec == want.spec


def test_scale_zero_yields_no_volume_but_still_owns_the_template(tmp_path: Path):
    desired = desired_from(tmp_path, {"s.yaml": POSTGRES.replace("scale: 3", "scale: 0")})
    assert dict(desired.resources) == {}
    assert desired.template_owners == frozenset({("prod", "postgres")})


def test_service_without_templates_owns_nothing(tmp_path: Path):
    desired = desired_from(
        tmp_path,
        {
            "v.yaml": VOLUME,
            "s.yaml": """\
                service:
                  name: web
                  namespace: prod
                  volumes:
                    - {name: data, mountPath: /data, claim: {name: web-data}}
            """,
        },
    )
    assert desired.template_owners == frozenset()


# ----------------------------------------------------------------------------- binding


def test_claimed_volume_is_bound_to_its_service_and_others_are_not(tmp_path: Path):
    desired = desired_from(
        tmp_path,
        {
            "v.yaml": VOLUME + "---\n" + VOLUME.replace("web-data", "spare"),
            "s.yaml": """\
                service:
                  name: web
                  namespace: prod
                  volumes:
                    - {name: data, mountPath: /data, claim: {name: web-data}}
            """,
        },
    )
    assert desired.resources[vol("volume/prod/web-data")].bound_claim == "service/prod/web"
    assert desired.resources[vol("volume/prod/spare")].bound_claim is None


def test_cross_namespace_claim_binds_to_the_service_address(tmp_path: Path):
    desired = desired_from(
        tmp_path,
        {
            "v.yaml": VOLUME.replace("namespace: prod", "namespace: shared"),
            "s.yaml": """\
                service:
                  name: web
                  namespace: prod
                  volumes:
                    - {name: data, mountPath: /data, claim: {name: web-data.shared.rune}}
            """,
        },
    )
    assert desired.resources[vol("volume/shared/web-data")].bound_claim == "service/prod/web"


def test_template_volumes_are_bound_to_their_service(tmp_path: Path):
    desired = desired_from(tmp_path, {"s.yaml": POSTGRES})
    bound = {str(a): w.bound_claim for a, w in desired.resources.items()}
    assert set(bound.values()) == {"service/prod/postgres"}


# ----------------------------------------------------------------------------- policy


def test_volume_policy_overrides_the_class_policy(tmp_path: Path):
    desired = desired_from(
        tmp_path,
        {
            "c.yaml": "storageClass:\n  name: fast\n  driver: local\n  reclaimPolicy: delete\n",
            "v.yaml": VOLUME.replace(
                "size:", "storageClassName: fast\n  reclaimPolicy: retain\n  size:"
            )
            + "---\n"
            + VOLUME.replace("web-data", "scratch").replace(
                "size:", "storageClassName: fast\n  size:"
            ),
        },
    )
    kept = desired.resources[vol("volume/prod/web-data")]
    scratch = desired.resources[vol("volume/prod/scratch")]
    assert (kept.reclaim_policy, kept.spec["reclaimPolicy"]) == (ReclaimPolicy.RETAIN, "retain")
    assert (scratch.reclaim_policy, scratch.spec["reclaimPolicy"]) == (
        ReclaimPolicy.DELETE,
        "delete",
    )


def test_preserve_on_delete_turns_delete_into_retain_for_local(tmp_path: Path):
    desired = desired_from(
        tmp_path,
        {
            "runefile.yaml": "storage:\n  preserveOnDelete: true\n",
            "c.yaml": "storageClass:\n  name: fast\n  driver: local\n  reclaimPolicy: delete\n",
            "v.yaml": VOLUME.replace(
                "size:", "storageClassName: fast\n  reclaimPolicy: delete\n  size:"
            ),
        },
    )
    want = desired.resources[vol("volume/prod/web-data")]
    assert want.reclaim_policy is ReclaimPolicy.RETAIN
    assert want.spec["reclaimPolicy"] == "retain"


def test_preserve_on_delete_is_read_from_the_toml_local_table(tmp_path: Path):
    desired = desired_from(
        tmp_path,
        {
            "runefile.toml": "[storage.local]\npreserveOnDelete = true\n",
            "v.yaml": VOLUME.replace("size:", "reclaimPolicy: delete\n  size:"),
        },
    )
    assert desired.resources[vol("volume/prod/web-data")].spec["reclaimPolicy"] == "retain"


def test_preserve_on_delete_leaves_other_drivers_alone():
    settings = StorageSettings(preserve_on_delete=True)
    cloud = StorageClass(name="do", driver="do-volume", reclaim_policy=ReclaimPolicy.DELETE)
    local = StorageClass(name="fast", driver="local", reclaim_policy=ReclaimPolicy.DELETE)
    volume = Volume(
        name="v", namespace="prod", size=parse("1Gi"), access_mode=AccessMode.READ_WRITE_ONCE
    )
    assert effective_policy(volume, cloud, settings) is ReclaimPolicy.DELETE
    assert effective_policy(volume, local, settings) is ReclaimPolicy.RETAIN
    assert effective_policy(volume, local, StorageSettings()) is ReclaimPolicy.DELETE


def test_builtin_classes_retain_by_default(tmp_path: Path):
    desired = desired_from(tmp_path, {"v.yaml": VOLUME})
    assert desired.resources[vol("volume/prod/web-data")].spec["reclaimPolicy"] == "retain"


# ----------------------------------------------------------------------------- dependencies


def test_dependencies_class_snapshot_source_and_restore(tmp_path: Path):
    desired = desired_from(
        tmp_path,
        {
            "c.yaml": "storageClass:\n  name: fast\n  driver: local\n",
            "v.yaml": VOLUME.replace("size:", "storageClassName: fast\n  size:"),
            "s.yaml": """\
                snapshot:
                  name: nightly
                  namespace: prod
                  source: {volume: web-data}
                ---
                volume:
                  name: web-copy
                  namespace: prod
                  size: 10Gi
                  accessMode: ReadWriteOnce
                  restoreFrom: {snapshot: nightly}
            """,
        },
    )
    deps = {str(a): [str(d) for d in w.depends_on] for a, w in desired.resources.items()}
    assert deps == {
        "storageclass/fast": [],
        "volume/prod/web-data": ["storageclass/fast"],
        "snapshot/prod/nightly": ["volume/prod/web-data"],
        "volume/prod/web-copy": ["snapshot/prod/nightly"],
    }
    snap = desired.resources[vol("snapshot/prod/nightly")]
    assert snap.driver == "local"
    assert snap.spec == {"sourceVolume": "web-data", "driver": "local", "labels": {}}
    assert desired.resources[vol("volume/prod/web-copy")].spec["restoreFrom"] == "nightly"


def test_snapshot_of_a_template_volume_depends_on_it(tmp_path: Path):
    desired = desired_from(
        tmp_path,
        {
            "s.yaml": POSTGRES,
            "snap.yaml": """\
                snapshot:
                  name: pg0
                  namespace: prod
                  source: {volume: pgdata-postgres-0}
            """,
        },
    )
    snap = desired.resources[vol("snapshot/prod/pg0")]
    assert snap.depends_on == (vol("volume/prod/pgdata-postgres-0"),)


# ----------------------------------------------------------------------------- the spec


def test_volume_spec_is_normalised_json_with_merged_parameters(tmp_path: Path):
    desired = desired_from(
        tmp_path,
        {
            "runefile.yaml": "storage:\n  hostPathAllowlist: [/srv/rune]\n",
            "c.yaml": """\
                storageClass:
                  name: host
                  driver: local-host
                  parameters: {hostPath: /srv/rune/default, createIfMissing: "false"}
            """,
            "v.yaml": """\
                volume:
                  name: media
                  namespace: prod
                  storageClassName: host
                  size: 1.5Gi
                  accessMode: ReadOnlyMany
                  parameters: {hostPath: /srv/rune/media}
                  labels: {app: media}
            """,
        },
    )
    want = desired.resources[vol("volume/prod/media")]
    assert dict(want.spec) == {
        "storageClassName": "host",
        "driver": "local-host",
        "size": "1.5Gi",
        "sizeBytes": 1610612736,
        "accessMode": "ReadOnlyMany",
        "reclaimPolicy": "retain",
        "parameters": {"hostPath": "/srv/rune/media", "createIfMissing": "false"},
        "labels": {"app": "media"},
        "restoreFrom": None,
        "ownerService": None,
    }
    assert dict(want.parameters) == {"hostPath": "/srv/rune/media", "createIfMissing": "false"}


def test_expansion_is_pure_and_deterministic():
    specs = SpecSet(
        volumes=(
            Volume(
                name="a",
                namespace="prod",
                size=parse("1Gi"),
                access_mode=AccessMode.READ_WRITE_ONCE,
                labels={"x": "1"},
            ),
        )
    )
    first = desired_set(specs, StorageSettings())
    second = desired_set(specs, StorageSettings())
    assert first == second
    assert specs.volumes[0].labels == {"x": "1"}
