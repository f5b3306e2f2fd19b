"""The state backend contract suite: every promise of :mod:`rune_sync.state.backend`, as tests.

Owned here: :class:`StateBackendContract`. A backend's test module subclasses it under a
``Test…`` name and implements :meth:`~StateBackendContract.state_target` (a path or URL
naming a fresh, not yet created state below pytest's ``tmp_path``); pytest collects the
inherited ``test_*`` methods::

    class TestSqliteContract(StateBackendContract):
        def state_target(self, tmp_path):
            return str(tmp_path / "state.db")

The lock tests use real processes: a holder is a child Python process (this module's
:func:`main`) that takes the lock and reports on its stdout; the suite waits on those
lines, never on sleeps, and ends holders by closing their stdin or by ``kill -9``.
The suite uses only the public backend roles and :func:`rune_sync.state.export.push` /
``pull``, never a backend's internals. Importing it does not import pytest.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from rune_sync import errors
from rune_sync.spec.model import Address, Kind, SnapshotStatus, VolumeStatus
from rune_sync.state import backend, export
from rune_sync.state.model import INTENTS, LockInfo, SourceInfo, SourceKind, StateRecord
from rune_sync.testing.harness import expect, expect_raises

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
NAMESPACE = "contract"
SECRET_REFERENCE = "secret:do-api-token.shared.rune/token"
_CHILD_TIMEOUT = 60.0
_INTENTS_IN_TURN = (None, *sorted(INTENTS))


def contract_record(index: int, *, status: str = VolumeStatus.BOUND.value) -> StateRecord:
    """The suite's volume record number ``index``: every field set, deterministic.

    Its ``intent`` takes each value of :data:`~rune_sync.state.model.INTENTS` and ``None``
    in turn, so every round trip of the suite carries some.
    """
    moment = EPOCH + timedelta(seconds=index, microseconds=index % 1_000_000)
    name = f"vol-{index:06d}"
    return StateRecord(
        address=Address(Kind.VOLUME, NAMESPACE, name),
        spec={
            "name": name,
            "namespace": NAMESPACE,
            "size": f"{index % 64 + 1}Gi",
            "accessMode": "ReadWriteOnce",
            "labels": {"index": str(index), "ünïcode": "✓"},
            "topology": [{"key": "zone", "values": ["a", "b"]}, None, 1.5, True],
        },
        driver="local",
        status=status,
        handle=f"/var/lib/rune/volumes/{NAMESPACE}/{name}",
        bound_claim=f"{NAMESPACE}/app",
        owner_service="app",
        attempts=index % 5,
        failed_runs=index % 3,
        failure_message=None if index % 2 else f"attempt {index} failed",
        intent=_INTENTS_IN_TURN[index % len(_INTENTS_IN_TURN)],
        driver_parameters={"apiToken": SECRET_REFERENCE, "region": "nyc3"},
        created_at=moment,
        updated_at=moment + timedelta(minutes=1),
    )


def class_record() -> StateRecord:
    return StateRecord(
        address=Address(Kind.STORAGE_CLASS, "", "fast"),
        spec={"name": "fast", "driver": "local", "reclaimPolicy": "retain"},
        driver="local",
        status=VolumeStatus.AVAILABLE.value,
        created_at=EPOCH,
        updated_at=EPOCH,
    )


def snapshot_record() -> StateRecord:
    return StateRecord(
        address=Address(Kind.SNAPSHOT, NAMESPACE, "snap-1"),
        spec={"name": "snap-1", "namespace": NAMESPACE, "source": {"volume": "vol-000001"}},
        driver="local",
        status=SnapshotStatus.READY.value,
        handle="/var/lib/rune/volumes/.snapshots/contract/snap-1",
        created_at=EPOCH,
        updated_at=EPOCH,
    )


SOURCE = SourceInfo(
    kind=SourceKind.GIT,
    url="https://git.example.com/storage.git",
    commit="0123456789abcdef0123456789abcdef01234567",
    digest="sha256:" + "ab" * 32,
)


class StateBackendContract:
    """Base class of a state backend's contract tests; see the module docstring.

    ``lock_release_timeout`` is how long the suite waits for a killed holder's lock to
    go (0: it must be gone at once, as with an OS file lock).
    """

    lock_release_timeout: ClassVar[float] = 0.0

    def state_target(self, tmp_path: Path) -> str:
        """Hook: the path or URL of a fresh state that does not exist yet."""
        raise NotImplementedError(f"{type(self).__name__} must implement state_target(tmp_path)")

    def open_state(self, target: str, *, create: bool = True) -> backend.StateBackend:
        """Hook: open the state at ``target``; by default :func:`backend.open_backend`."""
        return backend.open_backend(target, create=create)

    # ----------------------------------------------------------------- creating

    def test_a_new_state_is_empty_with_a_lineage_and_serial_zero(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            meta = state.meta()
            expect(meta.serial == 0, f"a new state has serial 0, got {meta.serial}")
            expect(len(meta.lineage) == 36, f"lineage {meta.lineage!r} is not a UUID")
            expect(meta.source is None, "a new state has no source")
            expect(list(state.records()) == [], "a new state has no records")
            expect(state.load_all() == {}, "a new state loads as empty")

    def test_two_new_states_have_different_lineages(self, tmp_path: Path) -> None:
        with (
            self.open_state(self.state_target(tmp_path / "a")) as a,
            self.open_state(self.state_target(tmp_path / "b")) as b,
        ):
            expect(a.meta().lineage != b.meta().lineage, "lineages must be unique")

    def test_opening_without_create_refuses_a_missing_state(self, tmp_path: Path) -> None:
        target = self.state_target(tmp_path)
        expect_raises(
            backend.StateNotFoundError,
            lambda: self.open_state(target, create=False),
            "open_backend(create=False) of a missing state",
        )
        with self.open_state(target, create=True) as state:
            lineage = state.meta().lineage
        with self.open_state(target, create=False) as state:
            expect(state.meta().lineage == lineage, "create=False opens the existing state")

    def test_reopening_keeps_lineage_serial_and_records(self, tmp_path: Path) -> None:
        target = self.state_target(tmp_path)
        with self.open_state(target) as state:
            state.put(contract_record(1))
            before = state.bump_serial(source=SOURCE)
        with self.open_state(target) as state:
            expect(state.meta() == before, f"meta changed on reopen: {state.meta()} != {before}")
            expect(state.get(contract_record(1).address) == contract_record(1), "record lost")

    # ----------------------------------------------------------------- records

    def test_put_then_get_returns_an_equal_record(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            for record in (
                contract_record(1),
                contract_record(2),
                class_record(),
                snapshot_record(),
            ):
                state.put(record)
                got = state.get(record.address)
                expect(got == record, f"put/get changed the record:\n{got}\n!=\n{record}")
                expect(
                    got is not None and got.spec_digest == record.spec_digest,
                    "the spec digest changed",
                )

    def test_get_of_a_missing_address_is_none(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            expect(state.get(contract_record(9).address) is None, "missing address gives None")

    def test_put_replaces_only_the_record_at_its_address(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            state.put(contract_record(1))
            state.put(contract_record(2))
            changed = contract_record(1).with_changes(
                now=EPOCH + timedelta(days=1),
                status=VolumeStatus.FAILED.value,
                failure_message="disk full",
                spec={"name": "vol-000001", "size": "2Gi"},
            )
            state.put(changed)
            expect(state.get(changed.address) == changed, "put did not replace the record")
            expect(state.get(contract_record(2).address) == contract_record(2), "neighbour changed")
            expect(len(state.load_all()) == 2, "put of an existing address added a record")

    def test_an_intent_round_trips_and_can_be_cleared(self, tmp_path: Path) -> None:
        target = self.state_target(tmp_path)
        base = contract_record(1)
        in_flight = base
        with self.open_state(target) as state:
            for step, intent in enumerate(sorted(INTENTS)):
                in_flight = base.with_changes(
                    now=EPOCH + timedelta(hours=step), intent=intent, attempts=step
                )
                state.put(in_flight)
                got = state.get(in_flight.address)
                expect(got == in_flight, f"put/get changed a record in flight:\n{got}")
                expect(got is not None and got.intent == intent, f"intent {intent!r} was lost")
            done = in_flight.with_changes(now=EPOCH + timedelta(days=1), intent=None)
            state.put(done)
            got = state.get(done.address)
            expect(got == done, f"clearing the intent did not land:\n{got}")
            expect(got is not None and got.intent is None, "a cleared intent came back")
            crashed = contract_record(2).with_changes(
                now=EPOCH, status=VolumeStatus.PROVISIONING.value, intent="provision"
            )
            state.put(crashed)
        with self.open_state(target, create=False) as state:
            expect(state.get(done.address) == done, "a cleared intent changed on reopen")
            expect(state.get(crashed.address) == crashed, "an intent in flight lost on reopen")

    def test_delete_removes_the_record_and_is_idempotent(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            state.put(contract_record(1))
            state.put(contract_record(2))
            expect(state.delete(contract_record(1).address) is True, "delete returns True")
            expect(state.get(contract_record(1).address) is None, "deleted record still there")
            expect(state.delete(contract_record(1).address) is False, "second delete: False")
            expect(list(state.load_all()) == [contract_record(2).address], "wrong record deleted")

    def test_records_are_ordered_by_address_and_agree_with_load_all(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            written = [contract_record(i) for i in (5, 3, 9, 1)] + [
                snapshot_record(),
                class_record(),
            ]
            for record in written:
                state.put(record)
            listed = list(state.records())
            expect(
                [str(r.address) for r in listed] == sorted(str(r.address) for r in written),
                "records() must be ordered by address text",
            )
            expect(state.load_all() == {r.address: r for r in written}, "load_all disagrees")

    def test_retained_records_keep_their_handle_and_status(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            kept = contract_record(4).retain(now=EPOCH + timedelta(days=2))
            state.put(kept)
            got = state.get(kept.address)
            expect(got is not None and got.retained, "the retained flag was lost")
            expect(got == kept, "a retained record changed on the way")

    def test_secret_references_are_stored_as_written(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            state.put(contract_record(1))
            got = state.get(contract_record(1).address)
            expect(got is not None, "record lost")
            assert got is not None  # for the type checker; checked just above
            expect(
                got.driver_parameters.get("apiToken") == SECRET_REFERENCE,
                f"a secret reference must be kept as text, got {got.driver_parameters!r}",
            )
            document = export.dumps(export.pull(state))
            expect(SECRET_REFERENCE in document, "the export must carry the reference text")

    def test_writes_from_several_threads_all_land(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            failures: list[BaseException] = []

            def write(start: int) -> None:
                try:
                    for i in range(start, start + 25):
                        state.put(contract_record(i))
                except BaseException as exc:  # reported below, in the test's thread
                    failures.append(exc)

            threads = [threading.Thread(target=write, args=(n * 25,)) for n in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(_CHILD_TIMEOUT)
            expect(not failures, f"a writer thread failed: {failures!r}")
            expect(len(state.load_all()) == 100, "some threaded writes were lost")

    # ----------------------------------------------------------------- serial, transactions

    def test_bump_serial_moves_on_by_one_and_keeps_the_lineage(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            first = state.meta()
            state.put(contract_record(1))
            expect(state.meta().serial == first.serial, "put must not move the serial")
            second = state.bump_serial(source=SOURCE)
            expect(second.serial == first.serial + 1, "bump_serial moves on by one")
            expect(second.source == SOURCE, "bump_serial records the source")
            third = state.bump_serial()
            expect(third.serial == first.serial + 2, "bump_serial moves on by one again")
            expect(third.source == SOURCE, "bump_serial without a source keeps the recorded one")
            expect(third.lineage == first.lineage, "the lineage never changes")
            expect(state.meta() == third, "meta() reads what bump_serial returned")

    def test_a_transaction_commits_its_writes_together(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            with state.transaction() as tx:
                tx.put(contract_record(1))
                tx.put(contract_record(2))
                tx.bump_serial(source=SOURCE)
            expect(len(state.load_all()) == 2, "transaction writes must be committed")
            expect(state.meta().serial == 1, "the serial moved inside the transaction")

    def test_a_transaction_that_raises_writes_nothing(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            state.put(contract_record(1))

            class Boom(Exception):
                pass

            try:
                with state.transaction() as tx:
                    tx.put(contract_record(2))
                    tx.delete(contract_record(1).address)
                    tx.bump_serial()
                    raise Boom
            except Boom:
                pass  # the point of the test: the block failed
            expect(
                state.load_all() == {contract_record(1).address: contract_record(1)}, "rolled back?"
            )
            expect(state.meta().serial == 0, "the serial must roll back too")

    def test_a_nested_block_that_raises_undoes_only_its_own_writes(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            with state.transaction() as tx:
                tx.put(contract_record(1))
                try:
                    with tx.transaction() as inner:
                        inner.put(contract_record(2))
                        raise LookupError("inner")
                except LookupError:
                    pass  # the inner block failed on purpose
                tx.put(contract_record(3))
            got = sorted(str(a) for a in state.load_all())
            want = sorted(str(contract_record(i).address) for i in (1, 3))
            expect(got == want, f"nested rollback: got {got}, want {want}")

    # ----------------------------------------------------------------- export / import

    def test_pull_then_push_into_a_new_state_gives_the_same_state(self, tmp_path: Path) -> None:
        with (
            self.open_state(self.state_target(tmp_path / "a")) as a,
            self.open_state(self.state_target(tmp_path / "b")) as b,
        ):
            for record in (
                contract_record(1),
                contract_record(2).retain(now=EPOCH),
                class_record(),
            ):
                a.put(record)
            a.bump_serial(source=SOURCE)
            document = export.pull(a)
            pushed = export.push(b, export.loads(export.dumps(document)))
            expect(pushed.lineage == a.meta().lineage, "a new state adopts the pushed lineage")
            expect(pushed.serial == document["serial"] + 1, "push moves the serial on")
            expect(b.load_all() == a.load_all(), "push∘pull must keep every record")
            expect(b.meta().source == SOURCE, "push∘pull must keep the source")
            again = export.pull(b)
            expect(
                {**again, "serial": 0} == {**document, "serial": 0},
                "pull(push(pull(a))) must equal pull(a) but for the serial",
            )

    def test_push_refuses_another_lineage_unless_forced(self, tmp_path: Path) -> None:
        with (
            self.open_state(self.state_target(tmp_path / "a")) as a,
            self.open_state(self.state_target(tmp_path / "b")) as b,
        ):
            a.put(contract_record(1))
            b.put(contract_record(2))
            document = export.pull(a)
            expect_raises(
                export.PushRefusedError, lambda: export.push(b, document), "push of another lineage"
            )
            expect(list(b.load_all()) == [contract_record(2).address], "a refused push wrote")
            export.push(b, document, force=True)
            expect(b.meta().lineage == a.meta().lineage, "a forced push adopts the lineage")
            expect(b.load_all() == a.load_all(), "a forced push replaces the records")

    def test_push_refuses_an_older_serial_unless_forced(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            state.put(contract_record(1))
            old = export.pull(state)
            state.put(contract_record(2))
            state.bump_serial()
            expect_raises(export.PushRefusedError, lambda: export.push(state, old), "older push")
            expect(len(state.load_all()) == 2, "a refused push wrote")
            meta = export.push(state, old, force=True)
            expect(meta.serial == 2, f"a forced push moves the serial past both, got {meta.serial}")
            expect(list(state.load_all()) == [contract_record(1).address], "forced push content")

    def test_push_refuses_the_same_serial_with_other_contents(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            state.put(contract_record(1))
            document = export.pull(state)
            state.put(contract_record(2))  # same serial, different records
            expect_raises(
                export.PushRefusedError, lambda: export.push(state, document), "same-serial push"
            )
            export.push(state, export.pull(state))  # the current contents are accepted

    def test_replace_all_refuses_duplicates_and_changes_nothing(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            state.put(contract_record(7))
            meta = state.meta()
            expect_raises(
                ValueError,
                lambda: state.replace_all(
                    lineage=meta.lineage,
                    serial=5,
                    source=None,
                    records=[contract_record(1), contract_record(1)],
                ),
                "replace_all with a duplicate address",
            )
            expect(state.meta() == meta, "a refused replace_all changed the meta")
            expect(list(state.load_all()) == [contract_record(7).address], "records changed")

    # ----------------------------------------------------------------- locking

    def test_lock_info_is_none_when_free_and_names_the_holder(self, tmp_path: Path) -> None:
        target = self.state_target(tmp_path)
        with self.open_state(target) as state, self.open_state(target) as other:
            expect(other.lock_info() is None, "a free lock has no holder")
            info = _info("rune-sync apply .")
            with state.lock(info, timeout=0):
                expect(other.lock_info() == info, f"lock_info: {other.lock_info()} != {info}")
            expect(other.lock_info() is None, "a released lock has no holder")

    def test_the_same_object_cannot_take_its_lock_twice(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            with state.lock(_info("first"), timeout=0):
                expect_raises(
                    errors.StateError, lambda: state.acquire(_info("again")), "second acquire"
                )
            state.release()  # a release without a lock is a no-op

    def test_closing_releases_the_lock(self, tmp_path: Path) -> None:
        target = self.state_target(tmp_path)
        with self.open_state(target) as other:
            state = self.open_state(target)
            state.acquire(_info("first"), timeout=0)
            state.close()
            with other.lock(_info("second"), timeout=0):
                pass

    def test_a_second_holder_fails_at_once_naming_the_first(self, tmp_path: Path) -> None:
        target = self.state_target(tmp_path)
        with self.open_state(target) as state, Holder(target) as holder:
            first = holder.locked()
            error = expect_raises(
                backend.StateLockHeldError,
                lambda: state.acquire(_info("rune-sync apply"), timeout=0),
                "taking a held lock with timeout 0",
            )
            expect(isinstance(error, errors.StateLockedError), "must be a StateLockedError")
            expect(error.holder == first, f"the error names {error.holder}, not {first}")
            message = str(error)
            for part in (first.user, first.host, str(first.pid), first.command, "force-unlock"):
                expect(part in message, f"the lock error must mention {part!r}: {message}")
            expect(first.since.strftime("%Y-%m-%dT%H:%M:%S") in message, "… and since when")
            expect(state.lock_info() == first, "lock_info names the holder")

    def test_a_timeout_that_runs_out_names_the_holder(self, tmp_path: Path) -> None:
        target = self.state_target(tmp_path)
        with self.open_state(target) as state, Holder(target) as holder:
            first = holder.locked()
            error = expect_raises(
                backend.StateLockHeldError,
                lambda: state.acquire(_info("patient"), timeout=0.2),
                "waiting for a lock that is never released",
            )
            expect(error.holder == first, f"the error names {error.holder}, not {first}")

    def test_a_waiting_holder_gets_the_lock_after_the_first_releases(self, tmp_path: Path) -> None:
        target = self.state_target(tmp_path)
        with self.open_state(target) as state, Holder(target) as holder:
            holder.locked()
            acquired = threading.Event()
            done = threading.Event()
            failures: list[BaseException] = []
            info = _info("waiter")

            def wait_for_lock() -> None:
                try:
                    with state.lock(info, timeout=_CHILD_TIMEOUT):
                        acquired.set()
                        done.wait(_CHILD_TIMEOUT)
                except BaseException as exc:  # reported below, in the test's thread
                    failures.append(exc)
                    acquired.set()

            waiter = threading.Thread(target=wait_for_lock)
            waiter.start()
            try:
                expect(not acquired.is_set(), "the waiter got a lock the first holder has")
                holder.release()
                expect(acquired.wait(_CHILD_TIMEOUT), "the waiter never got the lock")
                expect(not failures, f"the waiter failed: {failures!r}")
                expect(state.lock_info() == info, "the waiter is now the holder")
            finally:
                done.set()
                waiter.join(_CHILD_TIMEOUT)

    def test_a_killed_holder_leaves_no_stuck_lock(self, tmp_path: Path) -> None:
        target = self.state_target(tmp_path)
        with self.open_state(target) as state, Holder(target) as holder:
            holder.locked()
            holder.kill()
            timeout = self.lock_release_timeout
            if timeout == 0:
                expect(state.lock_info() is None, "a dead holder is not reported as holding")
            with state.lock(_info("after the crash"), timeout=timeout):
                expect(state.lock_info() is not None, "the new holder is recorded")

    def test_force_unlock_refuses_a_live_holder_on_this_host(self, tmp_path: Path) -> None:
        target = self.state_target(tmp_path)
        with self.open_state(target) as state, Holder(target) as holder:
            first = holder.locked()
            error = expect_raises(
                backend.StateLockHeldError,
                lambda: state.force_unlock(first.id),
                "force_unlock of a live local holder",
            )
            expect(str(first.pid) in str(error), "the refusal names the live process")
            expect(state.lock_info() == first, "the refused force_unlock changed the lock")

    def test_force_unlock_with_another_id_is_refused(self, tmp_path: Path) -> None:
        target = self.state_target(tmp_path)
        with self.open_state(target) as state, Holder(target, host="elsewhere.invalid") as holder:
            first = holder.locked()
            expect_raises(
                errors.StateError, lambda: state.force_unlock("not-the-id"), "wrong lock id"
            )
            expect(state.lock_info() == first, "a refused force_unlock changed the lock")

    def test_force_unlock_breaks_the_lock_of_a_holder_on_another_host(self, tmp_path: Path) -> None:
        target = self.state_target(tmp_path)
        with self.open_state(target) as state, Holder(target, host="elsewhere.invalid") as holder:
            first = holder.locked()
            removed = state.force_unlock(first.id)
            expect(removed == first, f"force_unlock returns the holder it removed, got {removed}")
            info = _info("after force-unlock")
            with state.lock(info, timeout=0):
                holder.release()  # the old holder ending must not disturb the new one
                expect(state.lock_info() == info, "the new holder's record was disturbed")

    def test_force_unlock_of_a_free_lock_returns_none(self, tmp_path: Path) -> None:
        with self.open_state(self.state_target(tmp_path)) as state:
            expect(state.force_unlock() is None, "nothing to remove")

    # ----------------------------------------------------------------- crash safety

    def test_a_killed_writer_leaves_a_prefix_of_its_writes(self, tmp_path: Path) -> None:
        target = self.state_target(tmp_path)
        with self.open_state(target):
            pass  # created here, so the writer only opens it
        with Child(["write", target, "1000000"]) as writer:
            while int(writer.line()) < 300:
                pass
            writer.kill()
        with self.open_state(target, create=False) as state:
            records = state.load_all()
            count = len(records)
            expect(count >= 301, f"committed writes were lost: {count} < 301")
            want = {contract_record(i).address: contract_record(i) for i in range(count)}
            expect(records == want, "the state is not a prefix of the writes")
            state.put(contract_record(count))
            expect(len(state.load_all()) == count + 1, "the state must still take writes")


def _info(command: str) -> LockInfo:
    return LockInfo.for_this_process(command=command, now=datetime.now(UTC))


# --------------------------------------------------------------------------- processes


class Child:
    """A child process running :func:`main`; its stdout lines arrive on a queue."""

    def __init__(self, args: Sequence[str]) -> None:
        code = "from rune_sync.testing.state import main; main()"
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None  # opened with stdout=PIPE
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def line(self) -> str:
        """The next line the child printed; fails the test if it ends or stalls first."""
        try:
            line = self._lines.get(timeout=_CHILD_TIMEOUT)
        except queue.Empty:
            line = None
        if line is None:
            self.kill()
            raise AssertionError(f"the child process stopped early: {self._stderr()}")
        return line

    def kill(self) -> None:
        """``kill -9`` and reap it."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(_CHILD_TIMEOUT)

    def finish(self) -> None:
        """Close its stdin (the signal to end) and wait for a clean exit."""
        assert self.process.stdin is not None  # opened with stdin=PIPE
        self.process.stdin.close()
        code = self.process.wait(_CHILD_TIMEOUT)
        expect(code == 0, f"the child exited {code}: {self._stderr()}")

    def _stderr(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        assert self.process.stderr is not None  # opened with stderr=PIPE
        return self.process.stderr.read()[-2000:]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
        self._reader.join(_CHILD_TIMEOUT)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


class Holder(Child):
    """A child that takes the lock of ``target`` and holds it until released or killed."""

    def __init__(self, target: str, *, host: str = "") -> None:
        super().__init__(["hold", target, host])

    def locked(self) -> LockInfo:
        """Wait until it holds the lock; the holder details it recorded."""
        return LockInfo.from_json(json.loads(self.line()))

    def release(self) -> None:
        self.finish()


def main(argv: Sequence[str] | None = None) -> None:
    """The child side: ``hold TARGET [HOST]`` or ``write TARGET COUNT``."""
    args = list(sys.argv[1:] if argv is None else argv)
    command, target = args[0], args[1]
    with backend.open_backend(target, create=False) as state:
        if command == "hold":
            info = LockInfo.for_this_process(command="contract holder", now=datetime.now(UTC))
            if len(args) > 2 and args[2]:
                info = replace(info, host=args[2])
            with state.lock(info, timeout=_CHILD_TIMEOUT):
                print(json.dumps(info.to_json()), flush=True)
                sys.stdin.read()  # hold until the parent closes our stdin
        elif command == "write":
            for i in range(int(args[2])):
                state.put(contract_record(i))
                print(i, flush=True)
        else:
            raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
