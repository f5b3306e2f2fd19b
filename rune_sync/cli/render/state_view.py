"""What the ``rune-sync state`` commands print: records, the lock holder, repairs done.

Text is for people; ``--format json`` is one JSON document for scripts. A record's JSON
is the record of the state export (:func:`rune_sync.state.export.record_to_json`), so
``list``, ``show`` and ``pull`` agree on every field name. Called by
:mod:`rune_sync.cli.state` only. Computes nothing: every fact comes from the values it
is given, and it never prints secret values (records hold secret references only).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from rune_sync.spec.model import Address, VolumeStatus
from rune_sync.state import export
from rune_sync.state.migrate import Copied
from rune_sync.state.model import (
    LockInfo,
    StateMeta,
    StateRecord,
    format_timestamp,
    thaw_json,
)

_NONE = "-"


def _json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _status(record: StateRecord) -> str:
    return f"{record.status} (retained)" if record.retained else record.status


# --------------------------------------------------------------------------- reading


def no_state(location: str) -> str:
    return f"No state at {location} (nothing has been applied yet)."


def no_records(location: str) -> str:
    return f"The state at {location} has no records."


def record_table(records: Sequence[StateRecord]) -> list[str]:
    """One line per record — address, status, handle, driver — under a header."""
    rows = [("ADDRESS", "STATUS", "HANDLE", "DRIVER")]
    rows += [(str(r.address), _status(r), r.handle or _NONE, r.driver) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[3]])
        for row in rows
    ]


def records_json(records: Sequence[StateRecord]) -> str:
    return _json([export.record_to_json(r) for r in records])


def record_json(record: StateRecord) -> str:
    return _json(export.record_to_json(record))


def record_lines(record: StateRecord) -> list[str]:
    """Every field of one record; the spec pretty-printed as JSON. ``in flight`` is the
    record's intent: the driver operation under way when it was written (``-``: none)."""
    retained = "yes (no longer in the source; kept for its handle)" if record.retained else "no"
    fields = [
        ("kind", record.kind.value),
        ("status", record.status),
        ("in flight", record.intent or _NONE),
        ("retained", retained),
        ("driver", record.driver),
        ("handle", record.handle or _NONE),
        ("bound claim", record.bound_claim or _NONE),
        ("owner service", record.owner_service or _NONE),
        ("attempts", str(record.attempts)),
        ("failed runs", str(record.failed_runs)),
        ("failure", record.failure_message or _NONE),
        ("created", format_timestamp(record.created_at)),
        ("updated", format_timestamp(record.updated_at)),
        ("spec digest", record.spec_digest),
    ]
    width = max(len(name) for name, _ in fields) + 1
    lines = [str(record.address)]
    for name, value in fields:
        first, *rest = value.splitlines() or [""]
        lines.append(f"  {(name + ':').ljust(width)} {first}")
        lines += [f"  {''.ljust(width)} {line}" for line in rest]
    if record.driver_parameters:
        lines.append("  driver parameters:")
        lines += [f"    {key}: {value}" for key, value in sorted(record.driver_parameters.items())]
    else:
        lines.append(f"  driver parameters: {_NONE}")
    lines.append("  spec:")
    spec = json.dumps(thaw_json(record.spec), indent=2, ensure_ascii=False)
    lines += [f"    {line}" for line in spec.splitlines()]
    if record.status == VolumeStatus.STALLED.value:
        lines.append(
            f"It is Stalled: `rune-sync state retry {record.address}` lets the next apply "
            "try it again."
        )
    return lines


def unknown_address(address: Address, location: str, suggestions: Sequence[str]) -> str:
    message = f"no record at {address} in the state at {location}"
    if suggestions:
        *others, last = suggestions
        choices = f"{', '.join(others)} or {last}" if others else last
        message += f"; did you mean {choices}?"
    else:
        message += "; `rune-sync state list` shows every address"
    return message


# --------------------------------------------------------------------------- the lock


