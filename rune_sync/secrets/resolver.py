"""Resolving the secret references of a volume's parameters, just before a driver call.

:class:`Resolver` is the apply engine's ``ParameterResolver``: called with the consuming
volume's namespace and the merged parameters (references as written, the way plans and
state keep them), it returns a new read-only mapping in which every ``secret:`` value —
and the legacy ``apiTokenSecretRef: <namespace>/<name>``, key ``token`` — is replaced by
the plaintext the driver needs. Keys are never renamed: ``apiTokenSecretRef`` keeps its
key and gets the token as its value (do-volume reads ``apiToken`` first, then
``apiTokenSecretRef``). Values without the prefix pass verbatim.

A reference that does not resolve raises
:class:`~rune_sync.errors.DriverConfigError` (Rune's InvalidParameters) naming the
reference and every place looked in; never the value. Resolved values exist only in
the returned mapping and in the run's :class:`~rune_sync.secrets.redact.Redactor`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from rune_sync import errors
from rune_sync.secrets import reference as references
from rune_sync.secrets.directory import DirectorySource
from rune_sync.secrets.environment import EnvironmentSource
from rune_sync.secrets.notices import Notices
from rune_sync.secrets.redact import Redactor
from rune_sync.secrets.reference import Reference
from rune_sync.secrets.resources import ResourceSource
from rune_sync.secrets.store import Found, SecretStore, UnreadableSecret
from rune_sync.spec.model import Secret
from rune_sync.spec.secrets import SecretReferenceError, SecretValue

OPERATION = "resolve secrets"


@dataclass(frozen=True, slots=True, kw_only=True)
class Unresolved:
    """Why a secret has no value: where it was looked for, or (``refused``) why what a
    source found must not be used."""

    reason: str
    refused: bool = False

    def message(self, ref: Reference) -> str:
        """The error text, naming ``ref`` as written."""
        if self.refused:
            return f"{ref}: {self.reason}"
        return f"{ref} does not resolve: {self.reason}"


class Resolver:
    """Secret references → values, through a :class:`SecretStore`. Thread-safe."""

    def __init__(
        self,
        store: SecretStore,
        *,
        notices: Notices | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self._store = store
        self.notices = notices or Notices()
        self.redactor = redactor or Redactor()
        # One lookup per secret and run: refresh and apply resolve the same token for
        # every volume of a class. Values stay in memory only, like the redactor's.
        self._answers: dict[tuple[str, str, str], Found | Unresolved] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_sources(
        cls,
        *,
        secrets_dir: Path | None,
        environ: Mapping[str, str] | None = None,
        resources: Iterable[Secret] = (),
    ) -> Resolver:
        """The chain of DESIGN §9: ``secrets_dir``, then ``environ`` (default
        ``os.environ``), then the source's ``secret`` resources."""
        notices = Notices()
        store = SecretStore(
            (
                DirectorySource(secrets_dir, notices=notices),
                EnvironmentSource(os.environ if environ is None else environ, notices=notices),
                ResourceSource(resources),
            )
        )
        return cls(store, notices=notices)

    def __call__(self, namespace: str, parameters: Mapping[str, str]) -> Mapping[str, str]:
        """``parameters`` of a volume in ``namespace`` with every reference resolved.

        Raises ``DriverConfigError`` for a malformed reference or one that does not
        resolve.
        """
        resolved = dict(parameters)
        for parameter, value in parameters.items():
            try:
                ref = references.reference_of(namespace, parameter, value)
            except SecretReferenceError as exc:
                raise errors.DriverConfigError(str(exc), operation=OPERATION) from None
            if ref is not None:
                resolved[parameter] = self.value(ref).reveal()
        return MappingProxyType(resolved)

    def value(self, ref: Reference) -> SecretValue:
        """The value of ``ref``; raises ``DriverConfigError`` when it does not resolve."""
        answer = self.lookup(ref)
        if isinstance(answer, Unresolved):
            raise errors.DriverConfigError(answer.message(ref), operation=OPERATION)
        return answer.value

    def lookup(self, ref: Reference) -> Found | Unresolved:
        """The value of ``ref`` and where it came from, or why there is none (asked of
        the sources once per run)."""
        with self._lock:
            known = self._answers.get(ref.triple)
        if known is not None:
            return known
        answer = self._find(ref)
        with self._lock:
            return self._answers.setdefault(ref.triple, answer)

    def _find(self, ref: Reference) -> Found | Unresolved:
        try:
            answer = self._store.find(*ref.triple)
        except UnreadableSecret as exc:
            return Unresolved(reason=str(exc), refused=True)
        if isinstance(answer, Found):
            self.redactor.remember(answer.value.reveal())
            return answer
        return Unresolved(reason="; ".join(answer.looked))
