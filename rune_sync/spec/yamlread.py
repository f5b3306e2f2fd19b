"""YAML text → plain Python data that remembers where every key came from.

The fast path: ruamel.yaml's C parser (``ruamel.yaml.clib``) produces events, and this
module builds dicts, lists and scalars from them directly, recording the line and
column of every mapping key and sequence item as it goes. ruamel's own constructors
resolve each scalar through a slow Python resolver (measured: 1.7 s for 10,000
volumes against 0.6 s here), and its round-trip loader is slower still (11.5 s).

Scalars follow the YAML 1.2 core schema (``yes``/``no``/``on`` are strings). Mapping
keys are read as text. Duplicate keys, complex keys, unknown tags and alias expansion
beyond a budget (the "billion laughs") are errors with a position. Merge keys (``<<``)
are honoured.

Called by :mod:`rune_sync.spec.load`; knows nothing about resource kinds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)

Pos = tuple[int, int]
"""(line, column), both 1-based."""

ALIAS_BUDGET = 1_000_000
"""How many nodes aliases may add to one file before it is refused as an alias bomb."""

_TAG = "tag:yaml.org,2002:"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_INT = re.compile(r"[-+]?[0-9]+")
_INT_OCT = re.compile(r"0o[0-7]+")
_INT_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")
# A plain scalar starting with any other character is a string in the core schema.
_MAYBE_TYPED = frozenset("0123456789+-.~tTfFnN")


class PosDict(dict[str, Any]):
    """A mapping with ``pos`` (where it starts) and ``key_pos`` (where each key is)."""

    __slots__ = ("key_pos", "pos")

    def __init__(self, pos: Pos) -> None:
        super().__init__()
        self.pos = pos
        self.key_pos: dict[str, Pos] = {}


class PosList(list[Any]):
    """A sequence with ``pos`` (where it starts) and ``item_pos`` (where each item is)."""

    __slots__ = ("item_pos", "pos")

    def __init__(self, pos: Pos) -> None:
        super().__init__()
        self.pos = pos
        self.item_pos: list[Pos] = []


class YamlProblem(Exception):
    """The text is not acceptable YAML; ``pos`` is where, ``message`` says why."""

    def __init__(self, message: str, pos: Pos, code: str = "RS001") -> None:
        super().__init__(message, pos, code)
        self.message = message
        self.pos = pos
        self.code = code


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """One document of a stream: its root value and where the document starts."""

    value: Any
    pos: Pos


def position_at(node: Any, path: tuple[str | int, ...]) -> Pos | None:
    """The position of the deepest key or item along ``path`` that can be found."""
    best: Pos | None = getattr(node, "pos", None)
    for step in path:
        if isinstance(node, PosDict) and isinstance(step, str) and step in node:
            best = node.key_pos.get(step, best)
            node = node[step]
        elif isinstance(node, PosList) and isinstance(step, int) and 0 <= step < len(node):
            best = node.item_pos[step]
            node = node[step]
        else:
            break
    return best


def _mark(event: Any) -> Pos:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1)


def _plain(text: str) -> Any:
    """Resolve an untagged plain scalar (YAML 1.2 core schema)."""
    if not text or text[0] not in _MAYBE_TYPED:
        return None if text == "" else text
    if text in _NULLS:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _INT.fullmatch(text):
        return int(text)
    if _INT_OCT.fullmatch(text):
        return int(text[2:], 8)
    if _INT_HEX.fullmatch(text):
        return int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return -math.inf if text[0] == "-" else math.inf
    if _NAN.fullmatch(text):
        return math.nan
    return text


def _tagged(tag: str, text: str, pos: Pos) -> Any:
    short = tag[len(_TAG) :] if tag.startswith(_TAG) else tag
    if short == "str":
        return text
    resolved = _plain(text)
    expected: dict[str, type | tuple[type, ...]] = {
        "int": int,
        "float": (int, float),
        "bool": bool,
        "null": type(None),
    }
    want = expected.get(short)
    if want is None:
        raise YamlProblem(f"unsupported YAML tag {tag!r}", pos, "RS011")
    if isinstance(resolved, bool) and want is not bool:
        resolved = text
    if not isinstance(resolved, want):
        raise YamlProblem(f"{text!r} is not a valid !!{short}", pos, "RS011")
    if short == "float":
        assert isinstance(resolved, (int, float))  # checked against `want` just above
        return float(resolved)
    return resolved


class _Builder:
    """Turns one event stream into documents."""

    def __init__(self) -> None:
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.expanded = 0
        self.nodes = 0

    def run(self, parser: Any) -> list[YamlDocument]:
        docs: list[YamlDocument] = []
        get = parser.get_event
        event = get()
        if not isinstance(event, StreamStartEvent):  # pragma: no cover - parser contract
            raise YamlProblem("not a YAML stream", (1, 1))
        while True:
            event = get()
            if isinstance(event, StreamEndEvent):
                return docs
            if not isinstance(event, DocumentStartEvent):  # pragma: no cover
                raise YamlProblem("malformed YAML stream", _mark(event))
            self.anchors.clear()
            first = get()
            pos = _mark(first)
            value = self.node(first, get)
            end = get()
            if not isinstance(end, DocumentEndEvent):  # pragma: no cover
                raise YamlProblem("malformed YAML document", _mark(end))
            docs.append(YamlDocument(value, pos))

    def node(self, event: Any, get: Any) -> Any:
        """Build the value that starts with ``event``; returns it."""
        if isinstance(event, ScalarEvent):
            self.nodes += 1
            tag = event.tag
            if tag is None or tag == "!":
                value = (
                    _plain(event.value) if event.style == "" and event.implicit[0] else event.value
                )
            else:
                value = _tagged(tag, event.value, _mark(event))
            if event.anchor is not None:
                self.anchors[event.anchor] = (value, 1)
            return value
        if isinstance(event, AliasEvent):
            found = self.anchors.get(event.anchor)
            if found is None:
                raise YamlProblem(f"unknown alias *{event.anchor}", _mark(event))
            value, size = found
            self.expanded += size
            if self.expanded > ALIAS_BUDGET:
                raise YamlProblem(
                    f"aliases expand to more than {ALIAS_BUDGET:,} nodes (an alias bomb?)",
                    _mark(event),
                    "RS003",
                )
            return value
        if isinstance(event, MappingStartEvent):
            return self.mapping(event, get)
        if isinstance(event, SequenceStartEvent):
            return self.sequence(event, get)
        raise YamlProblem("unexpected YAML event", _mark(event))  # pragma: no cover

    def _check_collection_tag(self, event: Any, kind: str) -> None:
        tag = event.tag
        if tag is not None and tag != "!" and tag != _TAG + kind:
            raise YamlProblem(f"unsupported YAML tag {tag!r}", _mark(event), "RS011")

    def mapping(self, start: Any, get: Any) -> PosDict:
        self._check_collection_tag(start, "map")
        result = PosDict(_mark(start))
        before = self.nodes + self.expanded
        merges: list[tuple[Any, Pos]] = []
        key_pos = result.key_pos
        scalar = ScalarEvent
        while True:
            event = get()
            kind = type(event)
            if kind is MappingEndEvent:
                break
            mark = event.start_mark
            pos = (mark.line + 1, mark.column + 1)
            if kind is not scalar:
                raise YamlProblem(
                    "mapping keys must be plain text, not collections or aliases", pos
                )
            key = event.value
            value_event = get()
            if key == "<<" and event.style == "" and event.tag is None:
                merges.append((self.node(value_event, get), _mark(value_event)))
                continue
            if key in key_pos:
                first = key_pos[key]
                raise YamlProblem(
                    f"duplicate key {key!r} (first defined at line {first[0]})", pos, "RS002"
                )
            key_pos[key] = pos
            if (
                type(value_event) is scalar
                and value_event.anchor is None
                and value_event.tag is None
            ):
                # The common case, inlined: an untagged scalar value without an anchor.
                self.nodes += 1
                text = value_event.value
                if value_event.style == "" and value_event.implicit[0]:
                    result[key] = _plain(text)
                else:
                    result[key] = text
            else:
                result[key] = self.node(value_event, get)
        for source, pos in merges:
            self._merge(result, source, pos)
        self.nodes += 1
        if start.anchor is not None:
            self.anchors[start.anchor] = (result, self.nodes + self.expanded - before)
        return result

    def _merge(self, target: PosDict, source: Any, pos: Pos) -> None:
        sources = source if isinstance(source, list) else [source]
        for item in sources:
            if not isinstance(item, dict):
                raise YamlProblem("a merge key (<<) takes a mapping or a list of mappings", pos)
            for key, value in item.items():
                if key not in target:
                    target[key] = value
                    target.key_pos[key] = pos

    def sequence(self, start: Any, get: Any) -> PosList:
        self._check_collection_tag(start, "seq")
        result = PosList(_mark(start))
        before = self.nodes + self.expanded
        append = result.append
        append_pos = result.item_pos.append
        while True:
            event = get()
            if isinstance(event, SequenceEndEvent):
                break
            append_pos(_mark(event))
            append(self.node(event, get))
        self.nodes += 1
        if start.anchor is not None:
            self.anchors[start.anchor] = (result, self.nodes + self.expanded - before)
        return result


def _new_parser(text: str) -> Any:
    # typ="safe" with pure=False selects the C parser when ruamel.yaml.clib is installed
    # and the pure-Python one otherwise; both emit the same events.
    yaml = YAML(typ="safe", pure=False)
    return yaml.get_constructor_parser(text)[1]


def parse(text: str) -> list[YamlDocument]:
    """Parse a whole YAML stream; raises :class:`YamlProblem` on the first problem."""
    parser = _new_parser(text)
    try:
        return _Builder().run(parser)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise YamlProblem(_describe(exc, text, pos), pos) from None
    except YAMLError as exc:
        # The reader reports a character index rather than a mark (control characters).
        index = getattr(exc, "position", None)
        pos = _pos_of_index(text, index) if isinstance(index, int) else (1, 1)
        reason = getattr(exc, "reason", None) or "invalid YAML"
        character = getattr(exc, "character", None)
        if isinstance(character, str) and len(character) == 1:
            character = ord(character)
        if isinstance(character, int):
            reason = f"{reason}: character U+{character:04X} is not allowed in YAML"
        raise YamlProblem(str(reason), pos) from None
    except RecursionError:
        raise YamlProblem("YAML nesting is too deep", (1, 1)) from None
    finally:
        dispose = getattr(parser, "dispose", None)
        if dispose is not None:
            dispose()


def _pos_of_index(text: str, index: int) -> Pos:
    before = text[:index]
    line = before.count("\n") + 1
    return (line, index - (before.rfind("\n") + 1) + 1)


def _describe(exc: MarkedYAMLError, text: str, pos: Pos) -> str:
    problem = (exc.problem or "invalid YAML").strip()
    context = (exc.context or "").strip()
    lines = text.splitlines()
    line = lines[pos[0] - 1] if 0 < pos[0] <= len(lines) else ""
    if "\t" in line[: max(pos[1], 1)] or "'\\t'" in problem:
        return f"{problem}: YAML does not allow tabs for indentation; indent with spaces"
    return f"{context}, {problem}" if context else problem
