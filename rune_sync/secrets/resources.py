"""Secrets from ``secret`` resources in the source, the last source asked.

Values written in the repository already get a warning from validation (RS230); this
module only answers lookups. A ``dynamic`` secret has no value rune-sync can read (an
engine makes it inside Rune), and a ``valueBase64`` that is not UTF-8 text cannot be a
driver parameter: the first reads as missing, the second is refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from rune_sync.secrets.store import Found, Missing, UnreadableSecret
from rune_sync.spec.model import Secret


class ResourceSource:
    """The source's secret resources, by namespace and name."""

    def __init__(self, secrets: Iterable[Secret]) -> None:
        self._secrets = {(s.namespace, s.name): s for s in secrets}

    def find(self, namespace: str, name: str, key: str) -> Found | Missing:
        secret = self._secrets.get((namespace, name))
        where = f"secret resource {namespace}/{name} in the source"
        if secret is None:
            return Missing((f"no {where}",))
        value = secret.values.get(key)
        if value is not None:
            return Found(value, where)
        if secret.type == "dynamic":
            return Missing((f"{where} is dynamic (rune-sync does not resolve dynamic secrets)",))
        if key in secret.keys:
            raise UnreadableSecret(
                f"key {key!r} of {where} holds binary data (valueBase64 that is not UTF-8 "
                "text); a driver parameter must be text"
            )
        has = ", ".join(sorted(secret.keys)) or "none"
        return Missing((f"no key {key!r} in {where} (its keys: {has})",))