def not_locked(location: str) -> str:
    return f"The state at {location} is not locked."


def lock_lines(holder: LockInfo | None, location: str, *, flags: str | None = None) -> list[str]:
    if holder is None:
        return [not_locked(location)]
    if not holder.is_known:
        return [
            f"The state at {location} is locked by a process that has not recorded itself "
            "yet (one that is just starting); ask again in a moment."
        ]
    return [
        f"The state at {location} is locked.",
        f"  lock ID: {holder.id}",
        f"  user:    {holder.user}",
        f"  host:    {holder.host}",
        f"  pid:     {holder.pid}",
        f"  command: {holder.command}",
        f"  since:   {format_timestamp(holder.since)}",
        "If that process is gone for good (another host, a hung run): "
        f"rune-sync state force-unlock {holder.id} {flags or f'--state {location}'}",
    ]


def lock_json(holder: LockInfo | None, location: str) -> str:
    return _json(
        {
            "location": location,
            "locked": holder is not None,
            "holder": holder.to_json() if holder is not None else None,
        }
    )


def waiting(holder: LockInfo, seconds: float) -> str:
    who = holder.describe()
    return f"The state is locked by {who}; waiting up to {seconds:g}s for it…"


def unlock_warning(holder: LockInfo, location: str, *, postgres: bool = False) -> str:
    said = f"The state at {location} is locked by {holder.describe()} (lock ID {holder.id}).\n"
    if postgres:
        return said + (
            "Breaking the lock ends that holder's session on the PostgreSQL server, and every "
            "later write of it is refused; it does not stop the process itself, nor a driver "
            "call it has in flight. Make sure it is gone first."
        )
    return said + (
        "Breaking the lock does not stop that process: if it is still running it may go on "
        "writing the state next to the next holder. Make sure it is gone first."
    )


UNLOCK_QUESTION = "Break this lock?"


def other_lock_id(lock_id: str, holder: LockInfo, location: str) -> str:
    current = holder.id or "not recorded yet"
    return (
        f"lock ID {lock_id!r} is not the current holder's ({current}) of the state at "
        f"{location}; check `rune-sync state lock-info` and try again"
    )


def unlocked(holder: LockInfo, location: str) -> str:
    return f"Released the lock of the state at {location}, held by {holder.describe()}."


def unlock_declined(location: str) -> str:
    return f"Left the lock of the state at {location} in place."


# --------------------------------------------------------------------------- repairs


def removed(
    record: StateRecord, *, location: str, before: StateMeta, after: StateMeta
) -> list[str]:
    kind = record.kind.value
    status = f"{record.status}, retained" if record.retained else record.status
    facts = [status, f"driver {record.driver}", f"handle {record.handle or 'none'}"]
    return [
        f"Removed {record.address} ({', '.join(facts)}) from the state at {location} "
        f"(serial {before.serial} → {after.serial}; plans saved before now are stale).",
        f"The data itself was not touched: no driver was called, so the {kind} still exists "
        "and rune-sync no longer manages it. If it is still in the source, the next plan "
        "will create it again as a new resource.",
    ]


def retried(
    before: StateRecord, after: StateRecord, *, location: str, meta: StateMeta
) -> list[str]:
    return [
        f"{after.address} is {after.status} again (it was {before.status} after "
        f"{before.failed_runs} failed run(s)); the next apply will try it again.",
        f"The state at {location} is now at serial {meta.serial}; plans saved before now "
        "are stale.",
    ]


def pushed(meta: StateMeta, *, count: int, location: str) -> str:
    return (
        f"Pushed {count} record(s) into the state at {location}: lineage {meta.lineage}, "
        f"serial {meta.serial}."
    )


def migrated(copied: Copied, *, origin: str, destination: str) -> list[str]:
    return [
        f"Copied {copied.count} record(s) from the state at {origin} to the state at "
        f"{destination}: lineage {copied.lineage}, serial {copied.serial}.",
        f"Verified: both sides export the same document ({copied.digest}).",
    ]
