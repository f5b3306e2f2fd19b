"""DNS-1123 labels and the reference forms built from them.

Pure functions shared by the schema pass (patterns) and the rules.
"""

from __future__ import annotations

import re

DNS1123_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_LABEL_MAX = 63
_LABEL = re.compile(DNS1123_LABEL_PATTERN)

DEFAULT_NAMESPACE = "default"


def is_dns1123_label(value: str) -> bool:
    """True for a lowercase RFC 1123 label of at most 63 characters."""
    return len(value) <= DNS1123_LABEL_MAX and _LABEL.match(value) is not None


def label_problem(value: str) -> str | None:
    """Why ``value`` is not a DNS-1123 label, or ``None`` if it is one."""
    if not value:
        return "must not be empty"
    if len(value) > DNS1123_LABEL_MAX:
        return f"is {len(value)} characters long; at most {DNS1123_LABEL_MAX} are allowed"
    if _LABEL.match(value) is None:
        return (
            "must consist of lowercase letters, digits and '-', "
            "and start and end with a letter or digit"
        )
    return None


def split_qualified(name: str) -> tuple[str, str | None]:
    """Split ``name.namespace.rune`` into (name, namespace); a bare name has no namespace."""
    if name.endswith(".rune"):
        parts = name[: -len(".rune")].split(".")
        if len(parts) == 2:
            return parts[0], parts[1]
    return name, None
