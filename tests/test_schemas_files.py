"""The JSON Schemas in ``schemas/``: well-formed, documented, and right about the seed examples.

Each schema must be valid Draft 2020-12, every property must carry a description (editors show
it), good examples from the seeds and DESIGN §2 must pass, and each bad example must fail with
the expected keyword and, where the validator maps one, the expected ``x-rune-code`` on the
failing subschema or one of its ancestors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
BASE = "https://rune-sync.dev/schemas/"

EXPECTED_FILES = {
    "common.schema.json",
    "state-export.schema.json",
    "storageclass.schema.json",
    "volume.schema.json",
    "snapshot.schema.json",
    "service.schema.json",
    "secret.schema.json",
    "runefile.schema.json",
    "resources.schema.json",
    "plan.schema.json",
    "apply-event.schema.json",
    "validate.schema.json",
    "state-list.schema.json",
    "state-record.schema.json",
    "state-lock.schema.json",
    "drivers.schema.json",
}

COMMON_DEFS = {
    "dns1123Label",
    "quantity",
    "parameterValue",
    "parameters",
    "labels",
    "accessMode",
    "reclaimPolicy",
    "absolutePath",
    "topologySelector",
}


def _load_all() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(SCHEMAS_DIR.glob("*.schema.json"))
    }


SCHEMAS = _load_all()
REGISTRY: Registry = Registry().with_resources(
    (schema["$id"], Resource.from_contents(schema)) for schema in SCHEMAS.values()
)


def validator(file: str) -> Draft202012Validator:
    return Draft202012Validator(SCHEMAS[file], registry=REGISTRY)


# --------------------------------------------------------------------------- the files


def test_every_expected_file_is_present() -> None:
    assert set(SCHEMAS) == EXPECTED_FILES


@pytest.mark.parametrize("file", sorted(EXPECTED_FILES))
def test_schema_is_valid_draft_2020_12_with_id_title_and_description(file: str) -> None:
    schema = SCHEMAS[file]
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == BASE + file
    assert schema.get("title")
    assert schema.get("description")


def test_common_holds_the_shared_defs_with_their_codes() -> None:
    defs = SCHEMAS["common.schema.json"]["$defs"]
    assert set(defs) == COMMON_DEFS
    assert defs["dns1123Label"]["x-rune-code"] == "RS105"
    assert defs["quantity"]["x-rune-code"] == "RS106"
    assert defs["parameterValue"]["then"]["x-rune-code"] == "RS107"
    assert defs["absolutePath"]["x-rune-code"] == "RS202"
    for name in ("dns1123Label", "quantity", "absolutePath"):
        assert defs[name]["x-rune-hint"]
    assert defs["parameterValue"]["then"]["x-rune-hint"]


def _walk(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from _walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{where}/{i}")


_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "contains",
    "unevaluatedProperties",
    "unevaluatedItems",
)


def _subschemas(schema: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object in ``schema``, walked by keyword (so a property named like a
    keyword, e.g. a secret's ``type``, is not mistaken for one)."""
    if not isinstance(schema, dict):
        return
    yield where, schema
    for key in _SCHEMA_MAPS:
        for name, sub in schema.get(key, {}).items():
            yield from _subschemas(sub, f"{where}/{key}/{name}")
    for key in _SCHEMA_LISTS:
        for i, sub in enumerate(schema.get(key, ())):
            yield from _subschemas(sub, f"{where}/{key}/{i}")
    for key in _SCHEMA_ONE:
        if key in schema:
            yield from _subschemas(schema[key], f"{where}/{key}")


def _undescribed_properties(schema: dict[str, Any], file: str) -> list[str]:
    missing = []
    for where, node in _subschemas(schema, file + "#"):
        for name, sub in node.get("properties", {}).items():
            if not isinstance(sub, dict) or not sub.get("description"):
                missing.append(f"{where}/properties/{name}")
    return missing


def test_the_walk_sees_nested_properties() -> None:
    places = [w for w, _ in _subschemas(SCHEMAS["service.schema.json"], "s")]
    assert "s/properties/volumes/items/properties/claimTemplate/properties/size" in places
    assert "s/properties/type" in [w for w, _ in _subschemas(SCHEMAS["secret.schema.json"], "s")]


