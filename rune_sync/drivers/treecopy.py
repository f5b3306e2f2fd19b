"""Copy a directory tree the way ``cp -a`` does, and publish it atomically.

Owned here: :func:`copy_into`, used by the ``local`` driver for snapshots and restores.
It copies through directory file descriptors, never following a symlink in the source
(symlinks are copied as links), and keeps modes, ownership (where permitted), access and
modification times, extended attributes and hard links (files sharing an inode in the
source share one in the copy). File data moves with ``copy_file_range`` (reflinks on
filesystems that can), else ``sendfile``, else read/write.

The copy is written to a dot-named temporary directory beside the destination and
renamed into place only when complete, so a destination that exists is a whole copy.
On failure the temporary directory is removed and the ``OSError`` propagates; turning
it into a driver error is the caller's job. This module must not decide where copies
go or which names are allowed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable

from rune_sync.drivers import localfs

MAX_DEPTH = 256
"""Deepest directory nesting copied; each level holds two open descriptors."""

_CHUNK = 1 << 30
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Errors that mean "this copy method is not available here", not "the copy failed".
_UNSUPPORTED = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF}
# Errors from preserving ownership or attributes that cp -a also tolerates silently:
# an unprivileged user cannot give files away or set trusted.* attributes.
_NOT_PERMITTED = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP}


def partial_name(name: str) -> str:
    """The temporary entry a copy to ``name`` is written to (dot-named).

    It is fixed rather than random so a leftover from an interrupted copy is found
    without listing a directory that may hold thousands of volumes.
    """
    return f".{name}.partial"


def copy_into(src_fd: int, parent_fd: int, name: str) -> None:
    """Copy the directory ``src_fd`` to a new directory ``name`` under ``parent_fd``.

    ``name`` must not exist. A leftover temporary entry of an interrupted earlier copy
    is removed first: the state lock makes this process the only writer, so no other
    copy can be using it. Raises ``OSError`` (ENOSPC, EACCES, ...) after removing the
    temporary directory; then nothing named ``name`` was created.
    """
    tmp = partial_name(name)
    localfs.remove_entry(parent_fd, tmp, shown_as=tmp)
    os.mkdir(tmp, 0o700, dir_fd=parent_fd)
    try:
        with localfs.closing_fd(os.open(tmp, _DIR_FLAGS, dir_fd=parent_fd)) as tmp_fd:
            _Copier(tmp_fd).copy_dir(src_fd, tmp_fd, rel="", depth=0)
        os.rename(tmp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
    except BaseException:
        # The original error matters more; a dot-named leftover is removed by the next try.
        with contextlib.suppress(OSError, localfs.Refused):
            localfs.remove_entry(parent_fd, tmp, shown_as=tmp)
        raise


class _Copier:
    """One copy: remembers where each multiply-linked source inode was copied to."""

    def __init__(self, dst_root_fd: int) -> None:
        self._dst_root_fd = dst_root_fd
        self._linked: dict[tuple[int, int], str] = {}

    def copy_dir(self, src_fd: int, dst_fd: int, *, rel: str, depth: int) -> None:
        """Copy the entries of ``src_fd`` into ``dst_fd``, then the directory's metadata."""
        if depth > MAX_DEPTH:
            raise OSError(errno.ELOOP, f"directories nested deeper than {MAX_DEPTH} levels", rel)
        with os.scandir(src_fd) as it:
            entries = list(it)
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            child = os.path.join(rel, entry.name)
            if stat.S_ISDIR(st.st_mode):
                self._copy_subdir(src_fd, dst_fd, entry.name, rel=child, depth=depth)
            elif stat.S_ISREG(st.st_mode):
                self._copy_file(src_fd, dst_fd, entry.name, st, rel=child)
            elif stat.S_ISLNK(st.st_mode):
                target = os.readlink(entry.name, dir_fd=src_fd)
                os.symlink(target, entry.name, dir_fd=dst_fd)
                _set_link_meta(dst_fd, entry.name, st)
            else:
                # FIFOs, sockets and device nodes are recreated, as cp -a does.
                os.mknod(entry.name, st.st_mode, st.st_rdev, dir_fd=dst_fd)
                _set_node_meta(dst_fd, entry.name, st)
        _set_meta(src_fd, dst_fd, os.fstat(src_fd))

    def _copy_subdir(self, src_fd: int, dst_fd: int, name: str, *, rel: str, depth: int) -> None:
        os.mkdir(name, 0o700, dir_fd=dst_fd)
        with (
            localfs.closing_fd(os.open(name, _DIR_FLAGS, dir_fd=src_fd)) as sub_src,
            localfs.closing_fd(os.open(name, _DIR_FLAGS, dir_fd=dst_fd)) as sub_dst,
        ):
            self.copy_dir(sub_src, sub_dst, rel=rel, depth=depth + 1)

    def _copy_file(
        self, src_fd: int, dst_fd: int, name: str, st: os.stat_result, *, rel: str
    ) -> None:
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = self._linked.get(key)
            if first is not None:
                os.link(
                    first,
                    name,
                    src_dir_fd=self._dst_root_fd,
                    dst_dir_fd=dst_fd,
                    follow_symlinks=False,
                )
                return
            self._linked[key] = rel
        with (
            localfs.closing_fd(os.open(name, _READ_FLAGS, dir_fd=src_fd)) as fin,
            localfs.closing_fd(os.open(name, _WRITE_FLAGS, 0o600, dir_fd=dst_fd)) as fout,
        ):
            _copy_data(fin, fout)
            _set_meta(fin, fout, st)


