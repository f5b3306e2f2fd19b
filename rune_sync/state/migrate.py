"""Copying a whole state from one backend to another, verified (``state migrate``).

Owned here: :func:`copy_state` and :class:`Copied`. Works through the role protocols and
the export document only (:mod:`rune_sync.state.export`), so it moves a state between
any two backends — SQLite ↔ PostgreSQL, or one PostgreSQL state name to another — and
the copy keeps the lineage, serial, source and every record as they are: ``state
pull`` of both sides is byte-identical afterwards, which is what the copy checks
before it reports success. Callers hold both states' locks.

Must not: overwrite a destination that holds another state (another lineage, or a newer
serial of the same one) unless told to with ``force``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rune_sync.errors import StateError
from rune_sync.state import export
from rune_sync.state.backend import StateReader


@dataclass(frozen=True, slots=True, kw_only=True)
class Copied:
    """What arrived: the record count, the serial and lineage, and the SHA-256 of the
    export document both sides produce."""

    count: int
    lineage: str
    serial: int
    digest: str


class MigrationRefusedError(StateError):
    """The destination holds another state; ``--force`` overrides."""


def copy_state(
    source: StateReader, destination: export.PushTarget, *, force: bool = False
) -> Copied:
    """Replace ``destination`` with a copy of ``source`` and check it arrived whole.

    Refused (:class:`MigrationRefusedError`, nothing written) unless ``force`` when the
    destination is not empty and holds another lineage, or the same lineage at a newer
    serial. Raises ``StateError`` when the copy read back differs from the original.
    """
    document = export.pull(source)
    snapshot = export.parse(document)
    current = destination.meta()
    existing = destination.load_all()
    empty = current.serial == 0 and current.source is None and not existing
    if not (empty or force):
        if current.lineage != snapshot.lineage:
            raise MigrationRefusedError(
                f"state {destination.location} already holds another state (lineage "
                f"{current.lineage}, serial {current.serial}, {len(existing)} record(s)); "
                "nothing was written. Pass --force to replace it with the copy"
            )
        if current.serial > snapshot.serial:
            raise MigrationRefusedError(
                f"state {destination.location} is at serial {current.serial}, newer than "
                f"the source's {snapshot.serial}; nothing was written. Pass --force to go "
                "back to the source's version"
            )
    destination.replace_all(
        lineage=snapshot.lineage,
        serial=snapshot.serial,
        source=snapshot.source,
        records=snapshot.records,
    )
    sent = export.dumps(document)
    arrived = export.dumps(export.pull(destination))
    if arrived != sent:
        raise StateError(
            f"state {destination.location}: the copy read back differs from "
            f"{source.location} (sha256 {_digest(arrived)} instead of {_digest(sent)}); "
            "do not use it — run the migration again"
        )
    return Copied(
        count=len(snapshot.records),
        lineage=snapshot.lineage,
        serial=snapshot.serial,
        digest=_digest(sent),
    )


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
