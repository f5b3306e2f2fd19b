"""Secret references and a value type that will not print itself.

Forms (seed 000, *Secret references in parameters*)::

    secret:<name>/<key>                 resolved in the consuming Volume's namespace
    secret:<name>.<namespace>.rune/<key> pinned to one namespace
    apiTokenSecretRef: <namespace>/<name>  legacy; reads key ``token``

Parsing is pure. Resolution (secrets directory, environment, secret resources) comes
later and lives beside the driver calls; nothing here reads a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rune_sync.spec import names

PREFIX = "secret:"
LEGACY_PARAMETER = "apiTokenSecretRef"
LEGACY_KEY = "token"

_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

REFERENCE_PATTERN = (
    r"^secret:[a-z0-9]([-a-z0-9]*[a-z0-9])?"
    r"(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?\.rune)?/[-._a-zA-Z0-9]+$"
)
"""A well-formed reference as a JSON Schema ``pattern``."""


class SecretReferenceError(ValueError):
    """A value that starts with ``secret:`` but is not a well-formed reference."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretRef:
    """A reference to one key of one secret. ``namespace`` is None for the shorthand."""

    name: str
    key: str
    namespace: str | None = None

    @property
    def is_pinned(self) -> bool:
        return self.namespace is not None

    def in_namespace(self, consumer_namespace: str) -> tuple[str, str, str]:
        """(namespace, name, key) once the consuming volume's namespace is known."""
        return (self.namespace or consumer_namespace, self.name, self.key)

    def __str__(self) -> str:
        if self.namespace is None:
            return f"{PREFIX}{self.name}/{self.key}"
        return f"{PREFIX}{self.name}.{self.namespace}.rune/{self.key}"


def is_reference(value: str) -> bool:
    return value.startswith(PREFIX)


def parse_reference(value: str) -> SecretRef:
    """Parse ``secret:…``; raises :class:`SecretReferenceError` naming what is wrong."""
    if not value.startswith(PREFIX):
        raise SecretReferenceError(f"{value!r} is not a secret reference")
    body = value[len(PREFIX) :]
    target, sep, key = body.partition("/")
    if not sep or not key:
        raise SecretReferenceError(
            f"secret reference {value!r} needs a key: write secret:<name>/<key> "
            "or secret:<name>.<namespace>.rune/<key>"
        )
    if not _KEY.match(key):
        raise SecretReferenceError(f"secret reference {value!r}: key {key!r} is not a valid key")
    name, namespace = names.split_qualified(target)
    if namespace is None and "." in target:
        raise SecretReferenceError(
            f"secret reference {value!r}: a qualified name is written <name>.<namespace>.rune"
        )
    for part, what in ((name, "name"), (namespace, "namespace")):
        if part is None:
            continue
        problem = names.label_problem(part)
        if problem:
            raise SecretReferenceError(f"secret reference {value!r}: {what} {part!r} {problem}")
    return SecretRef(name=name, key=key, namespace=namespace)


def parse_legacy(value: str) -> SecretRef:
    """Parse ``apiTokenSecretRef: <namespace>/<name>`` (key ``token``)."""
    namespace, sep, name = value.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise SecretReferenceError(
            f"{LEGACY_PARAMETER} {value!r} must be written <namespace>/<name>"
        )
    for part, what in ((namespace, "namespace"), (name, "name")):
        problem = names.label_problem(part)
        if problem:
            raise SecretReferenceError(f"{LEGACY_PARAMETER} {value!r}: {what} {part!r} {problem}")
    return SecretRef(name=name, key=LEGACY_KEY, namespace=namespace)


class SecretValue:
    """A resolved secret. ``str()``/``repr()`` mask it; :meth:`reveal` hands it to a driver."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretValue('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SecretValue):
            return self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("SecretValue", self._value))

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("secret values are not serialisable")
