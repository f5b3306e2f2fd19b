"""The state export: its JSON Schema, every check of ``push``, and push∘pull as identity."""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from rune_sync.spec.model import Address, Kind
from rune_sync.state import export, open_backend
from rune_sync.state.model import (
    INTENTS,
    SourceInfo,
    SourceKind,
    StateRecord,
    statuses_for,
)
from rune_sync.testing.state import SOURCE, class_record, contract_record, snapshot_record

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "state-export.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
LINEAGE = "6f1c1a52-7d4e-4d7a-9a52-4f3b2b1c0d9e"


def _validate(document: object) -> None:
    Draft202012Validator(SCHEMA).validate(document)


def _document(*records: StateRecord, serial: int = 3) -> dict[str, Any]:
    built = export.to_document(lineage=LINEAGE, serial=serial, source=SOURCE, records=records)
    parsed: dict[str, Any] = json.loads(export.dumps(built))
    return parsed


# --------------------------------------------------------------------------- the schema


def test_the_schema_is_valid_draft_2020_12_and_shipped_with_the_package():
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"] == "https://rune-sync.dev/schemas/state-export.schema.json"
    assert export.schema() == SCHEMA


def _properties(node: Any) -> list[tuple[str, Any]]:
    found = []
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            found.append((name, sub))
        for value in node.values():
            found.extend(_properties(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_properties(value))
    return found


def test_every_field_of_the_schema_has_a_description():
    assert [name for name, sub in _properties(SCHEMA) if not sub.get("description")] == []


def test_an_export_of_every_kind_of_record_validates_against_the_schema(tmp_path):
    with open_backend(tmp_path / "s.db", create=True) as state:
        for r in (contract_record(1), contract_record(2).retain(now=datetime.now(UTC))):
            state.put(r)
        state.put(class_record())
        state.put(snapshot_record())
        _validate(export.pull(state))
        state.bump_serial(source=SourceInfo(kind=SourceKind.DIRECTORY, url=".", digest="x"))
        document = export.pull(state)
        _validate(document)
        _validate(json.loads(export.dumps(document)))


def test_an_export_of_an_empty_state_validates(tmp_path):
    with open_backend(tmp_path / "s.db", create=True) as state:
        document = export.pull(state)
    _validate(document)
    assert document["records"] == []
    assert document["source"] is None
    assert document["format"] == "rune-sync-state"
    assert document["version"] == export.VERSION == 2


def test_the_schema_allows_the_intents_of_the_model_and_the_readable_versions():
    record_properties = SCHEMA["$defs"]["record"]["properties"]
    assert set(record_properties["intent"]["enum"]) == {None, *INTENTS}
    assert "intent" not in SCHEMA["$defs"]["record"]["required"]
    assert tuple(SCHEMA["properties"]["version"]["enum"]) == export.READABLE_VERSIONS
    assert max(export.READABLE_VERSIONS) == export.VERSION


def test_every_record_carries_its_intent():
    in_flight = contract_record(3).with_changes(now=datetime.now(UTC), intent="expand")
    document = _document(in_flight, class_record())
    by_address = {r["address"]: r for r in document["records"]}
    assert by_address[str(in_flight.address)]["intent"] == "expand"
    assert by_address["storageclass/fast"]["intent"] is None
    _validate(document)


def _version_one(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` as a version 1 rune-sync wrote it: no intent anywhere."""
    older = copy.deepcopy(document)
    older["version"] = 1
    for raw in older["records"]:
        del raw["intent"]
    return older


def test_a_version_one_document_is_read_with_nothing_in_flight(tmp_path):
    records = (contract_record(1), contract_record(2), class_record(), snapshot_record())
    assert any(r.intent is not None for r in records)
    older = _version_one(_document(*records))
    _validate(older)
    parsed = export.parse(older)
    assert [r.intent for r in parsed.records] == [None] * len(records)
    assert {r.address: r for r in parsed.records} == {
        r.address: r.with_changes(now=r.updated_at, intent=None) for r in records
    }
    with open_backend(tmp_path / "s.db", create=True) as state:
        export.push(state, older)
        assert {r.intent for r in state.load_all().values()} == {None}
        assert export.pull(state)["version"] == export.VERSION


def test_a_record_without_intent_in_a_current_document_has_nothing_in_flight():
    document = _document(contract_record(1))
    del document["records"][0]["intent"]
    (parsed,) = export.parse(document).records
    assert parsed.intent is None


# --------------------------------------------------------------------------- parse


def _broken(change) -> dict[str, Any]:
    document = _document(contract_record(1), class_record())
    change(document)
    return document


def _set(path: str, value: object):
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return change


def _delete(path: str):
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return change


def _both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        for each in changes:
            each(document)

    return change


BROKEN = {
    "another format": (_set("format", "terraform"), "/format"),
    "a newer version": (_set("version", 3), "/version"),
    "version zero": (_set("version", 0), "/version"),
    "no lineage": (_delete("lineage"), "'lineage' is a required property"),
    "an extra field": (_set("extra", 1), "'extra' was unexpected"),
    "a negative serial": (_set("serial", -1), "/serial"),
    "a lineage that is not a UUID": (_set("lineage", "not-a-uuid"), "/lineage"),
    "a bad address": (_set("records/0/address", "volume/only-two"), "/records/0/address"),
    "a kind that disagrees with the address": (
        _both(_set("records/1/kind", "snapshot"), _set("records/1/status", "Failed")),
        "/records/1/kind",
    ),
    "a snapshot status on a volume": (_set("records/1/status", "Ready"), "/records/1/status"),
    "a retained storage class": (_set("records/0/retained", True), "/records/0/retained"),
    "a stale spec digest": (_set("records/1/spec/size", "99Gi"), "/records/1/specDigest"),
    "a naive timestamp": (
        _set("records/1/createdAt", "2025-01-01T00:00:00"),
        "/records/1/createdAt",
    ),
    "a negative attempt count": (_set("records/1/attempts", -2), "/records/1/attempts"),
    "an unknown intent": (_set("records/1/intent", "destroy"), "/records/1/intent"),
    "an intent that is not text": (_set("records/1/intent", 1), "/records/1/intent"),
    "a parameter that is not text": (
        _set("records/1/driverParameters/region", 3),
        "/records/1/driverParameters/region",
    ),
    "a bad source kind": (_set("source/kind", "svn"), "/source/kind"),
}


@pytest.mark.parametrize(("change", "place"), BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_document_is_refused_naming_the_place(change, place):
    document = _broken(change)
    with pytest.raises(export.InvalidStateDocument) as caught:
        export.parse(document)
    assert any(place in problem for problem in caught.value.problems), caught.value.problems


def test_a_duplicate_address_is_refused():
    document = _document(contract_record(1))
    document["records"].append(copy.deepcopy(document["records"][0]))
    with pytest.raises(export.InvalidStateDocument, match="appears more than once"):
        export.parse(document)


def test_every_problem_is_reported_at_once():
    document = _document(contract_record(1), contract_record(2))
    document["records"][0]["specDigest"] = "0" * 64
    document["records"][1]["spec"]["size"] = "99Gi"
    with pytest.raises(export.InvalidStateDocument) as caught:
        export.parse(document)
    assert len(caught.value.problems) == 2


def test_problems_never_quote_the_values_of_fields():
    document = _document(contract_record(1))
    document["records"][0]["driverParameters"]["apiToken"] = ["hunter2-resolved-token"]
    document["records"][0]["spec"] = "hunter2-in-a-spec"
    with pytest.raises(export.InvalidStateDocument) as caught:
        export.parse(document)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"), [("{", "not JSON"), (b"\xff\xfe{}", "not JSON|UTF-8")]
)
def test_loads_of_text_that_is_not_json_is_refused(text, message):
    with pytest.raises(export.InvalidStateDocument, match=message):
        export.loads(text)


def test_a_document_that_is_not_an_object_is_refused():
    with pytest.raises(export.InvalidStateDocument):
        export.parse([1, 2])


def test_an_invalid_document_is_refused_even_when_forced(tmp_path):
    with open_backend(tmp_path / "s.db", create=True) as state:
        state.put(contract_record(1))
        document = _broken(_set("records/1/status", "Nope"))
        with pytest.raises(export.InvalidStateDocument):
            export.push(state, document, force=True)
        assert list(state.load_all()) == [contract_record(1).address]
        assert state.meta().serial == 0


def test_a_refused_push_names_the_way_out(tmp_path):
    with open_backend(tmp_path / "s.db", create=True) as state:
        state.put(contract_record(1))
        with pytest.raises(export.PushRefusedError, match="--force"):
            export.push(state, _document(contract_record(2), serial=0))


# --------------------------------------------------------------------------- round trips

_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?", fullmatch=True)
_text = st.text(max_size=20)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)
_times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
)
_optional = st.none() | _text


@st.composite
def _records(draw: st.DrawFn) -> StateRecord:
    kind = draw(st.sampled_from([Kind.VOLUME, Kind.SNAPSHOT, Kind.STORAGE_CLASS]))
    namespace = "" if kind is Kind.STORAGE_CLASS else draw(_label)
    return StateRecord(
        address=Address(kind, namespace, draw(_label)),
        spec=draw(st.dictionaries(_text, _json, max_size=5)),
        driver=draw(_text),
        status=draw(st.sampled_from(sorted(statuses_for(kind)))),
        retained=False if kind is Kind.STORAGE_CLASS else draw(st.booleans()),
        handle=draw(_optional),
        bound_claim=draw(_optional),
        owner_service=draw(_optional),
        attempts=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        failed_runs=draw(st.integers(min_value=0, max_value=10)),
        failure_message=draw(_optional),
        intent=draw(st.none() | st.sampled_from(sorted(INTENTS))),
        driver_parameters=draw(
            st.dictionaries(
                _text, _text | st.just("secret:db-creds.prod.rune/password"), max_size=3
            )
        ),
        created_at=draw(_times),
        updated_at=draw(_times),
    )


_record_sets = st.lists(_records(), max_size=6, unique_by=lambda r: r.address)
_sources = st.none() | st.builds(
    SourceInfo,
    kind=st.sampled_from(list(SourceKind)),
    url=_text,
    digest=_text,
    commit=_optional,
)


@settings(max_examples=150, deadline=None)
@given(records=_record_sets, serial=st.integers(min_value=0, max_value=2**40), source=_sources)
def test_a_document_parses_back_to_the_same_state(records, serial, source):
    document = export.to_document(lineage=LINEAGE, serial=serial, source=source, records=records)
    _validate(document)
    parsed = export.parse(export.loads(export.dumps(document)))
    assert parsed.lineage == LINEAGE
    assert parsed.serial == serial
    assert parsed.source == source
    assert {r.address: r for r in parsed.records} == {r.address: r for r in records}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=_record_sets, source=_sources)
def test_push_after_pull_is_identity(records, source):
    with (
        tempfile.TemporaryDirectory() as folder,
        open_backend(Path(folder) / "a.db", create=True) as a,
        open_backend(Path(folder) / "b.db", create=True) as b,
    ):
        with a.transaction() as tx:
            for r in records:
                tx.put(r)
        a.bump_serial(source=source)
        pulled = export.pull(a)
        export.push(b, export.loads(export.dumps(pulled)))
        assert b.load_all() == a.load_all()
        assert export.pull(b) == {**pulled, "serial": pulled["serial"] + 1}
        export.push(a, export.pull(a))
        assert export.pull(a) == {**pulled, "serial": pulled["serial"] + 1}
