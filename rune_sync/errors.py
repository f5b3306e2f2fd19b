"""The exception tree of rune-sync.

Every error rune-sync raises on purpose derives from :class:`RuneSyncError`; the CLI
boundary renders those as messages and exits 1, and treats anything else as a bug.

::

    RuneSyncError
    ├── SourceError                  the source cannot be read (missing, unreadable, not a dir,
    │   │                            unreachable remote, unknown ref, damaged cache)
    │   ├── RollbackError            a git commit that does not descend from the last applied one
    │   └── SignatureError           a git commit without a good signature from a trusted key
    ├── SpecError                    carries diagnostics
    │   ├── LoadError                YAML/TOML could not be loaded
    │   └── ValidationError          schema or rule violations
    ├── PlanError
    │   ├── StalePlanError
    │   └── UnsafePlanError
    ├── StateError
    │   ├── StateLockedError
    │   └── StateCorruptError
    └── DriverError                  (driver, operation, address)
        ├── DriverConfigError        invalid parameters; never retried
        │   └── AccessModeUnsupported
        ├── UnsupportedOperation     (also NotImplementedError)
        │   └── OnlineExpandUnsupported
        ├── ResourceNotFound         (also LookupError)
        ├── DriverAuthError          rejected credentials; never retried
        └── DriverTransientError     retried; may carry ``retry_after`` seconds

Messages never carry secret values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rune_sync.diagnostics import Diagnostic


class RuneSyncError(Exception):
    """Root of every error rune-sync raises deliberately."""


class SourceError(RuneSyncError):
    """The source (directory or repository) cannot be read."""


class RollbackError(SourceError):
    """The git source moved to a commit that does not descend from the last applied one."""


class SignatureError(SourceError):
    """A commit that had to be signed carries no good signature from a trusted key."""


class SpecError(RuneSyncError):
    """The specs could not be loaded or validated; carries every diagnostic."""

    def __init__(self, diagnostics: tuple[Diagnostic, ...]) -> None:
        self.diagnostics = diagnostics
        super().__init__(f"{len(diagnostics)} problem(s) in the specs")


class LoadError(SpecError):
    """A file could not be parsed."""


class ValidationError(SpecError):
    """Schemas or rules rejected the specs."""


class PlanError(RuneSyncError):
    """A plan could not be made or used."""


class StalePlanError(PlanError):
    """A saved plan no longer matches the state or the source."""


class UnsafePlanError(PlanError):
    """A plan would do something destructive that was not allowed."""


class StateError(RuneSyncError):
    """The state cannot be read or written."""


class StateLockedError(StateError):
    """Another process holds the state lock."""


class StateCorruptError(StateError):
    """The state file is not a (readable) rune-sync state."""


class DriverError(RuneSyncError):
    """A storage driver failed.

    ``driver``, ``operation`` and ``address`` say where; the message says why.
    """

    def __init__(
        self,
        message: str,
        *,
        driver: str = "",
        operation: str = "",
        address: str = "",
    ) -> None:
        super().__init__(message)
        self.driver = driver
        self.operation = operation
        self.address = address


class DriverConfigError(DriverError, ValueError):
    """The parameters or the request are invalid; retrying cannot help."""


class AccessModeUnsupported(DriverConfigError):
    """The driver does not advertise the requested access mode."""


class UnsupportedOperation(DriverError, NotImplementedError):
    """The driver does not support this operation (see its capabilities)."""


class OnlineExpandUnsupported(UnsupportedOperation):
    """The volume is attached and the driver cannot expand it online."""


class ResourceNotFound(DriverError, LookupError):
    """The volume, snapshot or node does not exist."""


class DriverAuthError(DriverError, PermissionError):
    """The backend rejected the credentials; never retried."""


class DriverTransientError(DriverError):
    """A temporary failure (timeout, 5xx, 429); the call may be retried.

    ``retry_after`` is the number of seconds the backend asked to wait, if it said.
    """

    def __init__(
        self,
        message: str,
        *,
        driver: str = "",
        operation: str = "",
        address: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, driver=driver, operation=operation, address=address)
        self.retry_after = retry_after
