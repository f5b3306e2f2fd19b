"""``rune-sync plan``: exit codes, output formats, saved plans, state handling, real drift.

The command runs in-process through the real entry point :func:`rune_sync.cli.main`
(what the console script calls), on real source directories and real SQLite states; a
few checks run the console entry point as a subprocess. Drift comes from the real
``local`` driver on a temporary ``localVolumeRoot``.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from rune_sync.cli import main
from rune_sync.cli.render.plan_markdown import LIMIT
from rune_sync.drivers.base import OpContext, ProvisionRequest
from rune_sync.drivers.local import LocalDriver
from rune_sync.plan import planfile
from rune_sync.plan.model import Plan
from rune_sync.spec.model import AccessMode, Address, StorageSettings
from rune_sync.spec.quantity import parse
from tests.plan import desired_from, record_for, records_for, write_source, write_state

SUMMARY = re.compile(
    r"^Plan: \d+ to create, \d+ to update, \d+ to replace, \d+ to destroy, \d+ to forget\.$"
)


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def plan_cli(capsys, monkeypatch, tmp_path) -> Callable[..., Run]:
    """``plan_cli(*args, cwd=…, env=…)`` runs ``rune-sync plan ARGS`` in-process."""
    monkeypatch.delenv("RUNE_SYNC_STATE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    # Internal-error reports (debug logs) land in this test's directory, not in /tmp.
    logs = tmp_path / "debug-logs"
    logs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(logs))

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Run:
        monkeypatch.chdir(cwd or tmp_path)
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            main(["plan", *args])
        out, err = capsys.readouterr()
        for key in env or {}:
            monkeypatch.delenv(key)
        code = exited.value.code
        return Run(code if isinstance(code, int) else 1, out, err)

    return run


VOLUMES = {
    "runefile.yaml": "storage:\n  hostPathAllowlist: [/srv/rune]\n",
    "v.yaml": """\
        volumes:
          - {name: web, namespace: prod, size: 1Gi, accessMode: ReadWriteOnce}
          - {name: db, namespace: prod, size: 2Gi, accessMode: ReadWriteOnce}
          - {name: logs, namespace: prod, size: 1Gi, accessMode: ReadWriteOnce}
    """,
}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_source(tmp_path / "src", VOLUMES)


def state_matching(
    tmp_path: Path,
    files=VOLUMES,
    name: str = "state.db",
    labels: dict[str, dict[str, str]] | None = None,
) -> Path:
    """A real state whose records match ``files`` (as after an apply); ``labels`` maps an
    address to the labels recorded for it instead."""
    desired = desired_from(tmp_path / f"old-{name}", files)
    records = records_for(desired)
    for text, recorded in (labels or {}).items():
        want = desired.resources[Address.parse(text)]
        records[want.address] = record_for(want, spec={**want.spec, "labels": recorded})
    return write_state(tmp_path / name, records.values())


# ----------------------------------------------------------------------------- exit codes


def test_plan_with_changes_exits_0_without_detailed_exitcode(plan_cli, source, tmp_path):
    result = plan_cli(str(source), "--state", str(tmp_path / "s.db"), "--refresh=false")
    assert result.code == 0
    assert "+ volume/prod/web" in result.stdout


def test_detailed_exitcode_0_when_nothing_changes(plan_cli, source, tmp_path):
    state = state_matching(tmp_path)
    result = plan_cli(str(source), "--state", str(state), "--refresh=false", "--detailed-exitcode")
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("No changes. The storage matches the source.")


def test_detailed_exitcode_2_for_changes_that_keep_data(plan_cli, source, tmp_path):
    result = plan_cli(str(source), "--state", str(tmp_path / "s.db"), "--detailed-exitcode")
    assert result.code == 2
    assert "Plan: 3 to create, 0 to update" in result.stdout


def test_detailed_exitcode_3_for_blocked_replace(plan_cli, tmp_path):
    state = state_matching(tmp_path)
    moved = "name: web, namespace: prod, storageClassName: local-host, size: 1Gi"
    changed = write_source(
        tmp_path / "changed",
        {
            **VOLUMES,
            "v.yaml": VOLUMES["v.yaml"]
            .replace("name: web, namespace: prod, size: 1Gi", moved)
            .replace(
                "size: 1Gi, accessMode: ReadWriteOnce}",
                "size: 1Gi, accessMode: ReadWriteOnce, parameters: {hostPath: /srv/rune/web}}",
                1,
            ),
        },
    )
    result = plan_cli(str(changed), "--state", str(state), "--refresh=false", "--detailed-exitcode")
    assert result.code == 3, result.stderr
    assert "-/+ volume/prod/web (local-host, 1Gi, ReadWriteOnce)  [blocked: needs " in (
        result.stdout
    )
    assert "immutable field changed: driver, parameters, storageClassName" in result.stdout


def test_detailed_exitcode_3_for_an_allowed_destroy(plan_cli, tmp_path):
    files = {
        "c.yaml": "storageClass:\n  name: fast\n  driver: local\n  reclaimPolicy: delete\n",
        "v.yaml": VOLUMES["v.yaml"].replace("size: 1Gi,", "storageClassName: fast, size: 1Gi,"),
    }
    state = state_matching(tmp_path, files)
    fewer = write_source(
        tmp_path / "fewer",
        {**files, "v.yaml": files["v.yaml"].replace("- {name: logs", "# {name: logs")},
    )
    result = plan_cli(
        str(fewer),
        "--state",
        str(state),
        "--refresh=false",
        "--detailed-exitcode",
        "--allow-destroy",
    )
    assert result.code == 3, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "  volume/prod/logs (/var/lib/rune/volumes/prod/logs): destroy"
    )


def test_invalid_source_exits_1_with_diagnostics_on_stderr(plan_cli, tmp_path):
    bad = write_source(
        tmp_path / "bad",
        {"v.yaml": "volume:\n  name: Web_Data\n  size: 10gi\n  accessMode: ReadWriteOnce\n"},
    )
    result = plan_cli(str(bad), "--state", str(tmp_path / "s.db"), "--detailed-exitcode")
    assert result.code == 1
    assert result.stdout == ""
    assert (
        "bad/v.yaml:2:3: error[RS105] volume/default/Web_Data: name 'Web_Data' is not valid"
        in result.stderr
    )
    assert "bad/v.yaml:3:3: error[RS106] volume/default/Web_Data" in result.stderr
    assert result.stderr.rstrip().endswith("2 error(s) in the source; nothing was planned.")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "yaml"], "Invalid value for '--format'"),
        (["--target", "nonsense"], "'nonsense' is not an address"),
        (["--target", "volume/prod"], "write volume/NAMESPACE/NAME"),
        (["--refresh=maybe"], "Invalid value for '--refresh'"),
        (["--bogus"], "No such option '--bogus'"),
        (["--state"], "requires an argument"),
    ],
)
def test_usage_errors_exit_64(plan_cli, source, tmp_path, args, message):
    result = plan_cli(str(source), *args)
    assert result.code == 64
    assert message in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / ".rune-sync").exists()


def test_usage_error_exits_64_from_the_console_script(cli, source):
    result = cli("plan", str(source), "--format", "yaml")
    assert result.code == 64
    assert "Invalid value for '--format'" in result.stderr


# ----------------------------------------------------------------------------- formats


def test_text_ends_with_the_summary_line_then_the_verdict(plan_cli, source, tmp_path):
    result = plan_cli(str(source), "--state", str(tmp_path / "s.db"), "--no-color")
    lines = result.stdout.splitlines()
    assert SUMMARY.match(lines[-2]), lines[-2]
    assert lines[-2] == "Plan: 3 to create, 0 to update, 0 to replace, 0 to destroy, 0 to forget."
    assert lines[-1] == "No data will be destroyed."
    assert "\x1b[" not in result.stdout


def test_text_of_a_plan_without_changes_still_ends_with_the_verdict(plan_cli, source, tmp_path):
    result = plan_cli(str(source), "--state", str(state_matching(tmp_path)), "--refresh=false")
    lines = result.stdout.splitlines()
    assert lines[-2:] == [
        "Plan: 0 to create, 0 to update, 0 to replace, 0 to destroy, 0 to forget.",
        "No data will be destroyed.",
    ]


def test_json_is_exactly_one_document(plan_cli, source, tmp_path):
    result = plan_cli(str(source), "--state", str(tmp_path / "s.db"), "--format", "json")
    assert result.code == 0
    document = json.loads(result.stdout)  # raises on anything after the document
    assert document["format"] == "rune-sync-plan"
    assert document["summary"] == {
        "create": 3,
        "update": 0,
        "replace": 0,
        "destroy": 0,
        "forget": 0,
    }
    assert document["source"]["kind"] == "directory"
    assert document["source"]["url"] == str(source)
    assert [c["address"] for c in document["changes"]] == [
        "volume/prod/db",
        "volume/prod/logs",
        "volume/prod/web",
    ]


def test_json_of_a_plan_against_a_state(plan_cli, source, tmp_path):
    state = state_matching(tmp_path, labels={"volume/prod/web": {"a": "b"}})
    result = plan_cli(str(source), "--state", str(state), "--refresh=false", "--format", "json")
    assert "internal error" not in result.stderr
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["update"] == 1


def _many_volumes(count: int) -> dict[str, str]:
    lines = ["volumes:"] + [
        f"  - {{name: vol-{i:04d}, namespace: prod, size: 1Gi, accessMode: ReadWriteOnce}}"
        for i in range(count)
    ]
    return {"v.yaml": "\n".join(lines) + "\n"}


def test_markdown_stays_within_the_comment_limit_and_says_what_it_left_out(plan_cli, tmp_path):
    big = write_source(tmp_path / "big", _many_volumes(3000))
    result = plan_cli(str(big), "--state", str(tmp_path / "s.db"), "--format", "markdown")
    assert result.code == 0
    body = result.stdout
    assert len(body) <= LIMIT == 65_000
    assert "**Plan: 3000 to create, 0 to update, 0 to replace, 0 to destroy, 0 to forget.**" in body
    assert ":white_check_mark: No data will be destroyed." in body
    shown = body.count("<details>")
    match = re.search(r"_…and (\d+) more change\(s\) left out", body)
    assert match is not None
    assert shown + int(match.group(1)) == 3000


def test_markdown_stays_within_the_limit_when_thousands_of_volumes_lose_data(plan_cli, tmp_path):
    files = _many_volumes(3000)
    desired = desired_from(tmp_path / "old", files)
    records = [
        record_for(w, spec={**w.spec, "accessMode": "ReadOnlyMany"})
        for w in desired.resources.values()
    ]
    state = write_state(tmp_path / "s.db", records)
    big = write_source(tmp_path / "big", files)
    result = plan_cli(str(big), "--state", str(state), "--refresh=false", "--format", "markdown")
    assert result.code == 0
    assert "**Plan: 0 to create, 0 to update, 3000 to replace, 0 to destroy, 0 to forget.**" in (
        result.stdout
    )
    assert len(result.stdout) <= LIMIT


# ----------------------------------------------------------------------------- saved plans


def test_out_writes_a_private_plan_file_that_loads_back_equal(plan_cli, source, tmp_path):
    out = tmp_path / "plans" / "p.json"
    out.parent.mkdir()
    result = plan_cli(
        str(source), "--state", str(tmp_path / "s.db"), "--format", "json", "--out", str(out)
    )
    assert result.code == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    printed = json.loads(result.stdout)
    assert json.loads(out.read_text(encoding="utf-8")) == printed
    assert planfile.load(out) == Plan.from_json(printed)
    assert f"Saved the plan to {out}" in result.stderr
    assert [p.name for p in out.parent.iterdir()] == ["p.json"]  # no temporary left


def test_out_saves_a_plan_made_against_a_state(plan_cli, source, tmp_path):
    state = state_matching(tmp_path, labels={"volume/prod/web": {"a": "b"}})
    out = tmp_path / "p.json"
    result = plan_cli(str(source), "--state", str(state), "--refresh=false", "--out", str(out))
    assert "internal error" not in result.stderr
    assert result.code == 0, result.stderr
    assert planfile.load(out).summary.update == 1


def test_a_refused_mass_delete_exits_1_and_saves_nothing(plan_cli, tmp_path):
    state = state_matching(tmp_path)
    empty = write_source(tmp_path / "empty", {"runefile.yaml": "storage: {}\n"})
    out = tmp_path / "p.json"
    result = plan_cli(
        str(empty),
        "--state",
        str(state),
        "--refresh=false",
        "--detailed-exitcode",
        "--out",
        str(out),
    )
    assert result.code == 1
    assert result.stderr.strip() == (
        "Error: refusing this plan: the plan would forget or destroy all 3 managed volumes — "
        "is the source empty (a bad checkout, a wrong --path)?; pass --allow-mass-delete if "
        "that is what you want"
    )
    assert not out.exists()
    allowed = plan_cli(str(empty), "--state", str(state), "--refresh=false", "--allow-mass-delete")
    assert allowed.code == 0
    assert "Plan: 0 to create, 0 to update, 0 to replace, 0 to destroy, 3 to forget." in (
        allowed.stdout
    )


# ----------------------------------------------------------------------------- state


def test_plan_never_creates_a_state(plan_cli, source, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    result = plan_cli(str(source), cwd=work)
    assert result.code == 0, result.stderr
    assert not (work / ".rune-sync").exists()
    explicit = tmp_path / "nested" / "state.db"
    assert plan_cli(str(source), "--state", str(explicit), cwd=work).code == 0
    assert not explicit.parent.exists()
    assert sorted(p.name for p in work.iterdir()) == []


def test_plan_leaves_an_existing_state_untouched(plan_cli, tmp_path):
    state = state_matching(tmp_path / "st")
    before = (state.read_bytes(), sorted(p.name for p in state.parent.iterdir()))
    changed = write_source(
        tmp_path / "changed", {"v.yaml": VOLUMES["v.yaml"].replace("web", "api")}
    )
    result = plan_cli(str(changed), "--state", str(state), "--refresh=false")
    assert result.code == 0
    assert "Plan: 1 to create, 0 to update, 0 to replace, 0 to destroy, 1 to forget." in (
        result.stdout
    )
    assert (state.read_bytes(), sorted(p.name for p in state.parent.iterdir())) == before


def test_plan_reads_the_state_named_by_rune_sync_state(plan_cli, source, tmp_path):
    state = state_matching(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    result = plan_cli(
        str(source),
        "--detailed-exitcode",
        "--refresh=false",
        cwd=work,
        env={"RUNE_SYNC_STATE": str(state)},
    )
    assert result.code == 0, result.stdout
    assert "No changes." in result.stdout
    assert not (work / ".rune-sync").exists()
    flag_wins = plan_cli(
        str(source),
        "--state",
        str(tmp_path / "other.db"),
        "--detailed-exitcode",
        cwd=work,
        env={"RUNE_SYNC_STATE": str(state)},
    )
    assert flag_wins.code == 2


def test_plan_reads_the_default_state_in_the_working_directory(plan_cli, source, tmp_path):
    work = tmp_path / "work"
    (work / ".rune-sync").mkdir(parents=True)
    state_matching(tmp_path, name="default.db")
    (tmp_path / "default.db").rename(work / ".rune-sync" / "state.db")
    result = plan_cli(str(source), "--detailed-exitcode", "--refresh=false", cwd=work)
    assert result.code == 0, result.stdout


def test_missing_secret_is_an_error_naming_the_reference(plan_cli, tmp_path):
    src = write_source(
        tmp_path / "src",
        {
            "c.yaml": """\
                storageClass:
                  name: do
                  driver: do-volume
                  parameters: {region: nyc3, apiToken: "secret:do-token.shared.rune/token"}
                ---
                volume:
                  name: cloud
                  namespace: prod
                  storageClassName: do
                  size: 1Gi
                  accessMode: ReadWriteOnce
            """
        },
    )
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    result = plan_cli(str(src), "--state", str(tmp_path / "s.db"), "--secrets-dir", str(secrets))
    assert result.code == 1
    assert "secret:do-token.shared.rune/token" in result.stderr


# ----------------------------------------------------------------------------- real drift


@pytest.fixture
def provisioned(tmp_path: Path):
    """Three volumes provisioned by the real local driver and a state recording them."""
    root = tmp_path / "volumes"
    files = {**VOLUMES, "runefile.yaml": f"storage:\n  localVolumeRoot: {root}\n"}
    src = write_source(tmp_path / "src", files)
    desired = desired_from(tmp_path / "old", files)
    driver = LocalDriver(settings=StorageSettings(local_volume_root=root))
    records = []
    for want in desired.resources.values():
        handle = driver.provision(
            OpContext(address=str(want.address)),
            ProvisionRequest(
                name=want.address.name,
                namespace=want.address.namespace,
                size=parse(str(want.spec["size"])),
                access_mode=AccessMode(want.spec["accessMode"]),
            ),
        )
        records.append(record_for(want, handle=handle))
    state = write_state(tmp_path / "state.db", records)
    return src, state, root


def test_refresh_with_nothing_changed_is_no_drift(plan_cli, provisioned):
    src, state, root = provisioned
    (root / "prod" / "web" / "data.txt").write_text("written by the app")
    result = plan_cli(str(src), "--state", str(state), "--detailed-exitcode")
    assert result.code == 0, result.stdout + result.stderr
    assert "drift" not in result.stdout


def test_directory_deleted_by_hand_is_created_again_with_drift(plan_cli, provisioned):
    src, state, root = provisioned
    (root / "prod" / "db").rmdir()
    result = plan_cli(str(src), "--state", str(state), "--detailed-exitcode")
    assert result.code == 2, result.stderr
    assert (
        f"  + volume/prod/db (local, 2Gi, ReadWriteOnce)\n"
        f"      create: provision it again\n"
        f"      drift: {root}/prod/db no longer exists (removed outside rune-sync)\n"
    ) in result.stdout
    assert result.stdout.splitlines()[-1] == "No data will be destroyed."
    for flag in ("--refresh=false", "--no-refresh"):
        skipped = plan_cli(str(src), "--state", str(state), flag, "--detailed-exitcode")
        assert skipped.code == 0, flag  # without refresh the state is believed


def test_symlink_to_etc_in_place_of_a_volume_is_a_blocked_replace_and_etc_is_untouched(
    plan_cli, provisioned
):
    src, state, root = provisioned
    handle = root / "prod" / "web"
    handle.rmdir()
    handle.symlink_to("/etc")
    etc_before = sorted(os.listdir("/etc"))
    etc_stat = os.stat("/etc")
    result = plan_cli(str(src), "--state", str(state), "--detailed-exitcode")
    assert result.code == 3, result.stderr
    assert (
        f"-/+ volume/prod/web (local, 1Gi, ReadWriteOnce)  [blocked: needs --allow-replace]\n"
        f"      replace: what stands at the handle is not the volume: the old one is "
        f"destroyed and a new one created\n"
        f"      drift: {handle} is now symlink to /etc\n"
    ) in result.stdout
    assert result.stdout.splitlines()[-1] == (
        f"  volume/prod/web ({handle}): replace — blocked: needs --allow-replace"
    )
    assert handle.is_symlink() and os.readlink(handle) == "/etc"
    assert sorted(os.listdir("/etc")) == etc_before
    assert os.stat("/etc").st_mtime_ns == etc_stat.st_mtime_ns