def _copy_data(fin: int, fout: int) -> None:
    """Copy all of ``fin`` to ``fout`` using the fastest call the kernel accepts."""
    os.posix_fadvise(fin, 0, 0, os.POSIX_FADV_SEQUENTIAL)  # read-ahead, as cp does
    copied = 0
    try:
        while n := os.copy_file_range(fin, fout, _CHUNK):
            copied += n
        return
    except OSError as exc:
        if copied or exc.errno not in _UNSUPPORTED:
            raise
    try:
        while n := os.sendfile(fout, fin, None, _CHUNK):
            copied += n
        return
    except OSError as exc:
        if copied or exc.errno not in _UNSUPPORTED:
            raise
    while chunk := os.read(fin, 1 << 20):
        view = memoryview(chunk)
        while view:
            view = view[os.write(fout, view) :]


def _set_meta(src_fd: int, dst_fd: int, st: os.stat_result) -> None:
    """Extended attributes, owner, mode and times of ``st`` onto the open ``dst_fd``."""
    try:
        attrs = os.listxattr(src_fd)
    except OSError as exc:
        if exc.errno not in _NOT_PERMITTED:
            raise
        attrs = []
    for attr in attrs:
        try:
            os.setxattr(dst_fd, attr, os.getxattr(src_fd, attr))
        except OSError as exc:
            if exc.errno not in _NOT_PERMITTED:
                raise
    _tolerate_not_permitted(lambda: os.fchown(dst_fd, st.st_uid, st.st_gid))
    # After chown: changing the owner clears set-user-ID and set-group-ID bits.
    os.fchmod(dst_fd, stat.S_IMODE(st.st_mode))
    os.utime(dst_fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _set_link_meta(dir_fd: int, name: str, st: os.stat_result) -> None:
    _tolerate_not_permitted(
        lambda: os.chown(name, st.st_uid, st.st_gid, dir_fd=dir_fd, follow_symlinks=False)
    )
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dir_fd, follow_symlinks=False)


def _set_node_meta(dir_fd: int, name: str, st: os.stat_result) -> None:
    _tolerate_not_permitted(
        lambda: os.chown(name, st.st_uid, st.st_gid, dir_fd=dir_fd, follow_symlinks=False)
    )
    os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dir_fd)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dir_fd, follow_symlinks=False)


def _tolerate_not_permitted(call: Callable[[], None]) -> None:
    try:
        call()
    except OSError as exc:
        if exc.errno not in _NOT_PERMITTED:
            raise
