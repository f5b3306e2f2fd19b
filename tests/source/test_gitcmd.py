"""git runs without prompts, within a time limit, and its errors carry no credentials."""

from __future__ import annotations

import pytest

from rune_sync.source import gitcmd
from tests import gitserve


def test_git_never_prompts_and_ssh_runs_in_batch_mode(monkeypatch):
    monkeypatch.delenv("GIT_SSH_COMMAND", raising=False)
    monkeypatch.delenv("GIT_SSH", raising=False)
    env = gitcmd.environment()
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert "BatchMode=yes" in env["GIT_SSH_COMMAND"]
    assert env["GIT_HTTP_LOW_SPEED_LIMIT"] and env["GIT_HTTP_LOW_SPEED_TIME"]


def test_the_users_ssh_command_is_kept(monkeypatch):
    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -i /keys/deploy")
    assert "GIT_SSH_COMMAND" not in gitcmd.environment()


def test_a_failure_names_gits_reason_without_the_password():
    url = f"http://bob:canary-secret@127.0.0.1:{gitserve.free_port()}/repo.git"
    with pytest.raises(gitcmd.GitFailure) as caught:
        gitcmd.run(["ls-remote", url], timeout=30)
    assert "canary-secret" not in caught.value.detail
    assert "127.0.0.1" in caught.value.detail and not caught.value.timed_out


@pytest.mark.parametrize(("text", "seconds"), [("", 300.0), ("12.5", 12.5), ("x", 300.0)])
def test_timeout_comes_from_the_environment(monkeypatch, text, seconds):
    monkeypatch.setenv(gitcmd.TIMEOUT_ENV, text)
    assert gitcmd.timeout_from_env() == seconds
