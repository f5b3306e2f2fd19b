"""A full plan/apply/destroy cycle of DigitalOcean volumes through the CLI, against the fake
DigitalOcean API (a real HTTP server on 127.0.0.1), with the token as a secret reference.

The token is a canary: it must not appear in the state database's bytes, a saved plan,
any output in any format, or an error — also when the API fails and when apply is killed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Result
from tests.fakes.digitalocean import FakeDigitalOcean

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digitalocean"
CANARY = "dop_v1_canary" + "5e" * 28


@pytest.fixture
def world(tmp_path: Path, do_api: FakeDigitalOcean) -> dict[str, Path]:
    src = tmp_path / "src"
    shutil.copytree(EXAMPLE, src)
    secrets = tmp_path / "secrets"
    key = secrets / "shared" / "do-api-token" / "token"
    key.parent.mkdir(parents=True)
    key.write_text(CANARY + "\n")
    for path in (secrets, *secrets.rglob("*")):
        path.chmod(0o700 if path.is_dir() else 0o600)
    do_api.add_token(CANARY)
    do_api.add_droplet("node-1", "nyc3")
    return {"src": src, "secrets": secrets, "state": tmp_path / "state.db", "tmp": tmp_path}


def run(cli, world, do_api, *args: str) -> Result:
    env = {"DIGITALOCEAN_API_URL": do_api.url, "RUNE_SYNC_SECRETS_DIR": str(world["secrets"])}
    result: Result = cli(*args, "--state", str(world["state"]), env=env)
    for text in (result.stdout, result.stderr):
        assert CANARY not in text
    return result


def state_bytes(world) -> bytes:
    return b"".join(p.read_bytes() for p in world["tmp"].glob("state.db*"))


def test_plan_apply_destroy_cycle_never_writes_the_token(cli, world, do_api):
    saved = world["tmp"] / "plan.json"
    plan = run(cli, world, do_api, "plan", str(world["src"]), "--out", str(saved))
    assert plan.code == 0, plan.stderr
    assert CANARY.encode() not in saved.read_bytes()
    assert "secret:do-api-token.shared.rune/token" in saved.read_text()

    applied = run(cli, world, do_api, "apply", str(saved), "--auto-approve")
    assert applied.code == 0, applied.stderr
    names = {v["name"]: v for v in do_api.volumes}
    assert set(names) == {"rune-prod-pgdata", "rune-ci-build-cache"}
    assert names["rune-prod-pgdata"]["size_gigabytes"] == 50
    assert names["rune-ci-build-cache"]["filesystem_type"] == "xfs"
    assert {s["name"] for s in do_api.snapshots} == {"rune-prod-pgdata-before-upgrade"}
    assert CANARY.encode() not in state_bytes(world)

    for fmt in ("text", "json", "markdown"):
        again = run(cli, world, do_api, "plan", str(world["src"]), "--format", fmt,
                    "--detailed-exitcode")  # fmt: skip
        assert again.code == 0, again.stderr
    listed = run(cli, world, do_api, "state", "pull")
    assert listed.code == 0

    (world["src"] / "volumes.yaml").write_text(
        (world["src"] / "volumes.yaml").read_text().split("  # rune-ci-build-cache")[0]
        + "---\nsnapshot:\n  name: pgdata-before-upgrade\n  namespace: prod\n"
        "  source:\n    volume: pgdata\n"
    )
    refused = run(cli, world, do_api, "apply", str(world["src"]), "--auto-approve")
    assert refused.code == 1 and "--allow-destroy" in refused.stderr
    assert "rune-ci-build-cache" in {v["name"] for v in do_api.volumes}
    destroyed = run(
        cli, world, do_api, "apply", str(world["src"]), "--auto-approve", "--allow-destroy",
        "--format", "json",
    )  # fmt: skip
    assert destroyed.code == 0, destroyed.stderr
    assert {v["name"] for v in do_api.volumes} == {"rune-prod-pgdata"}
    # The data of the destroyed volume lives on in its pre-destroy snapshot.
    assert any(s["name"].startswith("rune-ci-build-cache-predestroy-") for s in do_api.snapshots)
    noop = run(cli, world, do_api, "apply", str(world["src"]), "--auto-approve")
    assert noop.code == 0 and "No changes" in noop.stdout
    assert CANARY.encode() not in state_bytes(world)
    assert not do_api.unknown_requests()


def test_api_failures_name_the_scope_and_never_the_token(cli, world, do_api):
    do_api.remove_token(CANARY)
    do_api.add_token(CANARY, scopes={"block_storage:read", "block_storage:delete"})
    failed = run(cli, world, do_api, "apply", str(world["src"]), "--auto-approve")
    assert failed.code == 1
    assert "block_storage:create" in failed.stdout + failed.stderr
    do_api.remove_token(CANARY)
    do_api.add_token(CANARY)
    do_api.fail(status=500, times=None)
    storm = run(cli, world, do_api, "apply", str(world["src"]), "--auto-approve",
                "--stall-after", "5")  # fmt: skip
    assert storm.code == 1
    assert CANARY.encode() not in state_bytes(world)
    for log in Path(os.environ.get("TMPDIR", "/tmp")).glob("rune-sync-crash-*"):
        assert CANARY not in log.read_text(errors="replace")


def test_a_killed_apply_leaves_no_token_in_the_state(world, do_api):
    do_api.slow(0.3, times=None)
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "DIGITALOCEAN_API_URL": do_api.url,
        "RUNE_SYNC_SECRETS_DIR": str(world["secrets"]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "rune_sync", "apply", str(world["src"]), "--state",
         str(world["state"]), "--auto-approve"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not do_api.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert CANARY.encode() not in out + err
    assert CANARY.encode() not in state_bytes(world)