def test_every_property_in_every_schema_has_a_description() -> None:
    missing = [m for file, s in SCHEMAS.items() for m in _undescribed_properties(s, file)]
    assert missing == []


def test_every_common_def_has_a_description() -> None:
    defs = SCHEMAS["common.schema.json"]["$defs"]
    assert [name for name, d in defs.items() if not d.get("description")] == []


@pytest.mark.parametrize("file", sorted(EXPECTED_FILES - {"common.schema.json"}))
def test_refs_are_relative_and_resolve(file: str) -> None:
    schema = SCHEMAS[file]
    resolver = REGISTRY.resolver(base_uri=schema["$id"])
    for _where, node in _walk(schema, file):
        ref = node.get("$ref")
        if isinstance(ref, str):
            assert not ref.startswith("http"), ref
            resolver.lookup(ref)  # raises if it does not resolve


# --------------------------------------------------------------------------- examples

DO_CLASS = {
    "name": "do-nyc3",
    "driver": "do-volume",
    "parameters": {
        "region": "nyc3",
        "fsType": "ext4",
        "apiToken": "secret:do-api-token.shared.rune/token",
    },
    "reclaimPolicy": "retain",
}

SEED_CLASS = {
    "name": "do-nyc3",
    "driver": "do-volume",
    "parameters": {"region": "nyc3", "fsType": "ext4", "apiTokenSecretRef": "do/api-token"},
    "reclaimPolicy": "retain",
    "default": False,
    "allowedTopologies": [
        {"matchLabels": {"rune.io/region": "nyc3"}},
        {
            "matchExpressions": [
                {"key": "rune.io/zone", "operator": "In", "values": ["nyc3a", "nyc3b"]}
            ]
        },
    ],
    "labels": {"tier": "cloud"},
}

WEB_DATA = {
    "name": "web-data",
    "namespace": "prod",
    "storageClassName": "local",
    "size": "10Gi",
    "accessMode": "ReadWriteOnce",
}

SEED_VOLUME = {
    "name": "pgdata-postgres-0",
    "namespace": "prod",
    "storageClassName": "local",
    "size": "10Gi",
    "accessMode": "ReadWriteOnce",
    "reclaimPolicy": "retain",
    "parameters": {},
    "labels": {"app": "postgres"},
}

SNAPSHOT = {"name": "web-data-2025-11-15", "namespace": "prod", "source": {"volume": "web-data"}}

POSTGRES = {
    "name": "postgres",
    "namespace": "prod",
    "scale": 3,
    "volumes": [
        {
            "name": "pgdata",
            "mountPath": "/var/lib/postgresql/data",
            "claimTemplate": {
                "storageClassName": "local",
                "size": "10Gi",
                "accessMode": "ReadWriteOnce",
            },
        }
    ],
}

WEB_SERVICE = {
    "name": "web",
    "scale": 1,
    "image": "nginx:1.27",
    "ports": [{"name": "http", "port": 80}],
    "env": {"MODE": "prod"},
    "volumes": [
        {
            "name": "data",
            "mountPath": "/var/lib/web",
            "readOnly": False,
            "subPath": "",
            "claim": {"name": "web-data"},
        },
        {
            "name": "shared",
            "mountPath": "/srv/shared",
            "subPath": "a/b",
            "claim": {"name": "shared.common.rune"},
        },
    ],
    "secretMounts": [
        {"name": "db-creds", "mountPath": "/run/secrets/db", "secretName": "db-creds"}
    ],
    "configMounts": [{"name": "app-config", "mountPath": "/etc/app", "configName": "app-config"}],
}

PROCESS_SERVICE = {
    "name": "worker",
    "process": {"command": "/usr/bin/worker", "args": ["--fast"]},
    "volumes": [{"name": "scratch", "mountPath": "/srv/scratch", "claim": {"name": "scratch"}}],
}

