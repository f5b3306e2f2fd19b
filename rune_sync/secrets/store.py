"""The chain of secret sources, asked in order until one has the key.

DESIGN §9: the secrets directory, then the environment, then ``secret`` resources in
the source. Each source answers one lookup with the value (:class:`Found`) or with a
description of where it looked (:class:`Missing` collects them), or refuses with
:class:`UnreadableSecret` when what it found must not be used (a file that leads
outside the secrets directory, an unreadable file, binary data). A refusal stops the
chain: falling through to a later source would hide the operator's mistake.

Answers hold :class:`~rune_sync.spec.secrets.SecretValue` objects, which mask
themselves; nothing here prints, logs or stores a value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rune_sync.spec.secrets import SecretValue


class UnreadableSecret(Exception):
    """A source found the secret but must not use it; the message names where, not what."""


@dataclass(frozen=True, slots=True)
class Found:
    value: SecretValue
    where: str
    """Where it came from: ``file DIR/ns/name/key``, ``environment variable …``, …"""


@dataclass(frozen=True, slots=True)
class Missing:
    looked: tuple[str, ...]
    """One phrase per source saying what it did not find (``no file DIR/ns/name/key``)."""


class Source(Protocol):
    """One place secrets come from."""

    def find(self, namespace: str, name: str, key: str) -> Found | Missing:
        """Key ``key`` of secret ``namespace/name``, or where this source looked.

        Raises :class:`UnreadableSecret` when the key is there but must not be used.
        Never raises for a secret that simply is not there.
        """
        ...


class SecretStore:
    """The sources in order; the first that has the key answers."""

    def __init__(self, sources: Sequence[Source]) -> None:
        self._sources = tuple(sources)

    def find(self, namespace: str, name: str, key: str) -> Found | Missing:
        looked: list[str] = []
        for source in self._sources:
            answer = source.find(namespace, name, key)
            if isinstance(answer, Found):
                return answer
            looked.extend(answer.looked)
        return Missing(tuple(looked))
