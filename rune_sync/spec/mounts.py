"""Mount-path rules of a service (seed 000 *Validation*, seed 001 *Security defaults*).

A volume ``mountPath`` is unique within its service (RS205), does not overlap a
``secretMounts``/``configMounts`` path (RS206), and is not in the bind-mount blocklist
(RS203). Blocklist reading (DESIGN §3): ``/`` and ``/etc`` are blocked as exact paths —
a mount below ``/etc`` is allowed — while ``/proc``, ``/sys`` and
``/var/run/docker.sock`` also block everything below them. Absolute paths are the
schema's job (RS202).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Iterator

from rune_sync.diagnostics import Diagnostic, Location
from rune_sync.spec.model import Service

BLOCKED_EXACT = frozenset({"/", "/etc"})
BLOCKED_TREES = ("/proc", "/sys", "/var/run/docker.sock")


def normalise(path: str) -> str:
    """Collapse '//', '.' and a trailing '/' so '/etc/' and '//etc' compare as '/etc'."""
    clean = posixpath.normpath("/" + path.lstrip("/"))
    return clean


def blocked_reason(path: str) -> str | None:
    """Why ``path`` may not be mounted over, or None."""
    clean = normalise(path)
    if clean in BLOCKED_EXACT:
        return f"mounting over {clean} is refused"
    for tree in BLOCKED_TREES:
        if clean == tree or clean.startswith(tree + "/"):
            return f"{clean} is at or below {tree}, which may not be mounted over"
    return None


def overlaps(a: str, b: str) -> bool:
    """True when one path equals the other or lies inside it."""
    x, y = normalise(a), normalise(b)
    return x == y or x.startswith(y.rstrip("/") + "/") or y.startswith(x.rstrip("/") + "/")


def _service_mounts(svc: Service) -> Iterator[tuple[str, int, str, str]]:
    """(field, index, name, path) for every mount of the service."""
    for i, m in enumerate(svc.volumes):
        yield "volumes", i, m.name, m.mount_path
    for i, n in enumerate(svc.secret_mounts):
        yield "secretMounts", i, n.name, n.mount_path
    for i, n in enumerate(svc.config_mounts):
        yield "configMounts", i, n.name, n.mount_path


def check(services: Iterable[Service]) -> Iterator[Diagnostic]:
    """RS203, RS205 and RS206 over every service."""
    for svc in services:
        entries = [e for e in _service_mounts(svc) if e[3].startswith("/")]

        def where(field: str, index: int, svc: Service = svc) -> Location | None:
            return svc.origin.locate(field, index, "mountPath") if svc.origin else None

        for field, index, name, path in entries:
            reason = blocked_reason(path)
            if reason is not None:
                yield Diagnostic(
                    code="RS203",
                    message=f"mount {name!r}: {reason}",
                    location=where(field, index),
                    resource=str(svc.address),
                )
        for k, (field, index, name, path) in enumerate(entries):
            for other_field, _, other_name, other_path in entries[:k]:
                if not overlaps(path, other_path):
                    continue
                both_volumes = field == other_field == "volumes"
                if both_volumes and normalise(path) == normalise(other_path):
                    code, what = "RS205", f"uses the same mountPath as mount {other_name!r}"
                elif both_volumes:
                    continue  # nested volume mounts are a normal layout
                else:
                    code, what = (
                        "RS206",
                        (
                            f"mountPath {path!r} overlaps {other_field} entry {other_name!r} "
                            f"({other_path!r})"
                        ),
                    )
                yield Diagnostic(
                    code=code,
                    message=f"mount {name!r} {what}",
                    location=where(field, index),
                    resource=str(svc.address),
                )
