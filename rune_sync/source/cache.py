"""The cache of git clones: where it is, one entry per repository, its lock and trees.

Owned here: the cache location (``RUNE_SYNC_CACHE_DIR``, else ``$XDG_CACHE_HOME/rune-sync``,
else ``~/.cache/rune-sync``), the layout of an entry, its OS lock, resetting a damaged
entry, and exporting a tree of a commit into a directory of its own::

    <cache>/<slug>-<hash>.lock        flock sidecar: one process works on the entry at a time
    <cache>/<slug>-<hash>/git/        bare repository, fetched incrementally
    <cache>/<slug>-<hash>/trees/<id>/ a tree exported once, never modified, renamed in whole

Called by :mod:`rune_sync.source.git` and :mod:`rune_sync.source.history`. Must not: run
network operations (that is git.py's job), or delete anything outside its entry.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rune_sync.errors import SourceError
from rune_sync.source import gitcmd, urls

CACHE_ENV = "RUNE_SYNC_CACHE_DIR"
TREE_MAX_IDLE = 24 * 3600.0
"""Seconds an exported tree may go unused before a later run removes it."""


def cache_root() -> Path:
    """Where clones are cached (not created here)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "rune-sync"


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One repository's place in the cache."""

    base: Path

    @property
    def git_dir(self) -> Path:
        return self.base / "git"

    @property
    def trees(self) -> Path:
        return self.base / "trees"

    @property
    def lock_path(self) -> Path:
        return self.base.with_name(self.base.name + ".lock")


def entry_for(root: Path, url: str) -> Entry:
    """The entry of the repository at ``url`` (credentials never reach the name)."""
    canonical = urls.canonical(url)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", canonical.split("://")[-1]).strip("-.")[-40:]
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return Entry(base=root / f"{slug or 'repo'}-{digest}")


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceError(
            f"cannot create the git cache directory {path}: {exc.strerror or exc} "
            f"(set {CACHE_ENV} to another place)"
        ) from exc


@contextlib.contextmanager
def locked(entry: Entry, *, timeout: float) -> Iterator[None]:
    """Hold the entry's lock (waiting up to ``timeout`` seconds for another run)."""
    _mkdir(entry.base.parent)
    try:
        fd = os.open(entry.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise SourceError(
            f"cannot open the git cache lock {entry.lock_path}: {exc.strerror or exc}"
        ) from exc
    try:
        deadline = time.monotonic() + timeout
        pause = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise SourceError(
                        f"cannot lock the git cache entry {entry.base}: {exc.strerror}"
                    ) from exc
            if time.monotonic() >= deadline:
                raise SourceError(
                    f"another rune-sync has been using the git cache entry {entry.base} "
                    f"for over {timeout:g}s; try again later"
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def is_complete(entry: Entry) -> bool:
    """The entry's bare repository has its HEAD and object store."""
    return (entry.git_dir / "HEAD").is_file() and (entry.git_dir / "objects").is_dir()


def ensure(entry: Entry, *, timeout: float) -> bool:
    """Create the entry's bare repository unless it is there; True when created."""
    if is_complete(entry):
        return False
    if entry.base.exists():
        shutil.rmtree(entry.base, ignore_errors=True)
    _mkdir(entry.base)
    try:
        gitcmd.run(
            ["init", "--bare", "--quiet", "--template=", str(entry.git_dir)], timeout=timeout
        )
    except gitcmd.GitMissing as exc:
        raise SourceError(exc.detail) from exc
    except gitcmd.GitFailure as exc:
        raise SourceError(f"cannot create a git cache in {entry.base}: {exc.detail}") from exc
    return True


def reset(entry: Entry, *, timeout: float) -> None:
    """Delete a damaged entry and create it empty (held under the entry's lock)."""
    shutil.rmtree(entry.base, ignore_errors=True)
    ensure(entry, timeout=timeout)


def tree_dir(entry: Entry, *, tree_id: str) -> Path:
    return entry.trees / tree_id


def export(entry: Entry, *, tree_id: str, timeout: float) -> Path:
    """Check out ``tree_id`` into ``trees/<tree_id>`` unless it is there already.

    The files are written to a dot-named temporary directory and renamed in whole, so a
    tree that exists is complete. Raises :class:`~rune_sync.source.gitcmd.GitFailure`
    when git cannot read the objects (a damaged cache).
    """
    final = tree_dir(entry, tree_id=tree_id)
    if final.is_dir():
        _touch(final)
        return final
    _mkdir(entry.trees)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=entry.trees))
    index = work.with_name(work.name + ".index")
    try:
        env = {"GIT_INDEX_FILE": str(index)}
        gitcmd.run(["read-tree", tree_id], git_dir=entry.git_dir, timeout=timeout, env=env)
        gitcmd.run(
            ["--work-tree", str(work), "checkout-index", "--all", "--force"],
            git_dir=entry.git_dir,
            cwd=work,
            timeout=timeout,
            env=env,
        )
        os.chmod(work, 0o700)
        os.rename(work, final)
    except OSError as exc:
        raise gitcmd.GitFailure(
            f"cannot write {final}: {exc.strerror or exc}", status=None
        ) from exc
    finally:
        index.unlink(missing_ok=True)
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return final


def _touch(path: Path) -> None:
    with contextlib.suppress(OSError):  # only ages the tree for pruning; harmless if it fails
        os.utime(path)


def prune(entry: Entry, *, keep: Path, now: float | None = None) -> None:
    """Remove exported trees unused for :data:`TREE_MAX_IDLE`, and leftovers of
    interrupted exports; never ``keep``."""
    moment = time.time() if now is None else now
    try:
        children = list(entry.trees.iterdir())
    except OSError:
        return  # nothing exported yet
    for child in children:
        if child == keep:
            continue
        try:
            idle = moment - child.stat().st_mtime
        except OSError:
            continue
        if idle > TREE_MAX_IDLE or (child.name.startswith(".export-") and idle > 3600):
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
