"""The validation pipeline: load → runefile → schema pass → typed specs → rules.

:func:`validate_directory` returns every diagnostic of a source in one run, sorted by
file and line, with the typed specs of every resource that passed its schema. Rules
run over those whatever errors other resources have (DESIGN §3). Static: nothing here
looks at host paths or volume roots, and secret references are checked for form only.

A :class:`SourceCache` lets a long-running caller (watch) validate the same source again
and again: unchanged files are neither parsed nor schema-checked again; the runefile,
the rules and everything after them always run over the whole source.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rune_sync.diagnostics import Diagnostic, Location, has_errors, sorted_diagnostics
from rune_sync.spec import build, load, ruleinput, rules
from rune_sync.spec import runefile as runefile_mod
from rune_sync.spec.model import (
    Capabilities,
    Kind,
    ParameterRules,
    Runefile,
    Secret,
    Service,
    Snapshot,
    SpecSet,
    StorageClass,
    Volume,
)
from rune_sync.spec.schemas import KIND_SCHEMAS, SchemaSet, Where


@dataclass(frozen=True, slots=True, kw_only=True)
class Validated:
    """The outcome of validating a source: specs, settings, and every diagnostic."""

    specs: SpecSet
    runefile: Runefile
    diagnostics: tuple[Diagnostic, ...]
    digest: str
    files: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def _label(kind: Kind, data: Mapping[str, object]) -> str:
    name = data.get("name")
    if not isinstance(name, str) or not name:
        return ""
    if not kind.namespaced:
        return f"{kind.value}/{name}"
    namespace = data.get("namespace")
    ns = namespace if isinstance(namespace, str) and namespace else "default"
    return f"{kind.value}/{ns}/{name}"


class SourceCache:
    """What validating one source again can reuse: each file's parse
    (:class:`~rune_sync.spec.load.ParseCache`), the schemas with their memo, and each
    unchanged file's schema-checked, typed resources. One caller at a time."""

    def __init__(self) -> None:
        self.parsed = load.ParseCache()
        self.schemas = SchemaSet()
        self._checked: dict[int, tuple[tuple[load.RawResource, ...], _Checked]] = {}

    def check(self, group: tuple[load.RawResource, ...]) -> _Checked:
        # Keyed by the group's identity: the parse cache hands back the same tuple for an
        # unchanged file, and the entry keeps that tuple alive, so the id is never reused.
        entry = self._checked.get(id(group))
        if entry is not None and entry[0] is group:
            return entry[1]
        checked = _check(group, self.schemas)
        self._checked[id(group)] = (group, checked)
        return checked

    def keep_only(self, groups: tuple[tuple[load.RawResource, ...], ...]) -> None:
        alive = {id(g) for g in groups}
        for key in [k for k in self._checked if k not in alive]:
            del self._checked[key]


_Checked = tuple[tuple[build.Spec, ...], tuple[Diagnostic, ...]]


def validate_resources(
    resources: tuple[load.RawResource, ...], schemas: SchemaSet
) -> tuple[SpecSet, list[Diagnostic]]:
    """Schema-check and type every raw resource; failing ones are left out of the specs."""
    built, diagnostics = _check(resources, schemas)
    return _spec_set(built), list(diagnostics)


def _check(resources: tuple[load.RawResource, ...], schemas: SchemaSet) -> _Checked:
    diagnostics: list[Diagnostic] = []
    built: list[build.Spec] = []
    for raw in resources:
        label = _label(raw.kind, raw.data)
        where = Where(
            raw.origin.file, raw.origin.position, label, hide_values=raw.kind is Kind.SECRET
        )
        problems = schemas.check(KIND_SCHEMAS[raw.kind], raw.data, where)
        if problems:
            diagnostics.extend(problems)
            if any(p.is_error for p in problems):
                continue
        try:
            built.append(build.build(raw))
        except build.BuildProblem as exc:
            diagnostics.append(
                Diagnostic(
                    code=exc.code,
                    message=exc.message,
                    location=where.locate(exc.path),
                    resource=label,
                )
            )
    return tuple(built), tuple(diagnostics)


def _spec_set(built: list[build.Spec] | tuple[build.Spec, ...]) -> SpecSet:
    return SpecSet(
        storage_classes=tuple(s for s in built if isinstance(s, StorageClass)),
        volumes=tuple(s for s in built if isinstance(s, Volume)),
        snapshots=tuple(s for s in built if isinstance(s, Snapshot)),
        services=tuple(s for s in built if isinstance(s, Service)),
        secrets=tuple(s for s in built if isinstance(s, Secret)),
    )


def validate_directory(
    root: Path,
    *,
    drivers: Mapping[str, Capabilities],
    parameter_rules: Mapping[str, ParameterRules] | None = None,
    runefile: Path | None = None,
    schemas: SchemaSet | None = None,
    cwd: Path | None = None,
    cache: SourceCache | None = None,
) -> Validated:
    """Validate the source at ``root`` against the schemas and every rule.

    With ``cache`` (whose own schemas are then used), unchanged files are neither parsed
    nor schema-checked again; the result is the same as without it."""
    if cache is None:
        schemas = schemas or SchemaSet()
        loaded = load.load_directory(root, runefile=runefile, cwd=cwd)
        specs, problems = validate_resources(loaded.resources, schemas)
    else:
        schemas = cache.schemas
        loaded = load.load_directory(root, runefile=runefile, cwd=cwd, cache=cache.parsed)
        checked = [cache.check(group) for group in loaded.groups]
        cache.keep_only(loaded.groups)
        specs = _spec_set([spec for built, _ in checked for spec in built])
        problems = [d for _, found in checked for d in found]
    settings, runefile_problems = runefile_mod.read(loaded.runefile, schemas)
    rule_input = ruleinput.RuleInput(
        specs=specs,
        settings=settings.storage,
        settings_location=runefile_mod.setting_location(
            loaded.runefile, "storage", "defaultStorageClass"
        )
        or Location(file="runefile"),
        drivers=drivers,
        parameter_rules=parameter_rules or {},
    )
    diagnostics = sorted_diagnostics(
        [*loaded.diagnostics, *runefile_problems, *problems, *rules.check(rule_input)]
    )
    return Validated(
        specs=specs,
        runefile=settings,
        diagnostics=diagnostics,
        digest=loaded.digest,
        files=loaded.files,
    )