SECRET_MAP = {"name": "do-api-token", "namespace": "shared", "data": {"token": "dop_v1_x"}}
SECRET_LIST = {
    "name": "db-creds",
    "type": "static",
    "data": [{"key": "username", "value": "app"}, {"key": "pass.word", "value": "s3cret"}],
}
SECRET_VALUE = {"name": "single", "value": "abc"}
SECRET_B64 = {"name": "binary", "valueBase64": "AAEC"}

GOOD: list[tuple[str, str, Any]] = [
    ("do-nyc3 class", "storageclass.schema.json", DO_CLASS),
    ("seed class with topologies", "storageclass.schema.json", SEED_CLASS),
    ("minimal class", "storageclass.schema.json", {"name": "fast", "driver": "acme-nvme"}),
    ("web-data volume", "volume.schema.json", WEB_DATA),
    ("seed volume", "volume.schema.json", SEED_VOLUME),
    (
        "volume restored from a snapshot",
        "volume.schema.json",
        {
            "name": "web-data-restored",
            "size": 1073741824,
            "accessMode": "ReadWriteOnce",
            "restoreFrom": {"snapshot": "web-data-2025-11-15"},
        },
    ),
    (
        "volume with decimal and fractional sizes",
        "volume.schema.json",
        {"name": "v", "size": "1.5Gi", "accessMode": "ReadOnlyMany"},
    ),
    (
        "volume with 500M",
        "volume.schema.json",
        {"name": "v", "size": "500M", "accessMode": "ReadWriteMany"},
    ),
    (
        "local-host volume",
        "volume.schema.json",
        {
            "name": "media",
            "storageClassName": "local-host",
            "size": "1Gi",
            "accessMode": "ReadOnlyMany",
            "parameters": {"hostPath": "/srv/rune/media", "createIfMissing": "true"},
        },
    ),
    (
        "shorthand secret reference",
        "volume.schema.json",
        {
            "name": "v",
            "size": "1Gi",
            "accessMode": "ReadWriteOnce",
            "parameters": {"apiToken": "secret:do-api-token/token"},
        },
    ),
    ("snapshot", "snapshot.schema.json", SNAPSHOT),
    (
        "seed snapshot",
        "snapshot.schema.json",
        {
            "name": "pgdata-2025-11-15",
            "namespace": "prod",
            "source": {"volume": "pgdata-postgres-0"},
            "labels": {"app": "postgres"},
        },
    ),
    ("postgres service with claimTemplate", "service.schema.json", POSTGRES),
    ("service with claims, foreign fields and mounts", "service.schema.json", WEB_SERVICE),
    ("process service", "service.schema.json", PROCESS_SERVICE),
    ("secret with data mapping", "secret.schema.json", SECRET_MAP),
    ("secret with data list", "secret.schema.json", SECRET_LIST),
    ("secret with value", "secret.schema.json", SECRET_VALUE),
    ("secret with valueBase64", "secret.schema.json", SECRET_B64),
    ("resource document: class", "resources.schema.json", {"storageClass": DO_CLASS}),
    (
        "resource document: lists",
        "resources.schema.json",
        {
            "volumes": [WEB_DATA, SEED_VOLUME],
            "snapshots": [SNAPSHOT],
            "services": [POSTGRES],
            "secrets": [SECRET_MAP, SECRET_LIST],
            "storageClasses": [SEED_CLASS],
        },
    ),
    (
        "runefile with storage and other sections",
        "runefile.schema.json",
        {
            "runed": {"listen": ":7863"},
            "storage": {
                "defaultStorageClass": "local",
                "localVolumeRoot": "/var/lib/rune/volumes",
                "snapshotRoot": "/var/lib/rune/volumes/.snapshots",
                "hostPathAllowlist": ["/srv/rune", "/mnt/data/"],
                "allowCreateMissing": True,
                "preserveOnDelete": False,
                "local": {"preserveOnDelete": True},
            },
            "sync": {
                "state": "postgresql://sync@db/rune",
                "stateName": "prod",
                "parallelism": 4,
                "lockTimeout": "60s",
                "secretsDir": "/etc/rune-sync/secrets",
            },
        },
    ),
    (
        "runefile disabling the default class",
        "runefile.schema.json",
        {"storage": {"defaultStorageClass": ""}},
    ),
    ("empty runefile", "runefile.schema.json", {}),
]


