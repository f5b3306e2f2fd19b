"""The plan-time check: every secret reference of the desired state resolves.

DESIGN §3/§9: validation checks references for form only; plan and apply check that
each secret and key exists and, if not, fail naming the reference before any driver
call. :func:`check` looks up every reference among the desired volumes' merged
parameters (shorthand ones in the volume's namespace) and the pinned or legacy
references of the desired classes (a shorthand one on a class has no namespace of its
own; RS222 warns about it). It reports RS401 (does not resolve) and RS402 (found but
refused), one per place written and secret, at the line of the parameter, followed by
the warnings the sources raised (RS403, RS404). Values are looked up, never shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rune_sync.diagnostics import Diagnostic, Location, sorted_diagnostics
from rune_sync.secrets import reference as references
from rune_sync.secrets.resolver import Resolver, Unresolved
from rune_sync.spec.expand import Desired, DesiredSet
from rune_sync.spec.load import Origin
from rune_sync.spec.model import Kind
from rune_sync.spec.secrets import SecretReferenceError

MISSING = "RS401"
REFUSED = "RS402"


@dataclass(slots=True)
class _Problem:
    code: str
    message: str
    location: Location | None
    resource: str
    consumers: list[str] = field(default_factory=list)

    def diagnostic(self) -> Diagnostic:
        message = self.message
        if self.consumers:
            first, more = self.consumers[0], len(self.consumers) - 1
            message += f" (needed by {first}" + (f" and {more} more)" if more else ")")
        return Diagnostic(
            code=self.code, message=message, location=self.location, resource=self.resource
        )


class _Findings:
    """One problem per (place written, secret), with the volumes that need it."""

    def __init__(self, desired: DesiredSet) -> None:
        self._classes = {
            a.name: want for a, want in desired.resources.items() if a.kind is Kind.STORAGE_CLASS
        }
        self._problems: dict[tuple[str, str, str], _Problem] = {}

    def add(self, want: Desired, parameter: str, *, code: str, message: str, secret: str) -> None:
        location, resource = self._where(want, parameter)
        key = (str(location), resource, secret)
        problem = self._problems.get(key)
        if problem is None:
            problem = self._problems[key] = _Problem(code, message, location, resource)
        if str(want.address) != resource:
            problem.consumers.append(str(want.address))

    def diagnostics(self) -> list[Diagnostic]:
        return [p.diagnostic() for p in self._problems.values()]

    def _where(self, want: Desired, parameter: str) -> tuple[Location | None, str]:
        """Where ``parameter`` of ``want`` is written: on the resource itself, or its class."""
        origin = want.origin
        if want.address.kind is Kind.STORAGE_CLASS or _writes(origin, parameter):
            return _locate(origin, "parameters", parameter), str(want.address)
        cls = self._classes.get(str(want.spec.get("storageClassName")))
        if cls is not None and parameter in _class_parameters(cls):
            return _locate(cls.origin, "parameters", parameter), str(cls.address)
        return _locate(origin, "parameters"), str(want.address)


def check(desired: DesiredSet, resolver: Resolver) -> tuple[Diagnostic, ...]:
    """Errors for references that do not resolve, then the sources' warnings."""
    findings = _Findings(desired)
    for want in desired.resources.values():
        address = want.address
        if address.kind is Kind.VOLUME:
            namespace, parameters = address.namespace, want.parameters
        elif address.kind is Kind.STORAGE_CLASS:
            namespace, parameters = "", _class_parameters(want)
        else:
            continue
        for parameter, value in parameters.items():
            try:
                ref = references.reference_of(namespace, parameter, value)
            except SecretReferenceError as exc:
                findings.add(want, parameter, code=MISSING, message=str(exc), secret=value)
                continue
            if ref is None or not ref.namespace:  # a class's shorthand: no namespace yet
                continue
            answer = resolver.lookup(ref)
            if isinstance(answer, Unresolved):
                findings.add(
                    want,
                    parameter,
                    code=REFUSED if answer.refused else MISSING,
                    message=answer.message(ref),
                    secret=ref.canonical,
                )
    return sorted_diagnostics([*findings.diagnostics(), *resolver.notices.take()])


def _class_parameters(want: Desired) -> Mapping[str, str]:
    params = want.spec.get("parameters")
    return params if isinstance(params, Mapping) else {}


def _locate(origin: Origin | None, *path: str) -> Location | None:
    return origin.locate(*path) if origin is not None else None


def _writes(origin: Origin | None, parameter: str) -> bool:
    """True when the resource's own YAML writes ``parameter`` under ``parameters``."""
    node = origin.node if origin is not None else None
    params = node.get("parameters") if isinstance(node, Mapping) else None
    return isinstance(params, Mapping) and parameter in params
