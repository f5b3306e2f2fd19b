"""From what the user typed to a :class:`~rune_sync.source.base.SourceSnapshot`.

Owned here: deciding what SOURCE is — a git URL, a local repository given with ``--ref``,
or a plain directory — and checking ``--path``. The rules for a plain directory:
``--path SUBDIR`` selects that subdirectory (it must exist and stay inside); ``--ref`` is
an error unless the directory is a git repository (then it is read as a repository at
that ref, not as a working tree). Called by the CLI pipeline and watch. Must not: load
specs.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from rune_sync.errors import SourceError
from rune_sync.source import cache, directory, git, gitcmd, urls
from rune_sync.source.base import SourceKind, SourceRequest, SourceSnapshot


def normalise_path(path: str | None) -> str | None:
    """``--path`` as a clean relative POSIX path (``infra/`` → ``infra``; ``.`` → None)."""
    if path is None:
        return None
    text = path.strip()
    if not text:
        raise SourceError("--path is empty; give a subdirectory of the source")
    if PurePosixPath(text).is_absolute():
        raise SourceError(f"--path {path!r} must be relative to the source root")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SourceError(f"--path {path!r} must stay inside the source (no '..')")
    return "/".join(parts) or None


def open_source(
    request: SourceRequest, *, cache_root: Path | None = None, timeout: float | None = None
) -> SourceSnapshot:
    """Open the source ``request`` names; raises SourceError with a message that says why
    it cannot be read (never an empty source in place of one that failed)."""
    path = normalise_path(request.path)
    seconds = timeout if timeout is not None else gitcmd.timeout_from_env()
    where = cache_root or cache.cache_root()
    if urls.is_git_url(request.source):
        return git.open_git(
            remote=request.source, ref=request.ref, path=path, cache_root=where, timeout=seconds
        )
    base = directory.open_directory(request.source)
    if request.ref is not None:
        if not directory.is_repository(base):
            raise SourceError(
                f"--ref {request.ref!r} needs a git repository, and {request.source!r} is a "
                "plain directory (for a subdirectory of it, use --path alone)"
            )
        return git.open_git(
            remote=urls.file_url(base),
            ref=request.ref,
            path=path,
            cache_root=where,
            timeout=seconds,
        )
    root = base if path is None else directory.open_subdirectory(base, path, shown=request.source)
    return SourceSnapshot(root=root, kind=SourceKind.DIRECTORY, url=str(root))