@pytest.mark.parametrize(
    ("file", "instance"), [(f, i) for _, f, i in GOOD], ids=[g[0] for g in GOOD]
)
def test_good_example_is_valid(file: str, instance: Any) -> None:
    errors = [e.message for e in validator(file).iter_errors(instance)]
    assert errors == []


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(base)
    out.update(changes)
    return out


def _volume_mount(**changes: Any) -> dict[str, Any]:
    mount = {"name": "data", "mountPath": "/var/lib/web", "claim": {"name": "web-data"}}
    mount.update(changes)
    return {"name": "web", "volumes": [mount]}


# (id, schema file, instance, failing keyword, expected x-rune-code or None, only one error?)
BAD: list[tuple[str, str, Any, str, str | None, bool]] = [
    (
        "unknown field sise beside size",
        "volume.schema.json",
        _with(WEB_DATA, sise="10Gi"),
        "additionalProperties",
        None,
        True,
    ),
    (
        "size misspelt sise",
        "volume.schema.json",
        {k: v for k, v in _with(WEB_DATA, sise="10Gi").items() if k != "size"},
        "additionalProperties",
        None,
        False,
    ),
    (
        "accessMode lowercase",
        "volume.schema.json",
        _with(WEB_DATA, accessMode="readwriteonce"),
        "enum",
        None,
        True,
    ),
    ("size 10gi", "volume.schema.json", _with(WEB_DATA, size="10gi"), "pattern", "RS106", True),
    ("size -1", "volume.schema.json", _with(WEB_DATA, size=-1), "minimum", "RS106", True),
    (
        "size negative string",
        "volume.schema.json",
        _with(WEB_DATA, size="-1Gi"),
        "pattern",
        "RS106",
        True,
    ),
    ("size boolean", "volume.schema.json", _with(WEB_DATA, size=True), "type", "RS106", True),
    (
        "reclaimPolicy Retain",
        "volume.schema.json",
        _with(WEB_DATA, reclaimPolicy="Retain"),
        "enum",
        None,
        True,
    ),
    (
        "name Web_Data",
        "volume.schema.json",
        _with(WEB_DATA, name="Web_Data"),
        "pattern",
        "RS105",
        True,
    ),
    (
        "name too long",
        "volume.schema.json",
        _with(WEB_DATA, name="a" * 64),
        "maxLength",
        "RS105",
        True,
    ),
    (
        "namespace with dot",
        "volume.schema.json",
        _with(WEB_DATA, namespace="a.b"),
        "pattern",
        "RS105",
        True,
    ),
    (
        "parameter secret:bad ref",
        "volume.schema.json",
        _with(WEB_DATA, parameters={"apiToken": "secret:bad ref"}),
        "pattern",
        "RS107",
        True,
    ),
    (
        "parameter secret without key",
        "storageclass.schema.json",
        _with(DO_CLASS, parameters={"apiToken": "secret:do-api-token"}),
        "pattern",
        "RS107",
        True,
    ),
    (
        "volume missing size",
        "volume.schema.json",
        {k: v for k, v in WEB_DATA.items() if k != "size"},
        "required",
        None,
        True,
    ),
    (
        "volume missing accessMode",
        "volume.schema.json",
        {k: v for k, v in WEB_DATA.items() if k != "accessMode"},
        "required",
        None,
        True,
    ),
    (
        "restoreFrom unknown field",
        "volume.schema.json",
        _with(WEB_DATA, restoreFrom={"snapshot": "s", "namespace": "x"}),
        "additionalProperties",
        None,
        True,
    ),
    (
        "class parameters iops number",
        "storageclass.schema.json",
        _with(DO_CLASS, parameters={"iops": 3000}),
        "type",
        None,
        True,
    ),
    (
        "class reclaimPolicy Retain",
        "storageclass.schema.json",
        _with(DO_CLASS, reclaimPolicy="Retain"),
        "enum",
        None,
        True,
    ),
    ("class without driver", "storageclass.schema.json", {"name": "x"}, "required", None, True),
    (
        "class empty driver",
        "storageclass.schema.json",
        {"name": "x", "driver": ""},
        "minLength",
        None,
        True,
    ),
    (
        "empty topology selector",
        "storageclass.schema.json",
        _with(DO_CLASS, allowedTopologies=[{}]),
        "minProperties",
        None,
        True,
    ),
    (
        "topology operator lowercase",
        "storageclass.schema.json",
        _with(DO_CLASS, allowedTopologies=[{"matchExpressions": [{"key": "k", "operator": "in"}]}]),
        "enum",
        None,
        True,
    ),
    (
        "labels number value",
        "storageclass.schema.json",
        _with(DO_CLASS, labels={"tier": 1}),
        "type",
        None,
        True,
    ),
    ("snapshot without source", "snapshot.schema.json", {"name": "s"}, "required", None, True),
    (
        "snapshot source unknown field",
        "snapshot.schema.json",
        _with(SNAPSHOT, source={"volume": "v", "snapshot": "x"}),
        "additionalProperties",
        None,
        True,
    ),
    (
        "service bad name",
        "service.schema.json",
        _with(POSTGRES, name="Postgres"),
        "pattern",
        "RS105",
        True,
    ),
    ("service scale -1", "service.schema.json", _with(POSTGRES, scale=-1), "minimum", None, True),
    (
        "service process not a mapping",
        "service.schema.json",
        _with(POSTGRES, process="yes"),
        "type",
        None,
        True,
    ),
    (
        "mountPath relative",
        "service.schema.json",
        _volume_mount(mountPath="var/lib/web"),
        "pattern",
        "RS202",
        True,
    ),
    (
        "subPath absolute",
        "service.schema.json",
        _volume_mount(subPath="/abs"),
        "pattern",
        "RS202",
        True,
    ),
    (
        "subPath with ..",
        "service.schema.json",
        _volume_mount(subPath="a/../../b"),
        "not",
        "RS202",
        True,
    ),
    (
        "claim name uppercase",
        "service.schema.json",
        _volume_mount(claim={"name": "Web-Data"}),
        "pattern",
        "RS105",
        True,
    ),
    (
        "claim name half qualified",
        "service.schema.json",
        _volume_mount(claim={"name": "web-data.prod"}),
        "pattern",
        "RS105",
        True,
    ),
    (
        "unknown mount field",
        "service.schema.json",
        _volume_mount(readonly=True),
        "additionalProperties",
        None,
        True,
    ),
    (
        "claimTemplate without accessMode",
        "service.schema.json",
        {
            "name": "db",
            "volumes": [{"name": "d", "mountPath": "/d", "claimTemplate": {"size": "1Gi"}}],
        },
        "required",
        None,
        True,
    ),
    (
        "claimTemplate size 10gi",
        "service.schema.json",
        {
            "name": "db",
            "volumes": [
                {
                    "name": "d",
                    "mountPath": "/d",
                    "claimTemplate": {"size": "10gi", "accessMode": "ReadWriteOnce"},
                }
            ],
        },
        "pattern",
        "RS106",
        True,
    ),
    (
        "secretMount with readOnly",
        "service.schema.json",
        _with(
            WEB_SERVICE,
            secretMounts=[{"name": "s", "mountPath": "/s", "secretName": "s", "readOnly": True}],
        ),
        "additionalProperties",
        None,
        True,
    ),
    (
        "configMount without configName",
        "service.schema.json",
        _with(WEB_SERVICE, configMounts=[{"name": "c", "mountPath": "/c"}]),
        "required",
        None,
        True,
    ),
    (
        "secret with value and data",
        "secret.schema.json",
        {"name": "s", "value": "a", "data": {"k": "v"}},
        "not",
        None,
        True,
    ),
    (
        "secret with value and valueBase64",
        "secret.schema.json",
        {"name": "s", "value": "a", "valueBase64": "AA=="},
        "not",
        None,
        True,
    ),
    (
        "secret type lowercase-only",
        "secret.schema.json",
        {"name": "s", "type": "Static", "value": "a"},
        "enum",
        None,
        True,
    ),
    (
        "secret data value number",
        "secret.schema.json",
        {"name": "s", "data": {"port": 5432}},
        "type",
        None,
        True,
    ),
    (
        "secret data bad key",
        "secret.schema.json",
        {"name": "s", "data": {"a key": "v"}},
        "pattern",
        None,
        True,
    ),
    (
        "secret data list item without value",
        "secret.schema.json",
        {"name": "s", "data": [{"key": "k"}]},
        "required",
        None,
        True,
    ),
    (
        "secret unknown field",
        "secret.schema.json",
        {"name": "s", "value": "a", "vaule": "b"},
        "additionalProperties",
        None,
        True,
    ),
    (
        "resource document with unknown kind",
        "resources.schema.json",
        {"volumez": [WEB_DATA]},
        "additionalProperties",
        None,
        True,
    ),
    ("empty resource document", "resources.schema.json", {}, "minProperties", None, True),
    (
        "resource document with a bad volume",
        "resources.schema.json",
        {"volumes": [_with(WEB_DATA, size="10gi")]},
        "pattern",
        "RS106",
        True,
    ),
    (
        "runefile unknown storage key",
        "runefile.schema.json",
        {"storage": {"defaultClass": "local"}},
        "additionalProperties",
        None,
        True,
    ),
    (
        "runefile relative localVolumeRoot",
        "runefile.schema.json",
        {"storage": {"localVolumeRoot": "var/lib/rune"}},
        "pattern",
        "RS202",
        True,
    ),
    (
        "runefile relative allowlist entry",
        "runefile.schema.json",
        {"storage": {"hostPathAllowlist": ["srv/rune"]}},
        "pattern",
        "RS202",
        True,
    ),
    (
        "runefile bad default class",
        "runefile.schema.json",
        {"storage": {"defaultStorageClass": "Local"}},
        "pattern",
        "RS105",
        True,
    ),
    (
        "runefile allowCreateMissing string",
        "runefile.schema.json",
        {"storage": {"allowCreateMissing": "true"}},
        "type",
        None,
        True,
    ),
    (
        "runefile unknown local key",
        "runefile.schema.json",
        {"storage": {"local": {"root": "/x"}}},
        "additionalProperties",
        None,
        True,
    ),
    (
        "runefile lockTimeout without unit",
        "runefile.schema.json",
        {"sync": {"lockTimeout": "10"}},
        "pattern",
        None,
        True,
    ),
    (
        "runefile parallelism 0",
        "runefile.schema.json",
        {"sync": {"parallelism": 0}},
        "minimum",
        None,
        True,
    ),
    (
        "runefile unknown sync key",
        "runefile.schema.json",
        {"sync": {"stateFile": "x"}},
        "additionalProperties",
        None,
        True,
    ),
]


