"""A git repository as a source: resolve a ref on the remote, fetch it into the cache,
and export the commit's tree (below ``--path``) as the directory to load.

Owned here: :func:`remote_revision` (what a ref points to right now, via ``git
ls-remote``: no fetch; watch mode polls with it) and :func:`open_git` (resolve with
:mod:`~rune_sync.source.refs` → fetch incrementally, shallow on a first clone → export →
:class:`SourceSnapshot`). A damaged
cache entry is deleted and cloned again once. Called by :mod:`rune_sync.source.opener`.
Must not: print, or put a URL with credentials in a message or a value that is shown.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from rune_sync.errors import SourceError
from rune_sync.source import cache, gitcmd, refs, urls
from rune_sync.source.base import CommitInfo, SourceKind, SourceSnapshot

_TIP = "refs/rune-sync/tip"
_ALL_REFS = ("+refs/heads/*:refs/rune-sync/heads/*", "+refs/tags/*:refs/rune-sync/tags/*")
_REMOTE_TROUBLE = (
    "unable to access",
    "could not read from remote",
    "unable to connect",
    "connection refused",
    "could not resolve",
    "timed out",
    "repository not found",
    "does not appear to be a git repository",
    "authentication failed",
    "permission denied",
    "the remote end hung up",
)


class _Damaged(Exception):
    """A local git operation on the cache failed: the entry is deleted and fetched again."""


def remote_revision(*, url: str, ref: str | None, timeout: float) -> str:
    """The full SHA ``ref`` (default: the remote's HEAD) resolves to on ``url`` right now.

    One ``git ls-remote``: nothing is fetched and the cache is not touched. A full SHA is
    returned as it is; an abbreviated one cannot be resolved without fetching and raises.
    Raises :class:`~rune_sync.errors.SourceError` (unreachable, empty, unknown ref).
    """
    display = urls.display_url(url)
    target = refs.lookup(url, display, ref, timeout)
    if target.abbreviated:
        raise SourceError(
            f"--ref {ref!r} looks like an abbreviated commit; it cannot be resolved on "
            f"{display} without fetching: give the full 40-character SHA"
        )
    return target.want


def _remote_trouble(detail: str) -> bool:
    lowered = detail.lower()
    return any(marker in lowered for marker in _REMOTE_TROUBLE)


def _local(entry: cache.Entry, args: list[str], timeout: float) -> str:
    """A git command on the cache that does not touch the network; failure = damage."""
    try:
        return gitcmd.run(args, git_dir=entry.git_dir, timeout=timeout)
    except gitcmd.GitMissing as exc:
        raise SourceError(exc.detail) from exc
    except gitcmd.GitFailure as exc:
        if exc.no_space:
            raise
        raise _Damaged(exc.detail) from exc


def has_commit(entry: cache.Entry, sha: str, timeout: float) -> bool:
    try:
        gitcmd.run(["cat-file", "-e", f"{sha}^{{commit}}"], git_dir=entry.git_dir, timeout=timeout)
    except gitcmd.GitMissing as exc:
        raise SourceError(exc.detail) from exc
    except gitcmd.GitFailure as exc:
        if "not a git repository" in exc.detail.lower():
            raise _Damaged(exc.detail) from exc
        return False
    return True


def fetch(
    entry: cache.Entry,
    *,
    remote: str,
    display: str,
    refspecs: list[str],
    depth: int | None,
    timeout: float,
) -> None:
    """``git fetch`` into the cache; remote trouble raises SourceError, anything else is
    taken for a damaged cache."""
    args = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head"]
    if depth is not None:
        args.append(f"--depth={depth}")
    try:
        gitcmd.run([*args, remote, *refspecs], git_dir=entry.git_dir, timeout=timeout)
    except gitcmd.GitMissing as exc:
        raise SourceError(exc.detail) from exc
    except gitcmd.GitFailure as exc:
        if exc.no_space or exc.timed_out:
            raise
        if _remote_trouble(exc.detail):
            raise refs.reach_error(display, exc) from exc
        raise _Damaged(exc.detail) from exc


def _first_fetch(entry: cache.Entry) -> bool:
    return (
        not any((entry.git_dir / "refs" / "rune-sync").glob("*"))
        and not (entry.git_dir / "packed-refs").is_file()
    )


def _obtain(
    entry: cache.Entry, *, remote: str, display: str, target: refs.Target, timeout: float
) -> str:
    """Make the target commit present in the cache; its full SHA."""
    if not target.abbreviated:
        if has_commit(entry, target.want, timeout):
            return target.want
        depth = 1 if _first_fetch(entry) else None
        try:
            fetch(
                entry,
                remote=remote,
                display=display,
                refspecs=[f"+{target.want}:{_TIP}"],
                depth=depth,
                timeout=timeout,
            )
        except _Damaged:
            pass  # a server may refuse a SHA that is no ref's tip: fetch all refs below
        else:
            if has_commit(entry, target.want, timeout):
                return target.want
    fetch(
        entry, remote=remote, display=display, refspecs=list(_ALL_REFS), depth=None, timeout=timeout
    )
    try:
        sha = gitcmd.run(
            ["rev-parse", "--verify", "--quiet", f"{target.want}^{{commit}}"],
            git_dir=entry.git_dir,
            timeout=timeout,
        )
    except gitcmd.GitFailure as exc:
        reason = "is ambiguous" if "ambiguous" in exc.detail else "is not a commit"
        raise SourceError(f"--ref {target.want} {reason} in {display}") from exc
    _local(entry, ["update-ref", _TIP, sha], timeout)
    return sha


def _commit_info(entry: cache.Entry, sha: str, timeout: float) -> tuple[CommitInfo, str]:
    out = _local(entry, ["log", "-1", "--format=%H%x00%T%x00%an <%ae>%x00%aI%x00%s", sha], timeout)
    parts = out.split("\0")
    if len(parts) != 5:
        raise _Damaged(f"unexpected answer from git log: {out[:80]!r}")
    full, tree, author, date, subject = parts
    return CommitInfo(sha=full, author=author, date=date, subject=subject), tree


def _subtree(
    entry: cache.Entry, *, sha: str, root_tree: str, path: str | None, display: str, timeout: float
) -> str:
    if path is None:
        return root_tree
    out = _local(entry, ["ls-tree", "-z", sha, "--", path], timeout)
    for record in out.split("\0"):
        meta, _, name = record.partition("\t")
        if name != path:
            continue
        kind, object_id = meta.split()[1:3]
        if kind != "tree":
            raise SourceError(
                f"--path {path} is a file at commit {sha[:12]} of {display}; it must be a directory"
            )
        return object_id
    raise SourceError(f"--path {path} does not exist at commit {sha[:12]} of {display}")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Synced:
    commit: CommitInfo
    root: Path


def _sync(
    entry: cache.Entry,
    *,
    remote: str,
    display: str,
    target: refs.Target,
    path: str | None,
    timeout: float,
) -> _Synced:
    if entry.base.exists() and not cache.is_complete(entry):
        raise _Damaged("its git directory is incomplete")
    cache.ensure(entry, timeout=timeout)
    sha = _obtain(entry, remote=remote, display=display, target=target, timeout=timeout)
    info, root_tree = _commit_info(entry, sha, timeout)
    tree = _subtree(
        entry, sha=sha, root_tree=root_tree, path=path, display=display, timeout=timeout
    )
    try:
        root = cache.export(entry, tree_id=tree, timeout=timeout)
    except gitcmd.GitFailure as exc:
        if exc.no_space:
            raise
        raise _Damaged(exc.detail) from exc
    cache.prune(entry, keep=root)
    return _Synced(commit=info, root=root)


def _sync_repairing(
    entry: cache.Entry,
    *,
    remote: str,
    display: str,
    target: refs.Target,
    path: str | None,
    timeout: float,
    notes: list[str],
) -> _Synced:
    """:func:`_sync`; a damaged entry is deleted and synced once more (noted)."""
    try:
        return _sync(
            entry, remote=remote, display=display, target=target, path=path, timeout=timeout
        )
    except _Damaged as exc:
        notes.append(
            f"the git cache at {entry.base} was damaged "
            f"({refs.headline(urls.redact(str(exc)))}); it was deleted and cloned again"
        )
    cache.reset(entry, timeout=timeout)
    try:
        return _sync(
            entry, remote=remote, display=display, target=target, path=path, timeout=timeout
        )
    except _Damaged as again:
        raise SourceError(
            f"cannot fetch {display} into the cache at {entry.base}: {refs.headline(str(again))}"
        ) from again


def _failure(exc: gitcmd.GitFailure, *, display: str, entry: cache.Entry) -> SourceError:
    if exc.no_space:
        return SourceError(
            f"no space left on the device while fetching {display} into the cache at "
            f"{entry.base.parent}; free some space or set {cache.CACHE_ENV}"
        )
    if exc.timed_out:
        return SourceError(f"fetching {display} timed out: {exc.detail}")
    return refs.reach_error(display, exc)


def open_git(
    *, remote: str, ref: str | None, path: str | None, cache_root: Path, timeout: float
) -> SourceSnapshot:
    """Resolve ``ref`` on ``remote``, fetch it into the cache and export its tree."""
    display = urls.display_url(remote)
    target = refs.lookup(remote, display, ref, timeout)
    entry = cache.entry_for(cache_root, display)
    notes: list[str] = []
    with cache.locked(entry, timeout=timeout):
        fresh = not entry.base.exists()
        try:
            synced = _sync_repairing(
                entry,
                remote=remote,
                display=display,
                target=target,
                path=path,
                timeout=timeout,
                notes=notes,
            )
        except gitcmd.GitFailure as exc:
            if exc.no_space and (fresh or notes):
                # a clone begun by this run (not an older cache) gives its room back
                shutil.rmtree(entry.base, ignore_errors=True)
            raise _failure(exc, display=display, entry=entry) from exc
    return SourceSnapshot(
        root=synced.root,
        kind=SourceKind.GIT,
        url=display,
        commit=synced.commit,
        ref=ref,
        path=path,
        shown_from=synced.root,
        git_dir=entry.git_dir,
        remote=remote,
        notes=tuple(notes),
    )
