"""The layers of STYLE §1: no module of ``rune_sync`` imports from a layer above its own.

Top to bottom: ``cli`` → ``watch`` → ``apply`` → ``secrets`` → ``plan`` → ``state``,
``drivers`` → ``spec`` → ``source`` → ``diagnostics``, ``errors`` (and the package root,
which only holds ``__version__``). Modules of one layer may import each other.

Two packages need a place the style guide does not draw:

- ``secrets`` resolves references just before a driver call; its docstring puts it above
  ``spec`` and ``drivers`` and below ``cli``. It sits under ``apply`` (which receives the
  resolver as a callable) and over ``plan`` (which never sees a value).
- ``testing`` is the public conformance suite for driver and state-backend authors. It
  checks the contracts of ``drivers`` and ``state``, so it may import those layers and
  below; and no production module may import it (it is support code for tests).

Every ``import`` counts — module level, inside functions, and under ``TYPE_CHECKING``
(a type-only import still couples the layers). A new top-level package fails this test
until it is given a layer here.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rune_sync"

LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"__main__", "cli"}),
    frozenset({"watch"}),
    frozenset({"apply"}),
    frozenset({"secrets"}),
    frozenset({"plan"}),
    frozenset({"testing"}),
    frozenset({"state", "drivers"}),
    frozenset({"spec"}),
    frozenset({"source"}),
    frozenset({"diagnostics", "errors", ""}),
)
"""Top to bottom; ``""`` is the package root (``rune_sync/__init__.py``)."""

RANK = {part: len(LAYERS) - index for index, layer in enumerate(LAYERS) for part in layer}

TEST_SUPPORT = "testing"


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    line: int
    target: str  # the imported module, dotted


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer_of(module: str) -> str:
    """``rune_sync.plan.diff`` → ``plan``; ``rune_sync`` → ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports(path: Path) -> list[Import]:
    return _imports_of(
        module=_module_name(path),
        code=path.read_text(encoding="utf-8"),
        is_package=path.name == "__init__.py",
    )


def _imports_of(*, module: str, code: str, is_package: bool) -> list[Import]:
    found: list[Import] = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module, is_package)
            # `from rune_sync import plan` imports the layer `plan`, not the root
            if base == "rune_sync":
                targets = [f"{base}.{alias.name}" for alias in node.names]
            else:
                targets = [base]
        else:
            continue
        found += [
            Import(module=module, line=node.lineno, target=t)
            for t in targets
            if t == "rune_sync" or t.startswith("rune_sync.")
        ]
    return found


def _all_imports() -> list[Import]:
    return [i for path in sorted(PACKAGE.rglob("*.py")) for i in _imports(path)]


def _upward(imports: list[Import]) -> list[str]:
    problems = []
    for imp in imports:
        source, target = _layer_of(imp.module), _layer_of(imp.target)
        if target == "__version__":  # `from rune_sync import __version__`: the root
            target = ""
        if target == TEST_SUPPORT and source != TEST_SUPPORT:
            problems.append(f"{imp.module}:{imp.line} imports {imp.target} (test support)")
        elif RANK.get(target, 0) > RANK.get(source, 0):
            problems.append(f"{imp.module}:{imp.line} imports {imp.target} (a higher layer)")
    return problems


def test_every_top_level_package_has_a_layer():
    parts = {_layer_of(_module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert parts - set(RANK) == set(), "give the new package a place in LAYERS"


def test_no_module_imports_from_a_layer_above_its_own():
    assert _upward(_all_imports()) == []


@pytest.mark.parametrize(
    ("module", "code", "expected"),
    [
        ("rune_sync.spec.rules", "from rune_sync.plan import model", ["higher layer"]),
        ("rune_sync.state.sqlite", "def f():\n    import rune_sync.cli\n", ["higher layer"]),
        (
            "rune_sync.errors",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from rune_sync.spec.model import Address\n",
            ["higher layer"],
        ),
        ("rune_sync.cli.plan", "from rune_sync.testing import DriverConformance", ["test support"]),
        ("rune_sync.cli.plan", "from rune_sync.plan import planner", []),
        ("rune_sync.testing.state", "from rune_sync.state import backend", []),
        ("rune_sync.apply.engine", "from ..plan import model", []),
        ("rune_sync.plan.model", "from ..apply import engine", ["higher layer"]),
        ("rune_sync.drivers.local", "from rune_sync import __version__", []),
        ("rune_sync.spec.load", "from rune_sync import drivers", ["higher layer"]),
    ],
)
def test_the_check_sees_every_form_of_import(module, code, expected):
    problems = _upward(_imports_of(module=module, code=code, is_package=False))
    assert [p.rsplit("(", 1)[1].rstrip(")").removeprefix("a ") for p in problems] == expected
