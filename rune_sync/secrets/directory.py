"""Secrets from a directory: the file ``DIR/<namespace>/<name>/<key>`` holds the value.

``DIR`` comes from ``--secrets-dir`` or ``RUNE_SYNC_SECRETS_DIR``. The file's content is
the value, less exactly one trailing newline (``echo tok > file`` writes ``tok``). A
missing file is not an error here — the next source is asked. A file that must not be
used is refused with :class:`~rune_sync.secrets.store.UnreadableSecret`, naming its
path: one that leads outside ``DIR`` (through a symlink of the file or of a folder),
one that cannot be read, is not a regular file, is larger than 1 MiB, or is not UTF-8
text. Symlinks that stay inside ``DIR`` are followed (Kubernetes-style ``..data``
layouts). ``DIR`` or a file it serves that grants group or others any access gets one
warning per run (RS403).

Only reads; never prints, logs or keeps a value.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from rune_sync.diagnostics import Diagnostic, Location, Severity
from rune_sync.secrets.notices import Notices
from rune_sync.secrets.store import Found, Missing, UnreadableSecret
from rune_sync.spec.secrets import SecretValue

MAX_BYTES = 1024 * 1024
_OTHERS = 0o077
_NOT_FILE_NAMES = frozenset({".", ".."})


class DirectorySource:
    """``root`` is the secrets directory, or None when none is configured."""

    def __init__(self, root: Path | None, *, notices: Notices) -> None:
        self.root = root
        self._notices = notices

    def find(self, namespace: str, name: str, key: str) -> Found | Missing:
        root = self.root
        if root is None:
            return Missing(("no secrets directory (--secrets-dir or RUNE_SYNC_SECRETS_DIR)",))
        if not root.is_dir():
            return Missing((f"no secrets directory {root} (it is not a directory)",))
        self._check_mode(root)
        path = root / namespace / name / key
        if key in _NOT_FILE_NAMES:
            return Missing((f"no file for key {key!r} in {root} (not a file name)",))
        try:
            os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return Missing((f"no file {path}",))
        except OSError as exc:
            raise UnreadableSecret(f"cannot read {path}: {_why(exc)}") from None
        real = Path(os.path.realpath(path))
        real_root = Path(os.path.realpath(root))
        if real_root not in real.parents:
            raise UnreadableSecret(
                f"{path} leads outside the secrets directory {root} through a symlink; "
                "rune-sync reads only files inside it"
            )
        text = self._read(path, real)
        return Found(SecretValue(text.removesuffix("\n")), f"file {path}")

    def _read(self, path: Path, real: Path) -> str:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(real, flags)
        except OSError as exc:
            raise UnreadableSecret(f"cannot read {path}: {_why(exc)}") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise UnreadableSecret(f"{path} is not a regular file")
            if info.st_size > MAX_BYTES:
                raise UnreadableSecret(f"{path} is larger than {MAX_BYTES} bytes")
            self._check_file_mode(path, info.st_mode)
            data = _read_all(fd, path)
        except OSError as exc:
            raise UnreadableSecret(f"cannot read {path}: {_why(exc)}") from None
        finally:
            os.close(fd)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise UnreadableSecret(f"{path} is not UTF-8 text") from None

    def _check_mode(self, root: Path) -> None:
        try:
            mode = os.stat(root).st_mode
        except OSError:
            return  # the lookup that follows reports what is wrong with the directory
        if mode & _OTHERS:
            self._warn(root, mode, "the secrets directory")

    def _check_file_mode(self, path: Path, mode: int) -> None:
        if mode & _OTHERS:
            self._warn(path, mode, "secret file")

    def _warn(self, path: Path, mode: int, what: str) -> None:
        self._notices.add(
            "secrets-directory-mode",
            Diagnostic(
                code="RS403",
                severity=Severity.WARNING,
                location=Location(file=str(path)),
                message=(
                    f"{what} is accessible to group or others "
                    f"(mode {stat.S_IMODE(mode):04o}); keep secrets readable by their "
                    f"owner only: chmod -R go-rwx {self.root}"
                ),
            ),
        )


def _read_all(fd: int, path: Path) -> bytes:
    """The file's bytes; refuses one that grew past the limit after ``fstat``."""
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > MAX_BYTES:
            raise UnreadableSecret(f"{path} is larger than {MAX_BYTES} bytes")
        chunks.append(chunk)


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
