"""Rules about parameters: local-host paths, secret references, driver parameters.

- RS209/RS210: a local-host ``hostPath`` is absolute, has no ``..`` and sits under the
  runefile's allowlist, compared by whole path components. Static: symlinks are the
  driver's to resolve when it provisions. RS224 warns when ``createIfMissing`` cannot
  be honoured.
- RS107/RS222: every ``secret:`` value (class, volume and claim-template parameters)
  is a well-formed reference; a shorthand reference on a cluster-scoped class warns.
  The legacy ``apiTokenSecretRef: <namespace>/<name>`` is checked for form too.
- RS226: parameters a driver declares (:class:`ParameterRules`): required keys, known
  keys, allowed values.
- RS233: a parameter a driver declares secret-bearing (``ParameterRules.secret``, e.g.
  do-volume's ``apiToken``) written as a plain value; the message never shows it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping

from rune_sync.diagnostics import Diagnostic, Location, Severity
from rune_sync.spec import hostpath, secrets
from rune_sync.spec.load import Origin
from rune_sync.spec.model import ParameterRules, StorageClass
from rune_sync.spec.ruleinput import LOCAL_HOST, RuleInput, VolumeSite, diag, loc

HOST_PATH = "hostPath"
CREATE_IF_MISSING = "createIfMissing"


def host_path_problem(path: str, allowlist: tuple[str, ...]) -> tuple[str, str] | None:
    """(code, message) when ``path`` is malformed (RS209) or outside ``allowlist`` (RS210).

    The same static check the local-host driver makes before resolving symlinks.
    """
    if not path.startswith("/"):
        return "RS209", f"hostPath {path!r} must be an absolute path"
    if ".." in path.split("/"):
        return "RS209", f"hostPath {path!r} must not contain '..'"
    if hostpath.host_path_problem(path, allowlist) is not None:
        return "RS210", (
            f"hostPath {path!r} is not under the runefile's "
            f"{hostpath.describe_allowlist(allowlist)}"
        )
    return None


def _param(site: VolumeSite, cls: StorageClass, key: str) -> tuple[str | None, Location | None]:
    """The merged value of parameter ``key`` and where it is written (volume over class)."""
    if key in site.volume.parameters:
        return site.volume.parameters[key], site.locate("parameters", key)
    if key in cls.parameters:
        return cls.parameters[key], loc(cls.origin, "parameters", key)
    return None, site.locate("parameters") or site.locate()


def rs209_rs210_rs224_host_paths(rin: RuleInput) -> Iterator[Diagnostic]:
    for site in rin.sites:
        cls = rin.class_of(site.volume)
        if cls is None or cls.driver != LOCAL_HOST:
            continue
        path, where = _param(site, cls, HOST_PATH)
        if path is None:
            yield diag(
                "RS209",
                "local-host volumes need parameters.hostPath (on the volume or its class)",
                where,
                site.label,
            )
            continue
        if not secrets.is_reference(path):
            problem = host_path_problem(path, rin.settings.host_path_allowlist)
            if problem is not None:
                yield diag(problem[0], problem[1], where, site.label)
        create, create_at = _param(site, cls, CREATE_IF_MISSING)
        if create == "true" and not rin.settings.allow_create_missing:
            yield diag(
                "RS224",
                'createIfMissing is "true" but the runefile does not set '
                "storage.allowCreateMissing: the directory must already exist",
                create_at,
                site.label,
                Severity.WARNING,
            )


def _reference_problem(key: str, value: str) -> str | None:
    try:
        if key == secrets.LEGACY_PARAMETER:
            secrets.parse_legacy(value)
        elif secrets.is_reference(value):
            secrets.parse_reference(value)
    except secrets.SecretReferenceError as exc:
        return str(exc)
    return None


ParameterSet = tuple[Mapping[str, str], Origin | None, str, tuple[str | int, ...]]


def _parameter_sets(rin: RuleInput) -> Iterator[ParameterSet]:
    """(parameters, origin, resource, path to the parameters) for every place they occur."""
    for cls in rin.classes:
        yield cls.parameters, cls.origin, str(cls.address), ("parameters",)
    for site in rin.sites:
        yield site.volume.parameters, site.origin, site.label, (*site.prefix, "parameters")


def rs107_rs222_secret_references(rin: RuleInput) -> Iterator[Diagnostic]:
    for cls in rin.classes:
        for key, value in cls.parameters.items():
            if key == secrets.LEGACY_PARAMETER or not secrets.is_reference(value):
                continue
            if (
                _reference_problem(key, value) is None
                and not secrets.parse_reference(value).is_pinned
            ):
                yield diag(
                    "RS222",
                    f"parameter {key!r} uses the shorthand {value!r} on a "
                    "cluster-scoped class: it resolves in each consuming volume's "
                    "namespace; pin it with secret:<name>.<namespace>.rune/<key>",
                    loc(cls.origin, "parameters", key),
                    cls.address,
                    Severity.WARNING,
                )
    for parameters, origin, resource, path in _parameter_sets(rin):
        for key, value in parameters.items():
            problem = _reference_problem(key, value)
            if problem is not None:
                yield diag("RS107", problem, loc(origin, *path, key), resource)


def rs226_driver_parameters(rin: RuleInput) -> Iterator[Diagnostic]:
    """Keys and values a driver declares; required keys belong on the class (seed 000)."""
    for cls in rin.classes:
        rules = rin.parameter_rules.get(cls.driver)
        if rules is None:
            continue
        for key, value in cls.parameters.items():
            yield from _key_problems(
                rules, cls.driver, key, value, loc(cls.origin, "parameters", key), str(cls.address)
            )
        for key in sorted(rules.required - cls.parameters.keys()):
            where = loc(cls.origin, "parameters") if cls.parameters else loc(cls.origin, "driver")
            yield diag(
                "RS226", f"driver {cls.driver!r} needs parameter {key!r}", where, cls.address
            )
    for site in rin.sites:
        used = rin.class_of(site.volume)
        site_rules = rin.parameter_rules.get(used.driver) if used is not None else None
        if used is None or site_rules is None:
            continue
        for key, value in site.volume.parameters.items():
            yield from _key_problems(
                site_rules, used.driver, key, value, site.locate("parameters", key), site.label
            )


def _key_problems(
    rules: ParameterRules, driver: str, key: str, value: str, where: Location | None, resource: str
) -> Iterator[Diagnostic]:
    if rules.known is not None and key not in rules.known:
        close = difflib.get_close_matches(key, sorted(rules.known), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        yield diag(
            "RS226",
            f"driver {driver!r} has no parameter {key!r}{hint}; it accepts "
            f"{', '.join(sorted(rules.known))}",
            where,
            resource,
        )
        return
    allowed = rules.choices.get(key)
    if allowed is not None and value not in allowed and not secrets.is_reference(value):
        yield diag(
            "RS226",
            f"parameter {key!r} of driver {driver!r} is {value!r}; allowed: "
            f"{', '.join(sorted(allowed))}",
            where,
            resource,
        )


def rs233_literal_secrets(rin: RuleInput) -> Iterator[Diagnostic]:
    """A credential written out where a ``secret:`` reference belongs (a warning)."""
    sets: list[tuple[str, ParameterSet]] = [
        (cls.driver, (cls.parameters, cls.origin, str(cls.address), ("parameters",)))
        for cls in rin.classes
    ]
    for site in rin.sites:
        used = rin.class_of(site.volume)
        if used is not None:
            sets.append(
                (
                    used.driver,
                    (site.volume.parameters, site.origin, site.label, (*site.prefix, "parameters")),
                )
            )
    for driver, (parameters, origin, resource, path) in sets:
        rules = rin.parameter_rules.get(driver)
        if rules is None:
            continue
        for key in sorted(rules.secret & parameters.keys()):
            value = parameters[key]
            if not value or secrets.is_reference(value):
                continue
            yield diag(
                "RS233",
                f"parameter {key!r} of driver {driver!r} is a secret written out in the "
                "source: it would be recorded as written in the state and in plans; put "
                f"it in a secret and write secret:<name>.<namespace>.rune/<key> instead "
                "(e.g. secret:do-api-token.shared.rune/token)",
                loc(origin, *path, key),
                resource,
                Severity.WARNING,
            )
