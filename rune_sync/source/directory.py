"""A local directory as a source: check it exists and is a readable folder.

Called by the CLI before loading; raises :class:`~rune_sync.errors.SourceError` with a
message that names the path. A single file is never a source.
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
            f"source {text!r} is a file; a source is a directory (or, later, a git repository)"
        )
    if not os.access(path, os.R_OK | os.X_OK):
        raise SourceError(f"source {text!r} cannot be read (permission denied)")
    return path.absolute()
