"""A git repository as a source: resolve a ref on the remote, fetch it into the cache,
and export the commit's tree (below ``--path``) as the directory to load.

Owned here: :func:`remote_revision` (what a ref points to right now, via ``git
ls-remote``: no fetch; watch mode polls with it) and :func:`open_git` (resolve → fetch
incrementally, shallow on a first clone → export → :class:`SourceSnapshot`). A damaged
cache entry is deleted and cloned again once. Called by :mod:`rune_sync.source.opener`.
Must not: print, or put a URL with credentials in a message or a value that is shown.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from rune_sync.errors import SourceError
from rune_sync.source import cache, gitcmd, urls
from rune_sync.source.base import CommitInfo, SourceKind, SourceSnapshot

_FULL_SHA = re.compile(r"[0-9a-fA-F]{40}")
_SHORT_SHA = re.compile(r"[0-9a-fA-F]{4,39}")
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


@dataclass(frozen=True, slots=True)
class _Listing:
    """``git ls-remote --symref``: HEAD's target and every ref (tags peeled)."""

    head: str | None
    head_ref: str | None
    refs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Target:
    """What to fetch: a full SHA, or (``abbreviated``) a prefix to find after a full fetch."""

    want: str
    abbreviated: bool = False


class _Damaged(Exception):
    """A local git operation on the cache failed: the entry is deleted and fetched again."""


def _reach_error(display: str, exc: gitcmd.GitFailure) -> SourceError:
    if isinstance(exc, gitcmd.GitMissing):
        return SourceError(exc.detail)
    return SourceError(f"cannot read the git repository {display}: {_headline(exc.detail)}")


def _headline(detail: str) -> str:
    """The first ``fatal:`` part of git's message (the rest repeats it), else all of it."""
    parts = [p.strip() for p in detail.split("; ") if p.strip()]
    for part in parts:
        if part.lower().startswith("fatal:"):
            return part[len("fatal:") :].strip()
    return "; ".join(parts)


def _list(remote: str, display: str, timeout: float, patterns: list[str]) -> _Listing:
    try:
        out = gitcmd.run(["ls-remote", "--symref", remote, *patterns], timeout=timeout)
    except gitcmd.GitFailure as exc:
        raise _reach_error(display, exc) from exc
    head: str | None = None
    head_ref: str | None = None
    refs: dict[str, str] = {}
    peeled: dict[str, str] = {}
    for line in out.splitlines():
        left, _, name = line.partition("\t")
        if left.startswith("ref: "):
            if name == "HEAD":
                head_ref = left[len("ref: ") :].strip()
            continue
        if name == "HEAD":
            head = left.strip()
        elif name.endswith("^{}"):
            peeled[name[:-3]] = left.strip()
        else:
            refs[name] = left.strip()
    refs.update(peeled)
    return _Listing(head=head, head_ref=head_ref, refs=refs)


def _resolve(listing: _Listing, ref: str | None, display: str) -> _Target:
    if not listing.refs and listing.head is None:
        raise SourceError(f"the git repository {display} is empty: it has no commits yet")
    if ref is None or ref == "HEAD":
        if listing.head is None:
            raise SourceError(
                f"the git repository {display} has no HEAD to follow; pass --ref BRANCH"
            )
        return _Target(want=listing.head)
    for name in (ref, f"refs/tags/{ref}", f"refs/heads/{ref}"):
        if name.startswith("refs/") and name in listing.refs:
            return _Target(want=listing.refs[name])
    if _FULL_SHA.fullmatch(ref):
        return _Target(want=ref.lower())
    if _SHORT_SHA.fullmatch(ref):
        return _Target(want=ref.lower(), abbreviated=True)
    branches = sorted(n[len("refs/heads/") :] for n in listing.refs if n.startswith("refs/heads/"))
    tags = sorted(n[len("refs/tags/") :] for n in listing.refs if n.startswith("refs/tags/"))
    known = ", ".join([*(f"branch {b}" for b in branches[:8]), *(f"tag {t}" for t in tags[:8])])
    raise SourceError(
        f"--ref {ref!r} is not a branch, tag or commit of {display}"
        + (f" (it has {known})" if known else "")
    )


def _lookup(remote: str, display: str, ref: str | None, timeout: float) -> _Target:
    """Resolve ``ref`` asking the remote for matching refs only (a repository may have
    thousands); the whole listing is asked for only to explain a miss or an empty one."""
    wanted = ref if ref is not None and ref != "HEAD" else "HEAD"
    listing = _list(remote, display, timeout, [wanted])
    names = (wanted, f"refs/tags/{wanted}", f"refs/heads/{wanted}")
    if (wanted == "HEAD" and listing.head is not None) or any(
        n.startswith("refs/") and n in listing.refs for n in names
    ):
        return _resolve(listing, ref, display)
    if ref is not None and _FULL_SHA.fullmatch(ref):
        return _Target(want=ref.lower())
    return _resolve(_list(remote, display, timeout, []), ref, display)


def remote_revision(*, url: str, ref: str | None, timeout: float) -> str:
    """The full SHA ``ref`` (default: the remote's HEAD) resolves to on ``url`` right now.

    One ``git ls-remote``: nothing is fetched and the cache is not touched. A full SHA is
    returned as it is; an abbreviated one cannot be resolved without fetching and raises.
    Raises :class:`~rune_sync.errors.SourceError` (unreachable, empty, unknown ref).
    """
    display = urls.display_url(url)
    target = _lookup(url, display, ref, timeout)
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
            raise _reach_error(display, exc) from exc
        raise _Damaged(exc.detail) from exc


def _first_fetch(entry: cache.Entry) -> bool:
    return (
        not any((entry.git_dir / "refs" / "rune-sync").glob("*"))
        and not (entry.git_dir / "packed-refs").is_file()
    )


def _obtain(
    entry: cache.Entry, *, remote: str, display: str, target: _Target, timeout: float
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
    target: _Target,
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


def open_git(
    *, remote: str, ref: str | None, path: str | None, cache_root: Path, timeout: float
) -> SourceSnapshot:
    """Resolve ``ref`` on ``remote``, fetch it into the cache and export its tree."""
    display = urls.display_url(remote)
    target = _lookup(remote, display, ref, timeout)
    entry = cache.entry_for(cache_root, display)
    notes: list[str] = []
    with cache.locked(entry, timeout=timeout):
        fresh = not entry.base.exists()
        try:
            try:
                synced = _sync(
                    entry, remote=remote, display=display, target=target, path=path, timeout=timeout
                )
            except _Damaged as exc:
                notes.append(
                    f"the git cache at {entry.base} was damaged "
                    f"({_headline(urls.redact(str(exc)))}); it was deleted and cloned again"
                )
                cache.reset(entry, timeout=timeout)
                fresh = True
                try:
                    synced = _sync(
                        entry,
                        remote=remote,
                        display=display,
                        target=target,
                        path=path,
                        timeout=timeout,
                    )
                except _Damaged as again:
                    raise SourceError(
                        f"cannot fetch {display} into the cache at {entry.base}: "
                        f"{_headline(str(again))}"
                    ) from again
        except gitcmd.GitFailure as exc:
            if exc.no_space and fresh:
                shutil.rmtree(entry.base, ignore_errors=True)
            if exc.no_space:
                raise SourceError(
                    f"no space left on the device while fetching {display} into the cache "
                    f"at {entry.base.parent}; free some space or set {cache.CACHE_ENV}"
                ) from exc
            if exc.timed_out:
                raise SourceError(f"fetching {display} timed out: {exc.detail}") from exc
            raise _reach_error(display, exc) from exc
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
