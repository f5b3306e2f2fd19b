"""``rune-sync validate`` through the real entry point, as a separate process."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO

VOLUME = "volume:\n  name: web\n  namespace: prod\n  size: 1Gi\n  accessMode: ReadWriteOnce\n"


def test_quickstart_is_clean(cli):
    result = cli("validate", str(REPO / "examples" / "quickstart"))
    assert result.code == 0, result.stderr
    assert result.stdout == ""
    assert "No problems found" in result.stderr


def test_errors_are_compiler_style_sorted_and_exit_1(cli, tree):
    root = tree(
        {
            "b.yaml": VOLUME.replace("ReadWriteOnce", "ReadWriteMany"),
            "a.yaml": "volume:\n  name: x\n  sise: 1Gi\n  accessMode: ReadWriteOnce\n",
        }
    )
    result = cli("validate", ".", cwd=root)
    assert result.code == 1
    assert result.stdout.splitlines() == [
        "a.yaml:1:1: error[RS102] volume/default/x: missing required field 'size'",
        "a.yaml:3:3: error[RS101] volume/default/x: unknown field 'sise' (did you mean 'size'?)",
        "b.yaml:5:3: error[RS204] volume/prod/web: accessMode ReadWriteMany is not supported by "
        "driver 'local' (supports ReadWriteOnce)",
    ]
    assert "3 errors, 0 warnings in 2 files." in result.stderr


def test_json_format_is_one_document(cli, tree):
    root = tree({"a.yaml": VOLUME.replace("1Gi", "1gi")})
    result = cli("validate", str(root), "--format", "json", cwd=root)
    assert result.code == 1
    items = json.loads(result.stdout)
    assert items == [
        {
            "file": "a.yaml",
            "line": 4,
            "column": 3,
            "severity": "error",
            "code": "RS106",
            "resource": "volume/prod/web",
            "message": items[0]["message"],
        }
    ]
    assert "1gi" in items[0]["message"]


def test_json_format_clean_is_an_empty_list(cli, tree):
    result = cli("validate", "--format", "json", str(tree({"a.yaml": VOLUME})))
    assert (result.code, json.loads(result.stdout)) == (0, [])


def test_warnings_do_not_fail(cli, tree):
    root = tree({"a.yaml": VOLUME.replace("1Gi", "10")})
    result = cli("validate", str(root), cwd=root)
    assert result.code == 0
    assert "warning[RS228]" in result.stdout


def test_options_may_follow_the_source(cli, tree):
    root = tree({"a.yaml": VOLUME})
    assert cli("validate", str(root), "--format", "json").code == 0
    assert cli("validate", "--format", "json", str(root)).code == 0


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "--bogus"),
        ("validate", "--format", "yaml"),
        ("nosuch",),
        ("validate", "--runefile"),
        ("explain",),
        ("validate", "a", "b"),
    ],
)
def test_usage_errors_exit_64(cli, args):
    result = cli(*args)
    assert result.code == 64, result
    assert "Traceback" not in result.stderr


def test_missing_source_is_an_error_not_a_traceback(cli, tmp_path):
    result = cli("validate", str(tmp_path / "nope"))
    assert result.code == 1
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_is_not_a_source(cli, tmp_path):
    f = tmp_path / "one.yaml"
    f.write_text(VOLUME)
    result = cli("validate", str(f))
    assert result.code == 1 and "is a file" in result.stderr


def test_every_kind_of_bad_input_in_one_run(cli, tree):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    root = tree(
        {
            "broken.yaml": "volume: [\n",
            "bomb.yaml": "\n".join(lines) + "\n",
            "dup.yaml": "volume:\n  name: a\n  name: b\n",
            "binary.yaml": b"\x00\x01\x02",
            "latin1.yaml": b"volume:\n  name: caf\xe9\n",
            "list.yaml": "- a\n- b\n",
            "scalar.yaml": "hello\n",
            "null.yaml": "volume:\n",
            "tabs.yaml": "volume:\n\tname: a\n",
            "good.yaml": VOLUME,
        }
    )
    with (root / "big.yaml").open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    os.symlink("..", root / "loop")
    result = cli("validate", ".", cwd=root)
    assert result.code == 1
    assert "Traceback" not in result.stdout + result.stderr
    by_file = {line.split(":")[0]: line for line in result.stdout.splitlines()}
    expected = {
        "big.yaml": "RS009",
        "binary.yaml": "RS004",
        "bomb.yaml": "RS003",
        "broken.yaml": "RS001",
        "dup.yaml": "RS002",
        "latin1.yaml": "RS004",
        "list.yaml": "RS006",
        "loop": "RS010",
        "null.yaml": "RS008",
        "scalar.yaml": "RS006",
        "tabs.yaml": "RS001",
    }
    assert {f: line.split("[")[1][:5] for f, line in by_file.items()} == expected
    assert len(result.stdout.splitlines()) == len(expected)


@pytest.mark.skipif(
    shutil.which("setpriv") is None and os.geteuid() == 0,
    reason="root reads any file; setpriv (util-linux) is needed to drop that",
)
def test_unreadable_file_and_folder(cli, tree):
    root = tree({"locked.yaml": VOLUME, "closed/inner.yaml": VOLUME, "ok.yaml": VOLUME})
    (root / "locked.yaml").chmod(0)
    (root / "closed").chmod(0)
    # As root, drop the capabilities that bypass file permissions for this one process.
    prefix = (
        ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--")
        if os.geteuid() == 0
        else ()
    )
    try:
        result = cli("validate", ".", cwd=root, prefix=prefix)
    finally:
        (root / "closed").chmod(0o755)
        (root / "locked.yaml").chmod(0o644)
    assert result.code == 1
    lines = result.stdout.splitlines()
    assert [line.split(": ")[0] + ":" + line.split("[")[1][:5] for line in lines] == [
        "closed:RS005",
        "locked.yaml:RS005",
    ]
    assert "Permission denied" in result.stdout


def test_runefile_problems_are_reported_with_their_line(cli, tree):
    root = tree(
        {
            "runefile.yaml": "storage:\n  localVolumeRoot: relative/path\n  bogus: 1\n",
            "a.yaml": VOLUME,
        }
    )
    result = cli("validate", ".", cwd=root)
    assert result.code == 1
    out = result.stdout
    assert "runefile.yaml:2:3: error[RS202]" in out
    assert "runefile.yaml:3:3: error[RS101]" in out


def test_toml_runefile_is_read(cli, tree):
    root = tree(
        {
            "runefile.toml": '[storage]\ndefaultStorageClass = "nope"\n[storage.local]\n'
            "preserveOnDelete = true\n[runed]\nanything = 1\n",
            "a.yaml": VOLUME,
        }
    )
    result = cli("validate", ".", cwd=root)
    assert result.code == 1
    assert "runefile.toml:2:1: error[RS301]" in result.stdout
    assert "RS221" in result.stdout  # and the volume without a class has no default


def test_broken_toml_runefile(cli, tree):
    root = tree({"runefile.toml": "[storage\n", "a.yaml": VOLUME})
    result = cli("validate", ".", cwd=root)
    assert result.code == 1 and "runefile.toml:1:" in result.stdout and "RS302" in result.stdout


def test_explicit_runefile_option(cli, tree, tmp_path):
    rf = tmp_path / "elsewhere.yaml"
    rf.write_text('storage:\n  defaultStorageClass: ""\n')
    root = tree({"a.yaml": VOLUME})
    result = cli("validate", str(root), "--runefile", str(rf))
    assert result.code == 1 and "RS221" in result.stdout


def test_secret_values_never_appear_in_diagnostics(cli, tree):
    canary = "CANARY-d41d8cd98f00"
    root = tree(
        {
            "s.yaml": f"secret:\n  name: s\n  data:\n    port: 5432\n    token: {canary}\n"
            f"  type: {canary}\n"
        }
    )
    for fmt in ("text", "json"):
        result = cli("validate", ".", "--format", fmt, cwd=root)
        assert result.code == 1
        assert canary not in result.stdout + result.stderr
        assert "5432" not in result.stdout


def test_internal_errors_are_one_line_with_a_debug_log(cli, tree, tmp_path):
    # A source tree whose loader is made to crash from outside: PYTHONPATH shadows nothing,
    # so instead we point the package at a schema directory that cannot be parsed. The
    # shipped schemas are part of the package; corrupting a copy of the package is the
    # only way to reach the "this is a bug" path from the outside.
    pkg = tmp_path / "pkg"
    shutil.copytree(REPO / "rune_sync", pkg / "rune_sync", symlinks=False)
    (pkg / "rune_sync" / "schemas" / "volume.schema.json").write_text("{not json")
    root = tree({"a.yaml": VOLUME})
    result = cli("validate", str(root), env={"PYTHONPATH": str(pkg)}, cwd=tmp_path)
    assert result.code == 1
    assert "internal error" in result.stderr and "this is a bug" in result.stderr
    log = Path(result.stderr.rsplit(" ", 1)[-1].strip())
    assert "Traceback" in log.read_text()
    assert "Traceback" not in result.stderr
    log.unlink()


def test_driver_parameter_declarations_come_from_the_installed_drivers(cli, tree):
    root = tree(
        {
            "c.yaml": "storageClasses:\n"
            "  - {name: h, driver: local-host, parameters: {hostpath: /srv/rune/x}}\n"
            "  - {name: do, driver: do-volume, parameters: {fsType: ext4}}\n",
        }
    )
    result = cli("validate", ".", cwd=root)
    assert result.code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        "c.yaml:2:48: error[RS226] storageclass/h: driver 'local-host' "
        "has no parameter 'hostpath' (did you mean 'hostPath'?)"
    )
    assert lines[1] == (
        "c.yaml:3:35: error[RS226] storageclass/do: driver 'do-volume' needs parameter 'region'"
    )


def test_an_api_token_written_out_is_a_warning_that_never_shows_it(cli, tree):
    token = "dop_v1_f00dfeedcafe"
    root = tree(
        {
            "do.yaml": "storageClass:\n  name: do\n  driver: do-volume\n"
            f"  parameters:\n    region: nyc3\n    apiToken: {token}\n"
        }
    )
    result = cli("validate", ".", cwd=root)
    assert result.code == 0, result.stdout + result.stderr
    assert result.stdout.startswith(
        "do.yaml:6:5: warning[RS233] storageclass/do: parameter 'apiToken'"
    )
    assert "secret:<name>.<namespace>.rune/<key>" in result.stdout
    assert token not in result.stdout + result.stderr
