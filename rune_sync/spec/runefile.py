"""The runefile: its ``storage`` section (DESIGN §2) and rune-sync's own ``sync`` section.

Parses ``runefile.yaml|yml`` (with positions) or ``runefile.toml`` (stdlib tomllib),
checks the two sections against ``schemas/runefile.schema.json`` and returns the
settings with their defaults. Every other section belongs to ``runed`` and is ignored.
TOML accepts ``preserveOnDelete`` under ``[storage.local]`` as well as ``[storage]``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rune_sync.diagnostics import Diagnostic, Location
from rune_sync.spec import yamlread
from rune_sync.spec.load import SourceFile
from rune_sync.spec.model import Runefile, StorageSettings
from rune_sync.spec.schemas import RUNEFILE, SchemaSet, Where

_TOML_POS = re.compile(r"at line (\d+), column (\d+)")


def _parse(source: SourceFile) -> tuple[Any, Diagnostic | None]:
    if source.path.suffix == ".toml":
        try:
            return tomllib.loads(source.text), None
        except tomllib.TOMLDecodeError as exc:
            m = _TOML_POS.search(str(exc))
            line, col = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
            message = _TOML_POS.sub("", str(exc)).strip(" ()")
            return None, Diagnostic(
                code="RS302",
                message=f"invalid TOML: {message}",
                location=Location(file=source.display, line=line, column=col),
            )
    try:
        docs = yamlread.parse(source.text)
    except yamlread.YamlProblem as exc:
        return None, Diagnostic(
            code=exc.code if exc.code != "RS001" else "RS302",
            message=f"invalid YAML: {exc.message}",
            location=Location(file=source.display, line=exc.pos[0], column=exc.pos[1]),
        )
    docs = [d for d in docs if d.value is not None]
    if len(docs) > 1:
        pos = docs[1].pos
        return None, Diagnostic(
            code="RS302",
            message="a runefile holds one YAML document",
            location=Location(file=source.display, line=pos[0], column=pos[1]),
        )
    return (docs[0].value if docs else {}), None


def _toml_locator(text: str) -> Callable[[tuple[str | int, ...]], yamlread.Pos | None]:
    """Finds the line of a ``key =`` inside its table (tomllib keeps no positions)."""
    found: dict[str, yamlread.Pos] = {}
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            table = stripped.strip("[] ")
            found.setdefault(table, (number, 1))
            continue
        key, sep, _ = stripped.partition("=")
        if sep and table:
            found.setdefault(f"{table}.{key.strip()}", (number, line.index(key.strip()) + 1))

    def locate(path: tuple[str | int, ...]) -> yamlread.Pos | None:
        parts = [str(p) for p in path]
        while parts:
            pos = found.get(".".join(parts))
            if pos is not None:
                return pos
            parts.pop()
        return None

    return locate


def setting_location(source: SourceFile | None, *path: str) -> Location | None:
    """Where a setting of the runefile is written (for diagnostics about its value)."""
    if source is None:
        return None
    if source.path.suffix == ".toml":
        return Where(source.display, _toml_locator(source.text)).locate(path)
    try:
        docs = yamlread.parse(source.text)
    except yamlread.YamlProblem:
        return Location(file=source.display)
    node = docs[0].value if docs else None
    return Where.of_node(source.display, node).locate(path)


def read(source: SourceFile | None, schemas: SchemaSet) -> tuple[Runefile, list[Diagnostic]]:
    """The runefile's settings (defaults where absent) and its problems."""
    if source is None:
        return Runefile(path=None), []
    data, problem = _parse(source)
    if problem is not None:
        return Runefile(path=source.path), [problem]
    if not isinstance(data, dict):
        return Runefile(path=source.path), [
            Diagnostic(
                code="RS302",
                message="a runefile must be a mapping of sections (storage:, sync:, …)",
                location=Location(file=source.display, line=1, column=1),
            )
        ]
    if isinstance(data, yamlread.PosDict):
        where = Where.of_node(source.display, data, "runefile")
    else:
        where = Where(source.display, _toml_locator(source.text), "runefile")
    diagnostics = schemas.check(RUNEFILE, data, where)
    if any(d.is_error for d in diagnostics):
        return Runefile(path=source.path), diagnostics
    storage = data.get("storage") or {}
    sync = data.get("sync") or {}
    return Runefile(path=source.path, storage=_storage(storage), sync=dict(sync)), diagnostics


def _storage(section: Mapping[str, Any]) -> StorageSettings:
    local = section.get("local") or {}
    root = Path(section.get("localVolumeRoot", "/var/lib/rune/volumes"))
    snapshot_root = section.get("snapshotRoot")
    return StorageSettings(
        default_storage_class=section.get("defaultStorageClass", "local"),
        local_volume_root=root,
        snapshot_root=Path(snapshot_root) if snapshot_root else None,
        host_path_allowlist=tuple(section.get("hostPathAllowlist") or ()),
        allow_create_missing=bool(section.get("allowCreateMissing", False)),
        preserve_on_delete=bool(
            section.get("preserveOnDelete", False) or local.get("preserveOnDelete", False)
        ),
    )
