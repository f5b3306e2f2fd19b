"""Running the git binary (through GitPython) with rune-sync's safety settings.

Owned here: the environment every git command gets (``GIT_TERMINAL_PROMPT=0`` so git
never waits on a prompt; low-speed limits for HTTP; SSH in batch mode unless the user
chose ``GIT_SSH_COMMAND``), the kill timeout, and turning GitPython's errors into
:class:`GitFailure` with credentials removed. Called by the git source, the cache and
history checks. Must not: let a GitPython exception, or a URL with a password, escape.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from rune_sync.source import urls

DEFAULT_TIMEOUT = 300.0
"""Seconds a network operation may take before git is killed (``RUNE_SYNC_GIT_TIMEOUT``)."""
TIMEOUT_ENV = "RUNE_SYNC_GIT_TIMEOUT"

_HARDENING = (
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "gc.auto=0",
    "-c",
    "maintenance.auto=false",
    "-c",
    "fetch.writeCommitGraph=false",
    "-c",
    "protocol.ext.allow=never",
)


class GitFailure(Exception):
    """A git command failed; ``detail`` is git's message, credentials removed."""

    def __init__(self, detail: str, *, status: int | None, timed_out: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.timed_out = timed_out

    @property
    def no_space(self) -> bool:
        return "No space left on device" in self.detail


class GitMissing(GitFailure):
    """The git binary is not installed."""


def timeout_from_env() -> float:
    """``RUNE_SYNC_GIT_TIMEOUT`` in seconds, else :data:`DEFAULT_TIMEOUT`."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        value = float(text) if text else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


def environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables added to git's environment (GitPython starts from ``os.environ``)."""
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GCM_INTERACTIVE": "never",
        "GIT_HTTP_LOW_SPEED_LIMIT": os.environ.get("GIT_HTTP_LOW_SPEED_LIMIT", "1000"),
        "GIT_HTTP_LOW_SPEED_TIME": os.environ.get("GIT_HTTP_LOW_SPEED_TIME", "30"),
    }
    if not os.environ.get("GIT_SSH_COMMAND") and not os.environ.get("GIT_SSH"):
        env["GIT_SSH_COMMAND"] = "ssh -o BatchMode=yes -o ConnectTimeout=30"
    env.update(extra or {})
    return env


def run(
    args: Sequence[str],
    *,
    git_dir: Path | None = None,
    cwd: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    config: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> str:
    """Run ``git [hardening] [config] [--git-dir] args`` and return its stdout.

    Raises :class:`GitFailure` (redacted) on a non-zero exit or after ``timeout``
    seconds, :class:`GitMissing` when git is not installed.
    """
    import git  # GitPython: imported here so directory sources never pay for it

    command = ["git", *_HARDENING, *config]
    if git_dir is not None:
        command += ["--git-dir", str(git_dir)]
    command += list(args)
    runner = git.Git(str(cwd) if cwd is not None else None)
    try:
        out = runner.execute(
            command,
            env=environment(env),
            kill_after_timeout=timeout,
            stdout_as_string=True,
        )
    except git.GitCommandNotFound as exc:
        raise GitMissing(
            "git is not installed (it is needed for git sources)", status=None
        ) from exc
    except git.GitCommandError as exc:
        stderr = exc.stderr if isinstance(exc.stderr, str) else str(exc.stderr or "")
        timed_out = "did not complete in" in stderr or "kill_after_timeout" in stderr
        detail = (
            f"git did not finish within {timeout:g}s and was stopped"
            if timed_out
            else _clean(stderr)
        )
        raise GitFailure(
            detail or f"git exited with status {exc.status}",
            status=exc.status if isinstance(exc.status, int) else None,
            timed_out=timed_out,
        ) from exc
    assert isinstance(out, str)  # stdout_as_string without extended output
    return out


def _clean(stderr: str) -> str:
    """git's stderr as one readable message: the ``stderr: '…'`` wrapping GitPython adds
    removed, progress lines dropped, credentials redacted."""
    text = stderr.strip()
    if text.startswith("stderr:"):
        text = text[len("stderr:") :].strip().strip("'")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [
        line
        for line in lines
        if not line.lower().startswith(
            ("remote: counting", "remote: compressing", "receiving objects", "resolving deltas")
        )
    ]
    return urls.redact("; ".join(lines))
