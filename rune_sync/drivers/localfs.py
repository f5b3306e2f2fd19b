"""Filesystem primitives of the directory drivers: confined walks, bounded removal.

Owned here: the ``<root>/<namespace>/<name>`` layout of :class:`NamespacedTree`, reached
from the root through directory file descriptors opened with ``O_NOFOLLOW``, so no
component below the root can send us elsewhere through a symlink; bounded removal of an
entry under such a descriptor that never follows a symlink or crosses a mount; and a
read-only look at an entry (:meth:`NamespacedTree.observe`, :func:`observe_path`). Used by
``local.py`` and ``local_host.py``.

It raises ``OSError`` and :class:`Refused` only; drivers turn them into driver errors
with context. It must not decide which roots or names are allowed: callers do, before
calling. The root itself is resolved (it may be a symlink to another disk); nothing
below it is ever followed.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rune_sync.drivers.base import Observation, ObservedKind
from rune_sync.spec import names

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_DEPTH = 512
"""Deepest nesting removed; each level holds one open descriptor."""


class Refused(Exception):
    """An entry on the way is a symlink or not a directory, so we will not go on."""


def open_dir(parent_fd: int, name: str, *, shown_as: str) -> int:
    """Open directory ``name`` under ``parent_fd`` without following a symlink there.

    Raises ``FileNotFoundError`` when it is missing and :class:`Refused` when it is a
    symlink or something other than a directory.
    """
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)  # re-raises if missing
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(name, dir_fd=parent_fd)
            raise Refused(f"{shown_as} is a symlink (to {target})") from exc
        if not stat.S_ISDIR(st.st_mode):
            raise Refused(f"{shown_as} exists and is not a directory") from exc
        raise


def make_dir(parent_fd: int, name: str, *, mode: int, shown_as: str) -> int:
    """Open directory ``name`` under ``parent_fd``, creating it with exactly ``mode``.

    The mode is set with ``fchmod`` after creation so the umask cannot narrow it; an
    existing directory keeps its mode (the operator may have changed it on purpose).
    """
    try:
        os.mkdir(name, mode, dir_fd=parent_fd)
    except FileExistsError:
        return open_dir(parent_fd, name, shown_as=shown_as)
    fd = open_dir(parent_fd, name, shown_as=shown_as)
    os.fchmod(fd, mode)
    return fd


def remove_entry(parent_fd: int, name: str, *, shown_as: str) -> bool:
    """Remove directory ``name`` under ``parent_fd`` and everything below it.

    Returns ``False`` when it was already gone. Refuses a symlink or a non-directory
    in its place. Below it, symlinks are removed as links and never followed (every
    directory is opened ``O_NOFOLLOW`` relative to its parent's descriptor), and a
    directory on another filesystem (a mount point) is refused, like
    ``rm -rf --one-file-system``; ``shutil.rmtree`` would cross into it.
    """
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(name, dir_fd=parent_fd)
        raise Refused(f"{shown_as} is a symlink (to {target}); refusing to remove it")
    if not stat.S_ISDIR(st.st_mode):
        raise Refused(f"{shown_as} is not a directory; refusing to remove it")
    _remove_tree(parent_fd, name, device=st.st_dev, shown_as=shown_as, depth=0)
    return True


def _remove_tree(parent_fd: int, name: str, *, device: int, shown_as: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise Refused(f"{shown_as} is nested deeper than {MAX_DEPTH} directories")
    with closing_fd(os.open(name, _DIR_FLAGS, dir_fd=parent_fd)) as fd:
        if os.fstat(fd).st_dev != device:
            raise Refused(f"{shown_as} is on another filesystem (a mount point); not removing it")
        with os.scandir(fd) as it:
            entries = list(it)
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                child = f"{shown_as}/{entry.name}"
                _remove_tree(fd, entry.name, device=device, shown_as=child, depth=depth + 1)
            else:
                os.unlink(entry.name, dir_fd=fd)
    os.rmdir(name, dir_fd=parent_fd)


def mounts_within(path: str) -> list[str]:
    """Mount points at or below ``path`` (bind mounts included), from the mount table.

    Bind mounts of the same filesystem keep the device number, so only the mount
    table shows them. Without ``/proc/self/mountinfo`` (not Linux) this finds none
    and the device check of :func:`remove_entry` still applies.
    """
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as table:
            lines = table.readlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 4:
            # Mount points escape space, tab, newline and backslash as octal (\040).
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            if point == path or point.startswith(path.rstrip("/") + "/"):
                found.append(point)
    return found


@contextmanager
def closing_fd(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class NamespacedTree:
    """Entries ``<root>/<namespace>/<name>`` whose namespace and name are DNS-1123 labels.

    Labels cannot start with a dot or contain ``/`` or ``..``, so dot-named temporary
    entries and a snapshot root kept at ``<root>/.snapshots`` are never entries.
    ``setting`` names the runefile key in messages.
    """

    root: str
    setting: str

    def real_root(self) -> str:
        """The root with symlinks resolved; a root resolving to ``/`` is refused."""
        real = os.path.realpath(self.root)
        if real == os.sep:
            raise Refused(f"{self.setting} {self.root} resolves to /; refusing to use it")
        return real

    def path(self, namespace: str, name: str) -> str:
        return os.path.join(self.real_root(), namespace, name)

    def parse(self, handle: str) -> tuple[str, str] | None:
        """``(namespace, name)`` when ``handle`` is exactly an entry path, else ``None``."""
        return _split_entry(handle, self.real_root())

    def observe(self, handle: str) -> Observation | None:
        """What stands at the entry ``handle`` now; ``None`` when it is not an entry.

        Read-only, so it goes by path — one ``realpath`` and two ``lstat`` calls, as
        refresh observes every volume on every plan. A namespace directory replaced by
        a symlink or a file is reported as such, never followed.
        """
        real = self.real_root()
        parts = _split_entry(handle, real)
        if parts is None:
            return None
        shown = os.path.join(real, parts[0])
        try:
            st = os.stat(shown, follow_symlinks=False)
        except FileNotFoundError:
            return Observation(kind=ObservedKind.MISSING)
        if stat.S_ISLNK(st.st_mode):
            detail = f"{shown} is a symlink (to {os.readlink(shown)})"
            return Observation(kind=ObservedKind.NOT_A_DIRECTORY, detail=detail)
        if not stat.S_ISDIR(st.st_mode):
            detail = f"{shown} exists and is not a directory"
            return Observation(kind=ObservedKind.NOT_A_DIRECTORY, detail=detail)
        return observe_path(handle)

    @contextmanager
    def open_namespace(self, namespace: str) -> Iterator[int | None]:
        """The namespace directory's fd, or ``None`` when it or the root is missing."""
        real = self.real_root()
        root_fd = _open_or_none(lambda: os.open(real, _DIR_FLAGS))
        if root_fd is None:
            yield None
            return
        with closing_fd(root_fd):
            shown = os.path.join(real, namespace)
            fd = _open_or_none(lambda: open_dir(root_fd, namespace, shown_as=shown))
            if fd is None:
                yield None
                return
            with closing_fd(fd):
                yield fd

    @contextmanager
    def create_namespace(self, namespace: str) -> Iterator[int]:
        """The namespace directory's fd; the root and it are made (mode 0750) if missing."""
        real = self.real_root()
        if not os.path.lexists(real):
            parent, base = os.path.split(real)
            os.makedirs(parent, exist_ok=True)
            with closing_fd(os.open(parent, _DIR_FLAGS)) as parent_fd:
                os.close(make_dir(parent_fd, base, mode=0o750, shown_as=real))
        with closing_fd(os.open(real, _DIR_FLAGS)) as root_fd:
            shown = os.path.join(real, namespace)
            with closing_fd(make_dir(root_fd, namespace, mode=0o750, shown_as=shown)) as fd:
                yield fd


def _split_entry(handle: str, real_root: str) -> tuple[str, str] | None:
    if not handle.startswith(os.sep) or os.path.normpath(handle) != handle:
        return None
    parent, name = os.path.split(handle)
    root, namespace = os.path.split(parent)
    if root != real_root:
        return None
    if not (names.is_dns1123_label(namespace) and names.is_dns1123_label(name)):
        return None
    return namespace, name


def _open_or_none(opener: Callable[[], int]) -> int | None:
    try:
        return opener()
    except FileNotFoundError:
        return None


@dataclass(frozen=True, slots=True)
class Census:
    """What a tree holds: entries that are not directories, and bytes in regular files."""

    files: int
    bytes: int


def census(dir_fd: int) -> Census:
    """Count the tree below ``dir_fd`` without following symlinks (``os.fwalk`` is fd-based).

    Every non-directory entry counts as a file (hard links once per name, as ``cp -a``
    copies them); unreadable subdirectories raise, so a census is never a guess.
    """
    files = 0
    total = 0

    def fail(exc: OSError) -> None:
        raise exc

    for _dirpath, _dirs, entries, fd in os.fwalk(".", dir_fd=dir_fd, onerror=fail):
        for name in entries:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            files += 1
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return Census(files=files, bytes=total)


def observe_path(path: str) -> Observation:
    """What is at the absolute ``path``: one ``lstat`` (its parents are followed)."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return Observation(kind=ObservedKind.MISSING)
    except NotADirectoryError:
        return Observation(kind=ObservedKind.MISSING, detail="a parent is not a directory")
    return _observation(st, path, parent_fd=None)


def _observation(st: os.stat_result, name: str, *, parent_fd: int | None) -> Observation:
    fingerprint = f"{st.st_ino}:{st.st_mtime_ns}"
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(name, dir_fd=parent_fd)
        return Observation(
            kind=ObservedKind.SYMLINK, fingerprint=fingerprint, detail=f"symlink to {target}"
        )
    if not stat.S_ISDIR(st.st_mode):
        return Observation(kind=ObservedKind.NOT_A_DIRECTORY, fingerprint=fingerprint)
    return Observation(kind=ObservedKind.DIRECTORY, fingerprint=fingerprint)