def _flatten(errors: list[ValidationError]) -> Iterator[ValidationError]:
    for error in errors:
        yield error
        yield from _flatten(list(error.context or ()))


def _schemas_along(root: dict[str, Any], error: ValidationError) -> list[dict[str, Any]]:
    """The subschemas from ``root`` down to the failing keyword, following ``$ref``.

    jsonschema leaves ``$ref`` out of ``schema_path``; a step the current schema lacks is
    taken through its ``$ref`` first.
    """
    resolver = REGISTRY.resolver(base_uri=root["$id"])
    node: Any = root
    seen: list[dict[str, Any]] = [root]
    for part in error.absolute_schema_path:
        while isinstance(node, dict) and part not in node and isinstance(node.get("$ref"), str):
            resolved = resolver.lookup(node["$ref"])
            node, resolver = resolved.contents, resolved.resolver
            seen.append(node)
        step_ok = isinstance(node, dict) and part in node
        step_ok = step_ok or (isinstance(node, list) and isinstance(part, int))
        if step_ok:
            node = node[part]
        else:
            raise AssertionError(f"cannot follow {list(error.absolute_schema_path)} at {part!r}")
        if isinstance(node, dict):
            seen.append(node)
    return seen


@pytest.mark.parametrize(
    ("file", "instance", "keyword", "code", "only"),
    [b[1:] for b in BAD],
    ids=[b[0] for b in BAD],
)
def test_bad_example_fails_with_keyword_and_code(
    file: str, instance: Any, keyword: str, code: str | None, only: bool
) -> None:
    root = SCHEMAS[file]
    errors = list(validator(file).iter_errors(instance))
    assert errors, "expected the example to be invalid"
    if only:
        assert len(errors) == 1, [e.message for e in errors]
    matching = [e for e in _flatten(errors) if e.validator == keyword]
    assert matching, [(e.validator, e.message) for e in _flatten(errors)]
    if code is not None:
        for error in matching:
            codes = [s.get("x-rune-code") for s in _schemas_along(root, error)]
            assert code in codes, (error.message, codes)
            # The nearest code along the path is the one a diagnostic would use.
            assert [c for c in codes if c][-1] == code


