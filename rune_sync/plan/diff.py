"""Field-level diff of normalised specs: data, not text (renderers only print it).

``compute(old, new)`` walks two JSON-able mappings and returns one :class:`FieldDiff`
per changed leaf (mappings are descended; lists and scalars compare whole).
``apply(old, diffs)`` replays the diffs, so ``apply(a, compute(a, b)) == b``.

Paths join keys with ``.``; a key that itself holds ``.``, ``[``, ``]`` or ``"`` (label
keys such as ``app.kubernetes.io/name``) is written ``["…"]`` in JSON quotes, so
``labels["app.kubernetes.io/name"]`` stays unambiguous.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from rune_sync.plan.model import DiffOp, FieldDiff

_PLAIN_KEY = re.compile(r'[^.\[\]"]+')


def _segment(key: str) -> str:
    return key if _PLAIN_KEY.fullmatch(key) else f"[{json.dumps(key)}]"


def join(prefix: str, key: str) -> str:
    """``prefix`` extended by ``key`` (quoted when it needs to be)."""
    seg = _segment(key)
    if not prefix:
        return seg
    return f"{prefix}{seg}" if seg.startswith("[") else f"{prefix}.{seg}"


def split(path: str) -> list[str]:
    """The keys of a path written by :func:`join`."""
    keys: list[str] = []
    decoder = json.JSONDecoder()
    i = 0
    while i < len(path):
        if path[i] == ".":
            i += 1
        if path.startswith('["', i):
            key, end = decoder.raw_decode(path, i + 1)
            keys.append(key)
            i = end + 1  # past the closing ']'
        else:
            end = i
            while end < len(path) and path[end] not in ".[":
                end += 1
            keys.append(path[i:end])
            i = end
    return keys


def top(path: str) -> str:
    """The first key of a path (the spec field a diff is about)."""
    return split(path)[0]


def compute(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    ignore: frozenset[str] = frozenset(),
    prefix: str = "",
) -> tuple[FieldDiff, ...]:
    """Every changed field between ``old`` and ``new``, sorted by path."""
    out: list[FieldDiff] = []
    for key in sorted(set(old) | set(new)):
        if not prefix and key in ignore:
            continue
        path = join(prefix, key)
        if key not in new:
            out.append(FieldDiff(op=DiffOp.REMOVE, path=path, old=old[key]))
        elif key not in old:
            out.append(FieldDiff(op=DiffOp.ADD, path=path, new=new[key]))
        else:
            a, b = old[key], new[key]
            if isinstance(a, Mapping) and isinstance(b, Mapping):
                out.extend(compute(a, b, prefix=path))
            elif _normal(a) != _normal(b):
                out.append(FieldDiff(op=DiffOp.CHANGE, path=path, old=a, new=b))
    return tuple(out)


def _normal(value: Any) -> Any:
    """Lists and tuples compare alike (a stored spec holds tuples, a fresh one lists)."""
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _normal(v) for k, v in value.items()}
    return value


def apply(old: Mapping[str, Any], diffs: tuple[FieldDiff, ...]) -> dict[str, Any]:
    """``old`` with ``diffs`` applied (a deep copy; ``old`` is not changed)."""
    result = _copy(old)
    for d in diffs:
        *parents, leaf = split(d.path)
        node = result
        for part in parents:
            node = node.setdefault(part, {})
        if d.op is DiffOp.REMOVE:
            node.pop(leaf, None)
        else:
            node[leaf] = d.new
    return result


def _copy(value: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, Mapping) else v for k, v in value.items()}
