"""``--require-signed`` through the real CLI, with GPG and SSH keys made here: a good
history plans; the oldest unsigned or untrusted commit since the last applied one stops
the run before planning, named in one message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import gitserve
from tests.conftest import Result, run_cli

VOLUME = "volume:\n  name: {name}\n  namespace: prod\n  size: 1Gi\n  accessMode: ReadWriteOnce\n"


@pytest.fixture
def plan(tmp_path: Path, repo: gitserve.Repo):
    work = tmp_path / "cwd"
    work.mkdir()
    env = {"RUNE_SYNC_CACHE_DIR": str(tmp_path / "cache"), "RUNE_SYNC_STATE": ""}

    def run(command: str, *args: str) -> Result:
        result = run_cli(command, repo.url, "--path", "infra", *args, cwd=work, env=env)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    return run


def _files(tmp_path: Path, *names: str) -> dict[str, str | None]:
    files: dict[str, str | None] = {
        "infra/runefile.yaml": f"storage:\n  localVolumeRoot: {tmp_path / 'volumes'}\n"
    }
    files.update({f"infra/{n}.yaml": VOLUME.format(name=n) for n in names})
    return files


def test_signed_history_plans_and_applies(repo, tmp_path, plan, gpg_key, ssh_key):
    repo.commit(_files(tmp_path, "web"), "web", sign=gpg_key)
    tip = repo.commit(_files(tmp_path, "web", "db"), "db", sign=ssh_key)
    repo.push()
    keys = (
        "--require-signed",
        "--trusted-keys",
        str(gpg_key.public),
        "--allowed-signers",
        str(ssh_key.allowed_signers),
    )
    result = plan("plan", *keys)
    assert result.code == 0, result.stderr
    assert f"Commit: {tip}" in result.stdout and "Plan: 2 to create" in result.stdout
    assert plan("apply", *keys, "--auto-approve").code == 0


def test_oldest_unsigned_commit_since_the_last_apply_stops_the_run(repo, tmp_path, plan, gpg_key):
    keys = ("--require-signed", "--trusted-keys", str(gpg_key.public))
    repo.commit(_files(tmp_path, "web"), "web", sign=gpg_key)
    repo.push()
    assert plan("apply", *keys, "--auto-approve").code == 0
    unsigned = repo.commit(_files(tmp_path, "web", "db"), "pushed without signing")
    repo.commit(_files(tmp_path, "web", "db", "cache"), "signed on top", sign=gpg_key)
    repo.push()
    result = plan("plan", *keys)
    assert result.code == 1 and result.stdout == ""
    (message,) = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert f'commit {unsigned} ("pushed without signing") is not signed' in message
    assert "oldest bad one of the 2 commit(s)" in message
    tip_only = plan("plan", *keys, "--verify-tip-only", "--format", "json")
    assert tip_only.code == 0, tip_only.stderr
    assert json.loads(tip_only.stdout)["summary"]["create"] == 2


def test_commit_signed_by_an_untrusted_key_is_refused(repo, tmp_path, plan, gpg_key, ssh_key):
    mallory = gitserve.make_ssh_key(tmp_path / "mallory", email="mallory@example.com")
    bad = repo.commit(_files(tmp_path, "web"), "by mallory", sign=mallory)
    repo.push()
    result = plan(
        "plan",
        "--require-signed",
        "--allowed-signers",
        str(ssh_key.allowed_signers),
        "--trusted-keys",
        str(gpg_key.public),
    )
    assert result.code == 1
    assert f"commit {bad}" in result.stderr and "no good signature from a trusted key" in (
        result.stderr
    )