def test_failing_subschema_itself_carries_the_code_for_leaf_failures() -> None:
    """The validator can read the code straight off ``error.schema`` for these."""
    cases = [
        ("volume.schema.json", _with(WEB_DATA, name="Web_Data"), "RS105"),
        ("volume.schema.json", _with(WEB_DATA, size="10gi"), "RS106"),
        ("volume.schema.json", _with(WEB_DATA, size=-1), "RS106"),
        ("volume.schema.json", _with(WEB_DATA, parameters={"t": "secret:bad ref"}), "RS107"),
        ("service.schema.json", _volume_mount(mountPath="rel"), "RS202"),
        ("service.schema.json", _volume_mount(subPath="../x"), "RS202"),
    ]
    for file, instance, code in cases:
        (error,) = validator(file).iter_errors(instance)
        assert error.schema.get("x-rune-code") == code
        assert error.schema.get("x-rune-hint")


def test_parameter_type_error_carries_no_secret_code() -> None:
    (error,) = validator("storageclass.schema.json").iter_errors(
        _with(DO_CLASS, parameters={"iops": 3000})
    )
    assert list(error.absolute_path) == ["parameters", "iops"]
    codes = [
        s.get("x-rune-code") for s in _schemas_along(SCHEMAS["storageclass.schema.json"], error)
    ]
    assert "RS107" not in codes


