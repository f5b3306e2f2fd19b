"""Secrets from environment variables ``RUNE_SECRET_<NAMESPACE>_<NAME>_<KEY>``.

The name mapping and the collisions it allows are in :mod:`rune_sync.secrets.naming`.
A variable that is set answers, even when empty. When one run takes two different
secrets from the same variable, one warning (RS404) per variable names both: the fix
is to put them in the secrets directory, which is asked first.

Reads the mapping it is given (``os.environ`` in the CLI); never changes it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from rune_sync.diagnostics import Diagnostic, Severity
from rune_sync.secrets import naming
from rune_sync.secrets.notices import Notices
from rune_sync.secrets.store import Found, Missing
from rune_sync.spec.secrets import SecretValue


def _pinned(triple: tuple[str, str, str]) -> str:
    namespace, name, key = triple
    return f"secret:{name}.{namespace}.rune/{key}"


class EnvironmentSource:
    """Looks secrets up in ``environ``."""

    def __init__(self, environ: Mapping[str, str], *, notices: Notices) -> None:
        self._environ = environ
        self._notices = notices
        self._lock = threading.Lock()
        self._served: dict[str, tuple[str, str, str]] = {}

    def find(self, namespace: str, name: str, key: str) -> Found | Missing:
        variable = naming.env_name(namespace, name, key)
        value = self._environ.get(variable)
        if value is None:
            return Missing((f"no environment variable {variable}",))
        self._note_use(variable, (namespace, name, key))
        return Found(SecretValue(value), f"environment variable {variable}")

    def _note_use(self, variable: str, triple: tuple[str, str, str]) -> None:
        with self._lock:
            first = self._served.setdefault(variable, triple)
        if first == triple:
            return
        self._notices.add(
            f"env:{variable}",
            Diagnostic(
                code="RS404",
                severity=Severity.WARNING,
                message=(
                    f"environment variable {variable} serves both {_pinned(first)} and "
                    f"{_pinned(triple)}: their names map to the same variable; put them in "
                    "the secrets directory (DIR/<namespace>/<name>/<key>), which is read first"
                ),
            ),
        )
