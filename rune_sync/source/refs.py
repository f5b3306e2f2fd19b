"""What a remote says about its refs: ``git ls-remote``, and resolving ``--ref``.

Owned here: asking the remote for the ref wanted (and for the whole listing only to
explain a miss), resolving a branch, tag (peeled), full or abbreviated SHA, or the
remote's HEAD, and the messages for a remote that cannot be read. Called by
:mod:`rune_sync.source.git`. Must not: touch the cache, or fetch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rune_sync.errors import SourceError
from rune_sync.source import gitcmd

FULL_SHA = re.compile(r"[0-9a-fA-F]{40}")
SHORT_SHA = re.compile(r"[0-9a-fA-F]{4,39}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Listing:
    """``git ls-remote --symref``: HEAD's target and every ref (tags peeled)."""

    head: str | None
    head_ref: str | None
    refs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """What to fetch: a full SHA, or (``abbreviated``) a prefix to find after a full fetch."""

    want: str
    abbreviated: bool = False


def reach_error(display: str, exc: gitcmd.GitFailure) -> SourceError:
    if isinstance(exc, gitcmd.GitMissing):
        return SourceError(exc.detail)
    return SourceError(f"cannot read the git repository {display}: {headline(exc.detail)}")


def headline(detail: str) -> str:
    """The first ``fatal:`` part of git's message (the rest repeats it), else all of it."""
    parts = [p.strip() for p in detail.split("; ") if p.strip()]
    for part in parts:
        if part.lower().startswith("fatal:"):
            return part[len("fatal:") :].strip()
    return "; ".join(parts)


def list_refs(remote: str, display: str, timeout: float, patterns: list[str]) -> Listing:
    try:
        out = gitcmd.run(["ls-remote", "--symref", remote, *patterns], timeout=timeout)
    except gitcmd.GitFailure as exc:
        raise reach_error(display, exc) from exc
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
    return Listing(head=head, head_ref=head_ref, refs=refs)


def resolve(listing: Listing, ref: str | None, display: str) -> Target:
    if not listing.refs and listing.head is None:
        raise SourceError(f"the git repository {display} is empty: it has no commits yet")
    if ref is None or ref == "HEAD":
        if listing.head is None:
            raise SourceError(
                f"the git repository {display} has no HEAD to follow; pass --ref BRANCH"
            )
        return Target(want=listing.head)
    for name in (ref, f"refs/tags/{ref}", f"refs/heads/{ref}"):
        if name.startswith("refs/") and name in listing.refs:
            return Target(want=listing.refs[name])
    if FULL_SHA.fullmatch(ref):
        return Target(want=ref.lower())
    if SHORT_SHA.fullmatch(ref):
        return Target(want=ref.lower(), abbreviated=True)
    branches = sorted(n[len("refs/heads/") :] for n in listing.refs if n.startswith("refs/heads/"))
    tags = sorted(n[len("refs/tags/") :] for n in listing.refs if n.startswith("refs/tags/"))
    known = ", ".join([*(f"branch {b}" for b in branches[:8]), *(f"tag {t}" for t in tags[:8])])
    raise SourceError(
        f"--ref {ref!r} is not a branch, tag or commit of {display}"
        + (f" (it has {known})" if known else "")
    )


def lookup(remote: str, display: str, ref: str | None, timeout: float) -> Target:
    """Resolve ``ref`` asking the remote for matching refs only (a repository may have
    thousands); the whole listing is asked for only to explain a miss or an empty one."""
    wanted = ref if ref is not None and ref != "HEAD" else "HEAD"
    listing = list_refs(remote, display, timeout, [wanted])
    names = (wanted, f"refs/tags/{wanted}", f"refs/heads/{wanted}")
    if (wanted == "HEAD" and listing.head is not None) or any(
        n.startswith("refs/") and n in listing.refs for n in names
    ):
        return resolve(listing, ref, display)
    if ref is not None and FULL_SHA.fullmatch(ref):
        return Target(want=ref.lower())
    return resolve(list_refs(remote, display, timeout, []), ref, display)
