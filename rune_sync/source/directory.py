"""A local directory as a source: check it exists and is a readable folder.

Called by the source opener before loading; raises :class:`~rune_sync.errors.SourceError`
with a message that names the path. A single file is never a source. ``--path`` on a
directory selects a subdirectory of it, which must stay inside it.
"""

from __future__ import annotations

import os
from pathlib import Path

from rune_sync.errors import SourceError


def open_directory(text: str) -> Path:
    """The absolute path of the source directory ``text``, or a SourceError saying why not."""
    path = Path(text).expanduser()
    if not path.exists():
        raise SourceError(f"source {text!r} does not exist")
    if not path.is_dir():
        raise SourceError(
            f"source {text!r} is a file; a source is a directory or a git repository URL"
        )
    if not os.access(path, os.R_OK | os.X_OK):
        raise SourceError(f"source {text!r} cannot be read (permission denied)")
    return path.absolute()


def open_subdirectory(root: Path, path: str, *, shown: str) -> Path:
    """``root/path`` (``path`` already normalised: relative, no ``..``), which must be a
    directory that does not lead outside ``root`` through a symbolic link."""
    candidate = root / path
    if not candidate.is_dir():
        what = "does not exist" if not candidate.exists() else "is not a directory"
        raise SourceError(f"--path {path} {what} in source {shown!r}")
    if not candidate.resolve().is_relative_to(root.resolve()):
        raise SourceError(f"--path {path} leads outside source {shown!r}")
    return open_directory(str(candidate))


def is_repository(path: Path) -> bool:
    """A git working tree (``.git`` inside) or a bare repository."""
    if (path / ".git").exists():
        return True
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()
