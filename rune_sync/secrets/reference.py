"""Which parameters refer to a secret, and in which namespace each one is looked up.

Seed 000: ``secret:<name>/<key>`` resolves in the consuming volume's namespace,
``secret:<name>.<namespace>.rune/<key>`` is pinned, and the legacy
``apiTokenSecretRef: <namespace>/<name>`` reads key ``token``. Parsing itself lives in
:mod:`rune_sync.spec.secrets`; this module turns a parameter into the
(namespace, name, key) to look up and into the text messages name it by. Pure.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from rune_sync.spec import secrets as refs


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """A parameter that names a secret, placed in its consumer's namespace."""

    parameter: str
    written: str
    namespace: str
    name: str
    key: str

    @property
    def is_legacy(self) -> bool:
        return self.parameter == refs.LEGACY_PARAMETER

    @property
    def canonical(self) -> str:
        """The pinned spelling, ``secret:<name>.<namespace>.rune/<key>``."""
        return f"{refs.PREFIX}{self.name}.{self.namespace}.rune/{self.key}"

    @property
    def triple(self) -> tuple[str, str, str]:
        return (self.namespace, self.name, self.key)

    def __str__(self) -> str:
        """How messages name it: as written, with the pinned form when they differ."""
        if self.is_legacy:
            return f"{refs.LEGACY_PARAMETER} {self.written} ({self.canonical})"
        if self.written == self.canonical:
            return self.written
        return f"{self.written} ({self.canonical})"


def reference_of(namespace: str, parameter: str, value: str) -> Reference | None:
    """The reference ``parameter: value`` makes for a volume in ``namespace``, if any.

    Raises :class:`~rune_sync.spec.secrets.SecretReferenceError` for a malformed one.
    """
    if parameter == refs.LEGACY_PARAMETER:
        ref = refs.parse_legacy(value)
    elif refs.is_reference(value):
        ref = refs.parse_reference(value)
    else:
        return None
    ns, name, key = ref.in_namespace(namespace)
    return Reference(parameter=parameter, written=value, namespace=ns, name=name, key=key)


def references(namespace: str, parameters: Mapping[str, str]) -> Iterator[Reference]:
    """Every reference among ``parameters`` (in their order)."""
    for parameter, value in parameters.items():
        found = reference_of(namespace, parameter, value)
        if found is not None:
            yield found
