"""The JSON Schemas shipped in ``schemas/``: loading, checking, and their diagnostics.

One schema per kind plus the runefile (Draft 2020-12), cross-referencing
``common.schema.json``. :class:`SchemaSet` validates one resource's mapping and turns
every jsonschema error into a :class:`~rune_sync.diagnostics.Diagnostic` pointing at
the field, with a code taken from the failing subschema's ``x-rune-code`` annotation
or, failing that, from the keyword.

Speed: validating 10,000 volumes with jsonschema costs ~0.7 s, almost all of it in
per-property bookkeeping. Most property values repeat across resources (access modes,
sizes, classes, labels), so when a root schema is a plain object schema (only
``type``/``properties``/``required``/``additionalProperties``) the properties are
validated one by one and each (property, value) result is memoised. That is exactly
what jsonschema computes for such a schema; other roots take the full path.

jsonschema and referencing errors never leave this module.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaViolation
from jsonschema.exceptions import best_match

from rune_sync.diagnostics import Diagnostic, Location
from rune_sync.spec import yamlread
from rune_sync.spec.model import Kind

KIND_SCHEMAS: dict[Kind, str] = {
    Kind.STORAGE_CLASS: "storageclass",
    Kind.VOLUME: "volume",
    Kind.SNAPSHOT: "snapshot",
    Kind.SERVICE: "service",
    Kind.SECRET: "secret",
}
RUNEFILE = "runefile"
ALL_NAMES = ("common", *KIND_SCHEMAS.values(), RUNEFILE, "resources")

_PLAIN_ROOT = frozenset(
    {
        "$schema",
        "$id",
        "$defs",
        "title",
        "description",
        "type",
        "properties",
        "required",
        "additionalProperties",
        "examples",
        "default",
    }
)
_KEYWORD_CODES = {
    "additionalProperties": "RS101",
    "required": "RS102",
    "type": "RS103",
    "enum": "RS104",
    "const": "RS104",
}
_GENERIC_CODE = "RS108"


def schema_text(name: str) -> str:
    """The text of ``schemas/<name>.schema.json`` as shipped in the package."""
    return (resources.files("rune_sync") / "schemas" / f"{name}.schema.json").read_text("utf-8")


def load_all() -> dict[str, dict[str, Any]]:
    return {name: json.loads(schema_text(name)) for name in ALL_NAMES}


Locator = Callable[[tuple[str | int, ...]], "yamlread.Pos | None"]


@dataclass(frozen=True, slots=True)
class Where:
    """How to place diagnostics: the file shown, the resource, and a field locator."""

    file: str
    locator: Locator
    resource: str = ""
    hide_values: bool = False
    """True for secrets: messages then describe a bad value without quoting it."""

    @classmethod
    def of_node(
        cls, file: str, node: Any, resource: str = "", *, hide_values: bool = False
    ) -> Where:
        """Locate fields through the positions the YAML reader recorded in ``node``."""
        return cls(file, lambda path: yamlread.position_at(node, path), resource, hide_values)

    def locate(self, path: Iterable[str | int]) -> Location:
        pos = self.locator(tuple(path))
        if pos is None:
            return Location(file=self.file)
        return Location(file=self.file, line=pos[0], column=pos[1])


class _Checker:
    """Validates instances of one root schema, memoising per-property results."""

    def __init__(self, validator: Draft202012Validator) -> None:
        self.validator = validator
        schema = validator.schema
        assert isinstance(schema, dict)
        self.plain = set(schema) <= _PLAIN_ROOT and schema.get("type") == "object"
        self.properties: dict[str, Any] = schema.get("properties", {})
        self.required: tuple[str, ...] = tuple(schema.get("required", ()))
        self.closed = schema.get("additionalProperties", True) is False
        self._prop_validators = {
            key: validator.evolve(schema=sub) for key, sub in self.properties.items()
        }
        self._memo: dict[tuple[str, Any], tuple[SchemaViolation, ...]] = {}

    def errors(self, instance: Any) -> Iterator[tuple[tuple[str | int, ...], SchemaViolation]]:
        """(path prefix, error) pairs; the error's own path is relative to the prefix."""
        if not self.plain or not isinstance(instance, dict):
            for error in self.validator.iter_errors(instance):
                yield (), error
            return
        missing = [k for k in self.required if k not in instance]
        unknown = [k for k in instance if k not in self.properties] if self.closed else []
        if missing or unknown:
            # Let jsonschema phrase the root-level problems; they are rare.
            for error in self.validator.iter_errors(instance):
                if not error.absolute_path:
                    yield (), error
        for key, value in instance.items():
            validator = self._prop_validators.get(key)
            if validator is None:
                continue
            try:
                memo_key = (key, _freeze(value))
            except TypeError:
                memo_key = None
            found = self._memo.get(memo_key) if memo_key is not None else None
            if found is None:
                found = tuple(validator.iter_errors(value))
                if memo_key is not None:
                    self._memo[memo_key] = found
            for error in found:
                yield (key,), error


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return ("{", tuple((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("[", tuple(_freeze(v) for v in value))
    # bool and int compare equal (True == 1); keep their types apart in the key
    return (type(value).__name__, value)


_ANNOTATIONS = frozenset({"description", "title", "default", "examples", "$comment"})


def inline_refs(docs: Mapping[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """``schemas/<name>`` with every ``$ref`` replaced by its target.

    Resolving a ``$ref`` through ``referencing`` costs more than the check it leads to,
    and our schemas are not recursive, so validators get the inlined form. A ``$ref``
    whose siblings only annotate is merged with its target (keeping the target's
    ``x-rune-code``); one with other siblings becomes an ``allOf``.
    """

    def target(ref: str, base: str) -> Any:
        file, _, pointer = ref.partition("#")
        doc = docs[file.removesuffix(".schema.json")] if file else docs[base]
        node: Any = doc
        for part in filter(None, pointer.split("/")):
            node = node[part]
        return resolve(node, file.removesuffix(".schema.json") if file else base)

    def resolve(node: Any, base: str) -> Any:
        if isinstance(node, list):
            return [resolve(v, base) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: resolve(v, base) for k, v in node.items() if k not in ("$ref", "$defs")}
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return out
        resolved = target(ref, base)
        if set(out) <= _ANNOTATIONS:
            return {**resolved, **out}
        return {**out, "allOf": [*out.get("allOf", []), resolved]}

    return dict(resolve(docs[name], name))


class SchemaSet:
    """The loaded schemas and one checker per kind."""

    def __init__(self, documents: Mapping[str, dict[str, Any]] | None = None) -> None:
        docs = dict(documents) if documents is not None else load_all()
        self.documents = docs
        self._checkers = {
            name: _Checker(Draft202012Validator(inline_refs(docs, name)))
            for name in docs
            if name != "common"
        }

    def check(self, name: str, instance: Any, where: Where) -> list[Diagnostic]:
        """Every schema problem of ``instance`` against ``schemas/<name>``."""
        checker = self._checkers[name]
        out: list[Diagnostic] = []
        for prefix, error in checker.errors(instance):
            out.extend(_diagnostics(error, prefix, where))
        return out


def _leaf(error: SchemaViolation) -> SchemaViolation:
    """For anyOf/oneOf, the most relevant alternative's error."""
    while error.validator in ("anyOf", "oneOf") and error.context:
        best = best_match(error.context)
        if best is error:
            break
        error = best
    return error


def _field_name(path: tuple[str | int, ...]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text or "the resource"


def _diagnostics(
    error: SchemaViolation, prefix: tuple[str | int, ...], where: Where
) -> Iterator[Diagnostic]:
    error = _leaf(error)
    path = prefix + tuple(error.absolute_path)
    expected: Any = error.validator_value
    instance: Any = error.instance
    keyword = str(error.validator)
    schema = error.schema if isinstance(error.schema, dict) else {}
    code = schema.get("x-rune-code") or _KEYWORD_CODES.get(keyword, _GENERIC_CODE)
    field = _field_name(path)

    def diag(message: str, at: tuple[str | int, ...] = path, code: str = code) -> Diagnostic:
        return Diagnostic(
            code=code, message=message, location=where.locate(at), resource=where.resource
        )

    if keyword == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(schema.get("properties", {}))
        for key in error.instance:
            if key in allowed:
                continue
            close = difflib.get_close_matches(key, allowed, n=1)
            suggestion = f" (did you mean {close[0]!r}?)" if close else ""
            where_ = "" if not path else f" in {field}"
            yield diag(f"unknown field {key!r}{where_}{suggestion}", (*path, key))
        return
    if keyword == "required":
        missing = [k for k in expected if k not in instance]
        for key in missing:
            where_ = "" if not path else f" in {field}"
            yield diag(f"missing required field {key!r}{where_}")
        return
    hidden = where.hide_values
    if keyword == "type":
        got = _json_type(error.instance).split(" ")[0] if hidden else _json_type(error.instance)
        yield diag(f"{field} must be {_types(expected)}, got {got}")
        return
    if keyword in ("enum", "const"):
        options = list(expected) if keyword == "enum" else [expected]
        yield diag(_enum_message(field, error.instance, options, hidden=hidden))
        return
    shown = "" if hidden else f" {_show(error.instance)}"
    hint: str | None = schema.get("x-rune-hint")
    if hint:
        yield diag(f"{field}{shown} is not valid: {hint}")
        return
    if hidden:
        yield diag(f"{field} breaks the schema's {keyword!r} constraint (value not shown)")
        return
    yield diag(f"{field}: {error.message}")


def _types(value: Any) -> str:
    names = [value] if isinstance(value, str) else list(value)
    words = {
        "object": "a mapping",
        "array": "a list",
        "string": "a string",
        "integer": "an integer",
        "number": "a number",
        "boolean": "true or false",
        "null": "empty",
    }
    return " or ".join(words.get(n, n) for n in names)


def _json_type(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {_show(value)}"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _enum_message(field: str, value: Any, options: list[Any], *, hidden: bool = False) -> str:
    choices = ", ".join(str(o) for o in options)
    if hidden:
        return f"{field} is not one of: {choices}"
    message = f"{field} {_show(value)} is not one of: {choices}"
    if isinstance(value, str):
        same = [o for o in options if isinstance(o, str) and o.lower() == value.lower()]
        if same:
            message += f" (values are case-sensitive: write {same[0]!r})"
        else:
            close = difflib.get_close_matches(value, [str(o) for o in options], n=1)
            if close:
                message += f" (did you mean {close[0]!r}?)"
    return message