def test_values_without_the_secret_prefix_pass_verbatim() -> None:
    params = {"a": "Secret:not-a-ref", "b": "secretive value", "c": "", "d": "x secret:y"}
    assert (
        list(validator("volume.schema.json").iter_errors(_with(WEB_DATA, parameters=params))) == []
    )


def test_topology_values_rule_is_left_to_the_rules() -> None:
    sel = [
        {
            "matchExpressions": [
                {"key": "k", "operator": "In"},
                {"key": "k", "operator": "Exists", "values": ["x"]},
            ]
        }
    ]
    assert (
        list(
            validator("storageclass.schema.json").iter_errors(
                _with(DO_CLASS, allowedTopologies=sel)
            )
        )
        == []
    )


def test_claim_and_claim_template_exclusivity_is_left_to_the_rules() -> None:
    both = _volume_mount(claimTemplate={"size": "1Gi", "accessMode": "ReadWriteOnce"})
    neither = {"name": "web", "volumes": [{"name": "d", "mountPath": "/d"}]}
    assert list(validator("service.schema.json").iter_errors(both)) == []
    assert list(validator("service.schema.json").iter_errors(neither)) == []


def test_secret_exclusivity_error_shows_the_key_not_the_value():
    """Diagnostics quote the failing instance; for a secret it must not be a value."""
    errors = list(
        validator("secret.schema.json").iter_errors(
            {"name": "s", "value": "hunter2", "data": {"k": "hunter3"}}
        )
    )
    assert [(e.validator, e.instance) for e in errors] == [("not", "value")]
    assert errors[0].schema.get("x-rune-hint")
    assert "hunter" not in repr(errors[0].instance)


def test_common_refs_use_the_file_form_so_bundling_can_inline_them():
    """Every $ref inside common.schema.json names the file, like the kind schemas do."""
    refs = [
        node["$ref"]
        for _, node in _walk(SCHEMAS["common.schema.json"], "common")
        if isinstance(node.get("$ref"), str)
    ]
    assert refs
    assert all(ref.startswith("common.schema.json#/$defs/") for ref in refs)
