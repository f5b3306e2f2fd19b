"""The SQLite state's lock: an OS file lock on a sidecar file, tied to the holder's life.

Owned here: :class:`FileLock`, the :class:`~rune_sync.state.backend.StateLocker` of a
file state. The sidecar (``state.db.lock`` next to ``state.db``, mode 0600) is locked
with ``flock(LOCK_EX)``; the kernel drops that lock when the holder exits in any way,
``kill -9`` included, so a dead holder never leaves a stuck lock. After locking, the
holder writes its :class:`~rune_sync.state.model.LockInfo` into the sidecar as JSON so
the next command can name it; a clean release empties it again.

Waiting polls ``LOCK_NB`` with a growing pause (10 ms up to 0.5 s), never a busy loop.
The sidecar is never deleted while in use (deleting lock files lets two holders lock
two different files); only :meth:`FileLock.force_unlock` replaces it, and every holder
checks after locking that the file it locked is still the one at the path.

Must not: touch the state database, or write anything but the sidecar.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from rune_sync.errors import StateError
from rune_sync.state.backend import StateLockHeldError
from rune_sync.state.model import LockInfo

LOCK_SUFFIX = ".lock"

_FIRST_PAUSE = 0.01
_LONGEST_PAUSE = 0.5
_UNRECORDED_GRACE = 0.5
"""How long a waiter gives a holder that locked but has not recorded itself yet (it is
between ``flock`` and writing its record, or it is ``lock_info`` probing): such a holder
is transient by construction, so even ``timeout=0`` looks again before failing."""

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def sidecar_path(state_path: Path) -> Path:
    """``state.db`` → ``state.db.lock``, in the same directory."""
    return state_path.with_name(state_path.name + LOCK_SUFFIX)


class FileLock:
    """``flock`` on ``path`` with the holder recorded inside; one holder per object.

    ``location`` names the state in messages (``--state`` is suggested with it).
    """

    def __init__(self, path: Path, *, location: str, clock: Clock = _utc_now) -> None:
        self.path = path
        self.location = location
        self._clock = clock
        self._fd: int | None = None
        self._held: LockInfo | None = None
        self._mutex = threading.Lock()

    # ----------------------------------------------------------------- holding

    @contextlib.contextmanager
    def lock(self, info: LockInfo, *, timeout: float = 0.0) -> Iterator[LockInfo]:
        self.acquire(info, timeout=timeout)
        try:
            yield info
        finally:
            self.release()

    def acquire(self, info: LockInfo, *, timeout: float = 0.0) -> None:
        if timeout < 0:
            raise ValueError("timeout must be ≥ 0")
        with self._mutex:
            if self._fd is not None:
                raise StateError(f"state {self.location}: this process already holds its lock")
            start = time.monotonic()
            deadline = start + timeout
            pause = _FIRST_PAUSE
            while True:
                fd = self._try_lock()
                if fd is not None:
                    self._record(fd, info)
                    self._fd, self._held = fd, info
                    return
                holder = _unless_dead(self._read_record())
                now = time.monotonic()
                if now >= deadline and (holder is not None or now >= start + _UNRECORDED_GRACE):
                    raise self._held_error(holder)
                limit = deadline if holder is not None else max(deadline, start + _UNRECORDED_GRACE)
                time.sleep(max(0.0, min(pause, limit - now)))
                pause = min(pause * 2, _LONGEST_PAUSE)

    def release(self) -> None:
        with self._mutex:
            fd, self._fd, self._held = self._fd, None, None
            if fd is None:
                return
            try:
                # Empty the record first: once unlocked, another holder may write its own.
                os.ftruncate(fd, 0)
            except OSError:
                pass  # the kernel lock goes with the close below; a stale record is ignored
            finally:
                os.close(fd)  # closing drops the flock

    @property
    def held(self) -> LockInfo | None:
        """What this object recorded when it took the lock, ``None`` when not holding."""
        return self._held

    # ----------------------------------------------------------------- inspecting

    def lock_info(self) -> LockInfo | None:
        """The holder, or ``None`` when free. A record left by a holder that died is
        recognised by the lock being free and is not reported."""
        if self._held is not None:
            return self._held
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error("cannot read the lock file", exc) from exc
        try:
            try:
                # A shared probe: it conflicts only with a holder's exclusive lock.
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _unless_dead(self._read_record())
                return holder or LockInfo.unknown(seen_at=self._clock())
            except OSError as exc:
                raise self._error("cannot probe the lock", exc) from exc
            return None
        finally:
            os.close(fd)

    def force_unlock(self, lock_id: str | None = None) -> LockInfo | None:
        """Break the lock for the cases the kernel cannot see to.

        It can: clear a record left behind; release a lock whose holder runs on another
        host sharing the state over a network file system, or is hung, by replacing the
        sidecar with a fresh one — later commands lock the new file and the old holder's
        lock no longer counts.

        It cannot: stop the old holder. If that process still runs, it may go on writing
        next to the new holder, so stop it first. A holder recorded on *this* host whose
        pid is alive is therefore refused (:class:`StateLockHeldError`): end that process
        instead, which releases the lock by itself. An unrecorded holder (one that is just
        starting) is refused too.

        ``lock_id``, when given, must be the id of the recorded holder (``lock-info``
        shows it), so a lock that changed hands is not broken by mistake.
        """
        with self._mutex:
            if self._fd is not None:
                raise StateError(
                    f"state {self.location}: this process holds the lock; release it instead"
                )
            holder = self._read_record()
            if lock_id is not None and (holder is None or holder.id != lock_id):
                current = holder.id if holder is not None else "none recorded"
                raise StateError(
                    f"state {self.location}: lock ID {lock_id!r} is not the current holder's "
                    f"({current}); check `rune-sync state lock-info` and try again"
                )
            fd = self._try_lock()
            if fd is not None:  # nobody holds it: at most a stale record to clear
                try:
                    os.ftruncate(fd, 0)
                except OSError as exc:
                    raise self._error("cannot clear the lock file", exc) from exc
                finally:
                    os.close(fd)
                return holder
            if holder is None:
                raise self._held_error(None)
            if holder.host == socket.gethostname() and _pid_alive(holder.pid):
                raise StateLockHeldError(
                    f"state {self.location} is locked by {holder.describe()}, which is still "
                    f"running on this host: stop it (kill {holder.pid}) and its lock goes "
                    "with it; force-unlock will not break the lock of a live process",
                    holder=holder,
                    location=self.location,
                )
            self._replace_sidecar()
            return holder

    # ----------------------------------------------------------------- internals

    def _try_lock(self) -> int | None:
        """An fd holding the exclusive lock on the file now at ``path``, or ``None``."""
        while True:
            fd = self._open_sidecar()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            except OSError as exc:
                os.close(fd)
                raise self._error("cannot lock", exc) from exc
            try:
                same = _same_file(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            except OSError as exc:
                os.close(fd)
                raise self._error("cannot check the lock file", exc) from exc
            if same:
                return fd
            os.close(fd)  # force-unlock replaced the file after we opened it: lock the new one

    def _open_sidecar(self) -> int:
        flags = os.O_RDWR | os.O_CLOEXEC
        try:
            return os.open(self.path, flags)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise self._error("cannot open the lock file", exc) from exc
        try:
            fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it just now: use theirs
            return self._open_sidecar()
        except OSError as exc:
            raise self._error("cannot create the lock file", exc) from exc
        os.fchmod(fd, 0o600)  # the umask may have taken bits away; it never adds any
        return fd

    def _record(self, fd: int, info: LockInfo) -> None:
        data = json.dumps(info.to_json()).encode("utf-8")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except OSError as exc:
            os.close(fd)
            raise self._error("cannot record the lock holder", exc) from exc

    def _read_record(self) -> LockInfo | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error("cannot read the lock file", exc) from exc
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return LockInfo.from_json(data) if isinstance(data, dict) else None
        except ValueError:
            # A record being rewritten or damaged names nobody; the kernel lock is the
            # truth and the caller treats this as an unknown holder.
            return None

    def _replace_sidecar(self) -> None:
        temp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            os.fchmod(fd, 0o600)
            os.close(fd)
            os.replace(temp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):  # best effort: the temp file may not exist
                temp.unlink()
            raise self._error("cannot replace the lock file", exc) from exc

    def _held_error(self, holder: LockInfo | None) -> StateLockHeldError:
        if holder is None:
            message = (
                f"state {self.location} is locked by a process that has not recorded itself "
                f"(one that is just starting, or another program locking {self.path}). Try "
                "again, or pass --lock-timeout to wait; `rune-sync state lock-info` shows "
                "the holder once it is known, for `rune-sync state force-unlock`"
            )
        else:
            message = (
                f"state {self.location} is locked by {holder.describe()} (lock ID "
                f"{holder.id}). Wait for it to finish, or pass --lock-timeout to wait; if that "
                "process is gone for good (another host, a hung run), run "
                f"`rune-sync state force-unlock {holder.id} --state {self.location}`"
            )
        return StateLockHeldError(message, holder=holder, location=self.location)

    def _error(self, what: str, exc: OSError) -> StateError:
        return StateError(f"state {self.location}: {what} {self.path}: {exc.strerror or exc}")


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def runs_here(holder: LockInfo) -> bool:
    """Whether ``holder`` is recorded on this host with a process that is still running
    (such a holder is alive: ``force-unlock`` refuses it in every backend)."""
    return holder.host == socket.gethostname() and _pid_alive(holder.pid)


def _unless_dead(holder: LockInfo | None) -> LockInfo | None:
    """``holder``, unless it is recorded on this host and its process is gone: then the
    record is a leftover and the actual holder has not recorded itself yet."""
    if holder is not None and holder.host == socket.gethostname() and not _pid_alive(holder.pid):
        return None
    return holder


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    except OSError as exc:
        return exc.errno != errno.ESRCH
    return True
