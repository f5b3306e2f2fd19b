"""The state as apply sees it while it runs: every write is its own small transaction.

Owned here: the in-memory view of the records (loaded once, updated with each write, so
a step can read what an earlier step produced — a snapshot's handle for a restore) and
the writes themselves, stamped with the clock. Safe to call from worker threads: the
backend serialises its own writes; the view is guarded here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from rune_sync.spec.model import Address
from rune_sync.state.model import StateRecord


class Writer(Protocol):
    def put(self, record: StateRecord) -> None: ...

    def delete(self, address: Address) -> bool: ...


class Recorder:
    def __init__(
        self,
        backend: Writer,
        records: Mapping[Address, StateRecord],
        clock: Callable[[], datetime],
    ) -> None:
        self._backend = backend
        self._records = dict(records)
        self._clock = clock
        self._lock = threading.Lock()
        # Pre-destroy snapshots a killed run left unfinished, by the volume they protect:
        # the next destroy of that volume reuses the name (and the driver its leftovers).
        self._unfinished_copies = {
            str(r.spec.get("preDestroyOf")): r.address
            for r in records.values()
            if r.intent == "predestroy-snapshot" and r.spec.get("preDestroyOf")
        }

    def now(self) -> datetime:
        return self._clock()

    def get(self, address: Address) -> StateRecord | None:
        with self._lock:
            return self._records.get(address)

    def unfinished_copy(self, volume: Address) -> Address | None:
        """The pre-destroy snapshot of ``volume`` a killed run left in flight, if any."""
        with self._lock:
            return self._unfinished_copies.get(str(volume))

    def create(self, address: Address, **fields: Any) -> StateRecord:
        """Write a new record (replacing any at ``address``)."""
        now = self._clock()
        record = StateRecord(address=address, created_at=now, updated_at=now, **fields)
        self._put(record)
        return record

    def update(self, record: StateRecord, **changes: Any) -> StateRecord:
        """Write ``record`` with ``changes`` (and a fresh ``updated_at``)."""
        changed = record.with_changes(now=self._clock(), **changes)
        self._put(changed)
        return changed

    def remove(self, address: Address) -> None:
        self._backend.delete(address)
        with self._lock:
            self._records.pop(address, None)

    def _put(self, record: StateRecord) -> None:
        self._backend.put(record)
        with self._lock:
            self._records[record.address] = record
