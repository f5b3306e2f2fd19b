"""Field-level diff of normalised specs: data, not text (renderers only print it).

``compute(old, new)`` walks two JSON-able mappings and returns one :class:`FieldDiff`
per changed leaf (mappings are descended; lists and scalars compare whole).
``apply(old, diffs)`` replays the diffs, so ``apply(a, compute(a, b)) == b``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rune_sync.plan.model import DiffOp, FieldDiff


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
        path = f"{prefix}{key}"
        if key not in new:
            out.append(FieldDiff(op=DiffOp.REMOVE, path=path, old=old[key]))
        elif key not in old:
            out.append(FieldDiff(op=DiffOp.ADD, path=path, new=new[key]))
        else:
            a, b = old[key], new[key]
            if isinstance(a, Mapping) and isinstance(b, Mapping):
                out.extend(compute(a, b, prefix=f"{path}."))
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
        *parents, leaf = _split(d.path)
        node = result
        for part in parents:
            node = node.setdefault(part, {})
        if d.op is DiffOp.REMOVE:
            node.pop(leaf, None)
        else:
            node[leaf] = d.new
    return result


def _split(path: str) -> list[str]:
    return path.split(".")


def _copy(value: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _copy(v) if isinstance(v, Mapping) else v for k, v in value.items()}
