"""Git URLs: which SOURCE strings are repositories, and how they are shown.

Owned here: recognising git URLs (``https://``, ``http://``, ``ssh://``, ``git://``,
``file://`` and scp-like ``user@host:path``), removing credentials from URLs and from any
text that may quote one, and the canonical form that decides whether two URLs name the
same repository (the cache key, the rollback check). Called by the git source and the
CLI. Must not: touch the network or the disk.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SCHEMES = ("https://", "http://", "ssh://", "git://", "file://")
_SCP = re.compile(r"^[A-Za-z0-9._~-]+@[A-Za-z0-9.-]+:(?!//)[^\s]+$")
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^/@\s]+)@")


def is_git_url(text: str) -> bool:
    """True for the URL forms DESIGN §2 lists (a local path is not a URL)."""
    lowered = text.lower()
    return lowered.startswith(SCHEMES) or bool(_SCP.match(text))


def _strip_info(match: re.Match[str]) -> str:
    scheme = match["scheme"].lower()
    info = match["info"]
    if ":" in info or scheme in ("http://", "https://"):
        # a password, or an HTTP user name that is often a token: never shown
        return match["scheme"]
    return match[0]


def redact(text: str) -> str:
    """``text`` with every ``user:password@`` (and HTTP ``user@``) of a URL removed."""
    return _USERINFO.sub(_strip_info, text)


def display_url(url: str) -> str:
    """The URL as it may be printed and stored: no credentials."""
    return redact(url)


def file_url(path: Path) -> str:
    """A local repository path as a ``file://`` URL."""
    return path.resolve().as_uri()


def canonical(url: str) -> str:
    """The form two URLs of one repository share: no credentials, lower-case scheme and
    host, no trailing ``/`` or ``.git``."""
    shown = display_url(url).strip()
    if "://" in shown:
        parts = urlsplit(shown)
        shown = urlunsplit(
            (parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, "")
        )
    shown = shown.rstrip("/")
    return shown[:-4] if shown.endswith(".git") else shown


def same_repository(a: str, b: str) -> bool:
    return canonical(a) == canonical(b)
