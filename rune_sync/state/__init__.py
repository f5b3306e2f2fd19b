"""The state: what rune-sync recorded about every address, and its lock (DESIGN §5).

Public surface for plan, apply and the ``state`` commands; everything not listed in
``__all__`` is internal. Open a state with :func:`open_backend` (a path, a
``postgresql://`` URL, or a :class:`StateTarget` naming one state of a PostgreSQL
database) and use it through the role protocols of :mod:`rune_sync.state.backend`::

    with state.open_backend(path, create=True) as backend:
        with backend.lock(LockInfo.for_this_process(command="rune-sync apply", now=now),
                          timeout=0):
            records = backend.load_all()
            backend.put(record)
            backend.bump_serial(source=source)

``state pull``/``push`` are :func:`pull`, :func:`dumps`, :func:`loads` and :func:`push`;
``state migrate`` is :func:`copy_state`.
"""

from rune_sync.state.backend import (
    RecordWriter,
    StateBackend,
    StateImporter,
    StateLocker,
    StateLockHeldError,
    StateNotFoundError,
    StateReader,
    open_backend,
)
from rune_sync.state.export import (
    InvalidStateDocument,
    PushRefusedError,
    StateDocument,
    StateSnapshot,
    dumps,
    loads,
    parse,
    pull,
    push,
)
from rune_sync.state.migrate import MigrationRefusedError, copy_state
from rune_sync.state.model import (
    LockInfo,
    SourceInfo,
    SourceKind,
    StateMeta,
    StateRecord,
    spec_digest,
    statuses_for,
)
from rune_sync.state.sqlite import DEFAULT_PATH
from rune_sync.state.target import DEFAULT_STATE_NAME, StateTarget, mask_url

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_STATE_NAME",
    "InvalidStateDocument",
    "LockInfo",
    "MigrationRefusedError",
    "PushRefusedError",
    "RecordWriter",
    "SourceInfo",
    "SourceKind",
    "StateBackend",
    "StateDocument",
    "StateImporter",
    "StateLockHeldError",
    "StateLocker",
    "StateMeta",
    "StateNotFoundError",
    "StateReader",
    "StateRecord",
    "StateSnapshot",
    "StateTarget",
    "copy_state",
    "dumps",
    "loads",
    "mask_url",
    "open_backend",
    "parse",
    "pull",
    "push",
    "spec_digest",
    "statuses_for",
]
