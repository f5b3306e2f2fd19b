"""The validation pipeline: load → runefile → schema pass → typed specs → rules.

:func:`validate_directory` returns every diagnostic of a source in one run, sorted by
file and line, with the typed specs of every resource that passed its schema. Rules
run over those whatever errors other resources have (DESIGN §3). Static: nothing here
looks at host paths or volume roots, and secret references are checked for form only.
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


def validate_resources(
    resources: tuple[load.RawResource, ...], schemas: SchemaSet
) -> tuple[SpecSet, list[Diagnostic]]:
    """Schema-check and type every raw resource; failing ones are left out of the specs."""
    diagnostics: list[Diagnostic] = []
    buckets: dict[Kind, list[build.Spec]] = {kind: [] for kind in Kind}
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
            buckets[raw.kind].append(build.build(raw))
        except build.BuildProblem as exc:
            diagnostics.append(
                Diagnostic(
                    code=exc.code,
                    message=exc.message,
                    location=where.locate(exc.path),
                    resource=label,
                )
            )
    specs = SpecSet(
        storage_classes=tuple(
            s for s in buckets[Kind.STORAGE_CLASS] if isinstance(s, StorageClass)
        ),
        volumes=tuple(s for s in buckets[Kind.VOLUME] if isinstance(s, Volume)),
        snapshots=tuple(s for s in buckets[Kind.SNAPSHOT] if isinstance(s, Snapshot)),
        services=tuple(s for s in buckets[Kind.SERVICE] if isinstance(s, Service)),
        secrets=tuple(s for s in buckets[Kind.SECRET] if isinstance(s, Secret)),
    )
    return specs, diagnostics


def validate_directory(
    root: Path,
    *,
    drivers: Mapping[str, Capabilities],
    parameter_rules: Mapping[str, ParameterRules] | None = None,
    runefile: Path | None = None,
    schemas: SchemaSet | None = None,
    cwd: Path | None = None,
) -> Validated:
    """Validate the source at ``root`` against the schemas and every rule."""
    schemas = schemas or SchemaSet()
    loaded = load.load_directory(root, runefile=runefile, cwd=cwd)
    settings, runefile_problems = runefile_mod.read(loaded.runefile, schemas)
    specs, problems = validate_resources(loaded.resources, schemas)
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
