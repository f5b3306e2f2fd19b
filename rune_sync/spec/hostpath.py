"""Static checks of a ``local-host`` ``hostPath`` against ``hostPathAllowlist``.

Pure functions, no I/O and no symlink resolution, so validation can run them on specs
alone (DESIGN §3); the ``local-host`` driver runs them and then the same containment
test again on resolved paths. Paths are compared by whole components: ``/srv/rune``
covers ``/srv/rune`` and ``/srv/rune/a`` but not ``/srv/rune2``; a trailing ``/`` is
ignored; an empty allowlist denies every path. This module must not touch the
filesystem.
"""

from __future__ import annotations

from collections.abc import Sequence

ALLOWLIST_SETTING = "hostPathAllowlist"


def components(path: str) -> tuple[str, ...]:
    """The components of an absolute path, ignoring empty and ``.`` ones."""
    return tuple(part for part in path.split("/") if part not in ("", "."))


def is_within(path: str, root: str) -> bool:
    """True when ``path`` equals ``root`` or lies below it, compared by components."""
    inner, outer = components(path), components(root)
    return inner[: len(outer)] == outer


def describe_allowlist(allowlist: Sequence[str]) -> str:
    """``hostPathAllowlist [/srv/rune, /data]`` (or says that it is empty)."""
    if not allowlist:
        return f"{ALLOWLIST_SETTING} is empty, which denies every host path"
    return f"{ALLOWLIST_SETTING} [{', '.join(allowlist)}]"


def usable_entries(allowlist: Sequence[str]) -> list[str]:
    """The allowlist entries that can match: absolute, without ``..`` components."""
    return [entry for entry in allowlist if entry.startswith("/") and ".." not in entry.split("/")]


def host_path_problem(path: str, allowlist: Sequence[str]) -> str | None:
    """Why ``path`` may not be used as a host path, or ``None`` when it may.

    The path must be absolute, have no ``..`` component, and lie within one of the
    :func:`usable_entries` of the allowlist. Symlinks are not resolved here.
    """
    if not path:
        return "hostPath is empty"
    if not path.startswith("/"):
        return f"hostPath {path!r} is not absolute"
    if ".." in path.split("/"):
        return f"hostPath {path!r} has a '..' component"
    if not any(is_within(path, root) for root in usable_entries(allowlist)):
        return f"hostPath {path} is not under {describe_allowlist(allowlist)}"
    return None
