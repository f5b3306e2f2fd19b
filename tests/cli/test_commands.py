"""``schema``, ``explain`` and ``drivers``."""

from __future__ import annotations

import json

from jsonschema import Draft202012Validator

from rune_sync.spec import codes


def test_schema_prints_one_bundled_standalone_schema(cli):
    result = cli("schema", "volume")
    assert result.code == 0
    doc = json.loads(result.stdout)
    Draft202012Validator.check_schema(doc)
    assert "common.schema.json" not in result.stdout  # references inlined for standalone use
    validator = Draft202012Validator(doc)
    assert validator.is_valid({"name": "a", "size": "1Gi", "accessMode": "ReadWriteOnce"})
    assert not validator.is_valid({"name": "a", "size": "1Gi", "accessMode": "RWO"})


def test_schema_kind_spellings(cli):
    assert cli("schema", "storageClass").code == 0
    assert cli("schema", "storageclasses").code == 0
    result = cli("schema", "pizza")
    assert result.code == 64 and "unknown kind" in result.stderr


def test_schema_out_writes_every_file(cli, tmp_path):
    out = tmp_path / "s"
    result = cli("schema", "--out", str(out))
    assert result.code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        f"{n}.schema.json"
        for n in (
            "common",
            "storageclass",
            "volume",
            "snapshot",
            "service",
            "secret",
            "runefile",
            "resources",
        )
    )
    for p in out.iterdir():
        Draft202012Validator.check_schema(json.loads(p.read_text()))


def test_explain_every_code(cli):
    for code in ("RS204", "rs101", " RS001 "):
        result = cli("explain", code)
        assert result.code == 0
        assert result.stdout.startswith(code.strip().upper() + ":")
    assert all(c.explanation and c.title for c in codes.CODES.values())


def test_explain_unknown_code_is_a_usage_error(cli):
    result = cli("explain", "RS999")
    assert result.code == 64 and "unknown code" in result.stderr


def test_drivers_lists_builtins_with_capabilities(cli):
    result = cli("drivers", "--format", "json")
    assert result.code == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["local"]["capabilities"]["accessModes"] == ["ReadWriteOnce"]
    assert rows["local"]["capabilities"]["snapshots"] is True
    assert rows["local-host"]["capabilities"]["accessModes"] == ["ReadOnlyMany", "ReadWriteOnce"]
    assert rows["local-host"]["capabilities"]["snapshots"] is False
    assert rows["do-volume"]["implemented"] is True
    assert rows["do-volume"]["capabilities"]["blockDevice"] is True
    text = cli("drivers")
    assert text.code == 0 and "local-host" in text.stdout


def test_version(cli):
    result = cli("--version")
    assert result.code == 0 and "rune-sync" in result.stdout


def test_schema_of_a_whole_document_is_standalone(cli):
    doc = json.loads(cli("schema", "resources").stdout)
    assert "$ref" not in json.dumps(doc)
    validator = Draft202012Validator(doc)
    good = {"volumes": [{"name": "a", "size": "1Gi", "accessMode": "ReadWriteOnce"}]}
    assert validator.is_valid(good)
    assert not validator.is_valid({"volume": {"name": "a", "size": "1gi", "accessMode": "x"}})
    assert not validator.is_valid({"persistentVolume": {}})
