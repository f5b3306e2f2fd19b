"""History rules for git sources: no rollbacks, and signed commits (DESIGN §10).

Owned here: :func:`check`, run before planning. A commit that does not descend from the
last applied one (same repository) is refused unless the policy allows rollbacks; with
``require_signed``, every commit since the last applied one (all of history on a first
apply, the target alone with ``verify_tip_only``) must pass ``git verify-commit`` against
the trusted keys only (:mod:`rune_sync.source.keyring`). A shallow cache is deepened as
far as the check needs. Called by the CLI pipeline and watch. Must not: plan, or accept a
commit it could not check.
"""

from __future__ import annotations

from rune_sync.errors import RollbackError, SignatureError, SourceError
from rune_sync.source import cache, git, gitcmd, keyring
from rune_sync.source.base import SourceKind, SourceSnapshot, TrustPolicy

_DEEPEN_STEPS = (64, 1024)
"""Commits fetched per deepening before fetching the whole history."""


def check(
    snapshot: SourceSnapshot, *, previous: str | None, policy: TrustPolicy, timeout: float
) -> None:
    """Refuse ``snapshot`` when it moves back from ``previous`` (the commit last applied
    from the same repository, or None) or lacks the signatures ``policy`` requires.

    Raises :class:`~rune_sync.errors.RollbackError` naming both commits,
    :class:`~rune_sync.errors.SignatureError` naming the oldest bad commit, or
    :class:`~rune_sync.errors.SourceError` when the history cannot be read.
    """
    if snapshot.kind is not SourceKind.GIT or snapshot.commit is None:
        if policy.require_signed:
            raise SourceError("--require-signed needs a git source; this one is a directory")
        return
    if previous is None and not policy.require_signed:
        return
    assert snapshot.git_dir is not None  # every git snapshot names its cache
    entry = cache.Entry(base=snapshot.git_dir.parent)
    target = snapshot.commit.sha
    with cache.locked(entry, timeout=timeout):
        history = _History(entry=entry, snapshot=snapshot, timeout=timeout)
        descends = previous is None or previous == target or history.contains(previous)
        if not descends and not policy.allow_rollback:
            raise RollbackError(
                f"refusing commit {target} of {snapshot.url}: it does not descend from "
                f"commit {previous}, the last one applied (was the branch rewritten or "
                "moved back?); pass --allow-rollback to apply it anyway"
            )
        if policy.require_signed:
            commits = history.to_verify(
                previous=previous, descends=descends, tip_only=policy.verify_tip_only
            )
            _verify(history, commits, policy=policy, previous=previous)


class _History:
    """The target's history in the cache, deepened on demand."""

    def __init__(self, *, entry: cache.Entry, snapshot: SourceSnapshot, timeout: float) -> None:
        assert snapshot.commit is not None
        self.entry = entry
        self.snapshot = snapshot
        self.target = snapshot.commit.sha
        self.timeout = timeout
        self._deepened = 0

    def _git(self, args: list[str]) -> str:
        try:
            return gitcmd.run(args, git_dir=self.entry.git_dir, timeout=self.timeout)
        except gitcmd.GitFailure as exc:
            raise SourceError(
                f"cannot read the history of {self.snapshot.url} in the cache at "
                f"{self.entry.base}: {exc.detail}"
            ) from exc

    def _commits(self) -> list[str]:
        return self._git(["rev-list", self.target]).split()

    def _complete(self, commits: list[str]) -> bool:
        shallow_file = self.entry.git_dir / "shallow"
        try:
            shallow = set(shallow_file.read_text().split())
        except FileNotFoundError:
            return True
        return shallow.isdisjoint(commits)

    def _deepen(self) -> None:
        step = self._deepened
        depth_args = (
            [f"--deepen={_DEEPEN_STEPS[step]}"] if step < len(_DEEPEN_STEPS) else ["--unshallow"]
        )
        self._deepened += 1
        try:
            gitcmd.run(
                [
                    "fetch",
                    "--quiet",
                    "--no-tags",
                    "--no-write-fetch-head",
                    *depth_args,
                    self.snapshot.remote,
                    f"+{self.target}:refs/rune-sync/tip",
                ],
                git_dir=self.entry.git_dir,
                timeout=self.timeout,
            )
        except gitcmd.GitFailure as exc:
            raise SourceError(
                f"cannot fetch the history of {self.snapshot.url} needed to check the "
                f"commits since the last applied one: {exc.detail}"
            ) from exc

    def contains(self, commit: str) -> bool:
        """Whether ``commit`` is the target or one of its ancestors (deepening as needed)."""
        while True:
            commits = self._commits()
            if commit in commits:
                return True
            if self._complete(commits):
                return False
            self._deepen()

    def whole(self) -> None:
        while not self._complete(self._commits()):
            self._deepen()

    def to_verify(self, *, previous: str | None, descends: bool, tip_only: bool) -> list[str]:
        """The commits to verify, oldest first."""
        if tip_only:
            return [self.target]
        if previous == self.target:
            return []
        if previous is not None and descends:
            return self._git(
                ["rev-list", "--reverse", "--topo-order", self.target, f"^{previous}"]
            ).split()
        self.whole()
        if previous is not None and git.has_commit(self.entry, previous, self.timeout):
            found = self._git(
                ["rev-list", "--reverse", "--topo-order", self.target, f"^{previous}"]
            ).split()
            return found or [self.target]
        return self._git(["rev-list", "--reverse", "--topo-order", self.target]).split()

    def subject(self, commit: str) -> str:
        return self._git(["log", "-1", "--format=%s", commit])

    def is_signed(self, commit: str) -> bool:
        header = self._git(["cat-file", "commit", commit]).split("\n\n", 1)[0]
        return any(line.startswith(("gpgsig ", "gpgsig-sha256 ")) for line in header.splitlines())


def _verify(
    history: _History, commits: list[str], *, policy: TrustPolicy, previous: str | None
) -> None:
    with keyring.trusted(
        trusted_keys=policy.trusted_keys, allowed_signers=policy.allowed_signers
    ) as trust:
        for commit in commits:
            try:
                gitcmd.run(
                    ["verify-commit", commit],
                    git_dir=history.entry.git_dir,
                    config=trust.config,
                    env=trust.env,
                    timeout=history.timeout,
                )
            except gitcmd.GitMissing as exc:
                raise SourceError(exc.detail) from exc
            except gitcmd.GitFailure as exc:
                if history.is_signed(commit):
                    why = "has no good signature from a trusted key"
                    reason = keyring.reason(exc.detail)
                    if reason:
                        why += f" ({reason})"
                else:
                    why = "is not signed"
                if policy.verify_tip_only:
                    scope = "the target alone was checked (--verify-tip-only)"
                elif previous:
                    scope = (
                        f"it is the oldest bad one of the {len(commits)} commit(s) "
                        f"since {previous}, the last one applied"
                    )
                else:
                    scope = (
                        f"it is the oldest bad one of the {len(commits)} commit(s) "
                        "of its history (nothing was applied from it before)"
                    )
                raise SignatureError(
                    f"refusing commit {history.target} of {history.snapshot.url}: commit "
                    f'{commit} ("{history.subject(commit)}") {why}; {scope}. '
                    "Nothing was planned."
                ) from exc
