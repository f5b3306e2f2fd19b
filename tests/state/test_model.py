"""State values: records check and freeze what they are given; digests, times, lock info."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from rune_sync.spec.model import Address, Kind, SnapshotStatus, VolumeStatus
from rune_sync.state.model import (
    INTENTS,
    CanonicalSpec,
    LockInfo,
    SourceInfo,
    SourceKind,
    StateRecord,
    format_timestamp,
    freeze_json,
    parse_timestamp,
    spec_digest,
    statuses_for,
    thaw_json,
)

NOW = datetime(2025, 11, 21, 12, 0, 0, 123456, tzinfo=UTC)
VOLUME = Address(Kind.VOLUME, "prod", "web-data")


def record(**changes) -> StateRecord:
    fields = {
        "address": VOLUME,
        "spec": {"name": "web-data", "size": "10Gi", "labels": {"app": "web"}, "zones": ["a"]},
        "driver": "local",
        "status": "Bound",
        "created_at": NOW,
        "updated_at": NOW,
    }
    return StateRecord(**{**fields, **changes})


# --------------------------------------------------------------------------- specs


def test_a_record_keeps_a_frozen_copy_of_its_spec():
    spec: dict[str, Any] = {"name": "web-data", "labels": {"app": "web"}, "zones": ["a", "b"]}
    made = record(spec=spec)
    spec["labels"]["app"] = "changed"
    spec["zones"].append("c")
    assert made.spec["labels"] == {"app": "web"}
    assert made.spec["zones"] == ("a", "b")
    with pytest.raises(TypeError):
        made.spec["labels"]["app"] = "x"  # type: ignore[index]


def test_the_spec_digest_is_the_sha256_of_canonical_json():
    spec = {"size": "10Gi", "name": "wëb", "n": [1, 2.5, None, True]}
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    want = hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert record(spec=spec).spec_digest == want
    assert spec_digest(spec) == want


def test_the_digest_does_not_depend_on_key_order():
    assert record(spec={"a": 1, "b": {"x": 1, "y": 2}}).spec_digest == (
        record(spec={"b": {"y": 2, "x": 1}, "a": 1}).spec_digest
    )


def test_with_changes_sets_updated_at_and_the_digest_follows_the_spec():
    later = NOW + timedelta(hours=1)
    changed = record().with_changes(now=later, spec={"name": "other"}, status="Released")
    assert changed.updated_at == later
    assert changed.created_at == NOW
    assert changed.status == "Released"
    assert changed.spec_digest == spec_digest({"name": "other"})
    assert changed.spec_digest != record().spec_digest


def test_records_compare_by_value():
    assert record() == record()
    assert record() != record(handle="h")


def test_canonical_spec_from_text_reads_lazily_and_equals_the_mapping():
    text = '{"a":[1,{"b":null}],"c":"d"}'
    lazy = CanonicalSpec(text)
    assert lazy == CanonicalSpec.of({"c": "d", "a": [1, {"b": None}]})
    assert lazy == {"a": (1, {"b": None}), "c": "d"}
    assert dict(lazy)["c"] == "d"
    assert lazy.digest == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("text", ["[1, 2]", "{not json", '"text"'])
def test_canonical_spec_text_that_is_not_an_object_fails_when_read(text):
    lazy = CanonicalSpec(text)
    with pytest.raises(ValueError, match="stored spec"):
        len(lazy)


@pytest.mark.parametrize(
    ("value", "place"),
    [
        ({"a": math.nan}, "spec.a"),
        ({"a": [1, math.inf]}, r"spec.a\[1\]"),
        ({"a": {1: "x"}}, "spec.a"),
        ({"a": {"b": {1, 2}}}, "spec.a.b"),
        ({"when": NOW}, "spec.when"),
    ],
)
def test_a_spec_that_json_cannot_carry_is_refused_with_its_place(value, place):
    with pytest.raises(ValueError, match=place):
        record(spec=value)


def test_a_spec_must_be_an_object():
    with pytest.raises(ValueError, match="JSON object"):
        record(spec=["not", "an", "object"])


def test_freeze_and_thaw_are_inverse():
    value = {"a": [1, {"b": [None, True, 1.5, "x"]}], "c": {}}
    assert thaw_json(freeze_json(value)) == value


def test_enum_members_in_a_spec_become_plain_values():
    frozen = freeze_json({"mode": VolumeStatus.BOUND})
    assert isinstance(frozen, Mapping)
    assert type(frozen["mode"]) is str


# --------------------------------------------------------------------------- fields


def test_status_members_are_kept_as_plain_strings():
    made = record(status=VolumeStatus.RELEASED)
    assert type(made.status) is str
    assert made.status == "Released"


def test_statuses_follow_the_kind():
    assert statuses_for(Kind.VOLUME) == {s.value for s in VolumeStatus}
    assert statuses_for(Kind.SNAPSHOT) == {s.value for s in SnapshotStatus}
    assert statuses_for(Kind.STORAGE_CLASS) == {"Available"}
    with pytest.raises(ValueError, match="does not store service"):
        statuses_for(Kind.SERVICE)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"status": "Ready"}, "status 'Ready' is not one of"),
        ({"status": "bound"}, "status 'bound'"),
        ({"address": Address(Kind.SNAPSHOT, "prod", "s"), "status": "Bound"}, "status"),
        ({"address": Address(Kind.SERVICE, "prod", "s")}, "does not store service"),
        ({"address": "volume/prod/web-data"}, "must be an Address"),
        (
            {
                "address": Address(Kind.STORAGE_CLASS, "", "c"),
                "status": "Available",
                "retained": True,
            },
            "cannot be retained",
        ),
        ({"retained": 1}, "retained must be a bool"),
        ({"attempts": -1}, "attempts must be a whole number"),
        ({"attempts": True}, "attempts must be a whole number"),
        ({"failed_runs": 2**63}, "failed_runs must be a whole number"),
        ({"handle": 5}, "handle must be a str or None"),
        ({"driver": None}, "driver must be a str"),
        ({"failure_message": b"x"}, "failure_message must be a str"),
        ({"intent": 1}, "intent must be a str or None"),
        ({"intent": ["delete"]}, "intent must be a str or None"),
        ({"intent": "destroy"}, "intent 'destroy' is not one of delete, delete-snapshot"),
        ({"intent": ""}, "intent '' is not one of"),
        ({"intent": "Delete"}, "intent 'Delete'"),
        ({"driver_parameters": {"k": 1}}, r"driver_parameters\['k'\]"),
        ({"driver_parameters": ["k"]}, "driver_parameters must be a mapping"),
        ({"created_at": datetime(2025, 1, 1)}, "created_at must be a timezone-aware"),
        ({"updated_at": "2025-01-01T00:00:00Z"}, "updated_at must be a timezone-aware"),
    ],
)
def test_an_invalid_field_is_refused_naming_it(changes, message):
    with pytest.raises(ValueError, match=message):
        record(**changes)


def test_intents_are_the_driver_operations_apply_records():
    assert (
        frozenset(
            {
                "provision",
                "restore",
                "expand",
                "delete",
                "snapshot",
                "delete-snapshot",
                "predestroy-snapshot",
            }
        )
        == INTENTS
    )


def test_a_record_has_no_intent_unless_given_one():
    assert record().intent is None
    for intent in INTENTS:
        assert record(intent=intent).intent == intent


def test_an_intent_is_set_and_cleared_with_changes():
    later = NOW + timedelta(minutes=1)
    in_flight = record().with_changes(now=NOW, status="Released", intent="delete")
    assert (in_flight.status, in_flight.intent) == ("Released", "delete")
    done = in_flight.with_changes(now=later, intent=None)
    assert done.intent is None
    assert done == record(status="Released", updated_at=later)
    with pytest.raises(ValueError, match="intent 'deleting'"):
        in_flight.with_changes(now=later, intent="deleting")


def test_an_intent_given_as_a_str_enum_member_is_kept_as_its_plain_value():
    class Operation(enum.StrEnum):
        EXPAND = "expand"

    made = record(intent=Operation.EXPAND)
    assert type(made.intent) is str
    assert made.intent == "expand"


def test_times_are_normalised_to_utc():
    plus_two = timezone(timedelta(hours=2))
    made = record(created_at=datetime(2025, 1, 1, 14, 0, tzinfo=plus_two))
    assert made.created_at == datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert made.created_at.tzinfo is UTC


def test_driver_parameters_are_a_read_only_copy():
    params = {"apiToken": "secret:do-token/token"}
    made = record(driver_parameters=params)
    params["apiToken"] = "resolved!"
    assert made.driver_parameters == {"apiToken": "secret:do-token/token"}
    with pytest.raises(TypeError):
        made.driver_parameters["x"] = "y"  # type: ignore[index]


def test_kind_comes_from_the_address():
    assert record().kind is Kind.VOLUME


def test_records_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        record().status = "Failed"  # type: ignore[misc]


# --------------------------------------------------------------------------- transitions


def test_retain_and_adopt_flip_the_flag_and_keep_the_rest():
    later = NOW + timedelta(days=1)
    kept = record(handle="/v/prod/web-data").retain(now=later)
    assert kept.retained
    assert kept.handle == "/v/prod/web-data"
    assert kept.status == "Bound"
    assert kept.updated_at == later
    back = kept.adopt(now=later)
    assert not back.retained
    assert back == record(handle="/v/prod/web-data").with_changes(now=later)


def test_unstall_makes_a_stalled_record_failed_with_its_counters_reset():
    stalled = record(status="Stalled", failed_runs=3, attempts=5, failure_message="quota")
    retried = stalled.unstall(now=NOW)
    assert (retried.status, retried.failed_runs, retried.attempts) == ("Failed", 0, 0)
    assert retried.failure_message == "quota"


def test_unstall_of_a_record_that_is_not_stalled_is_refused():
    with pytest.raises(ValueError, match="not Stalled"):
        record(status="Failed").unstall(now=NOW)


# --------------------------------------------------------------------------- times


def test_timestamps_have_one_text_form_that_round_trips():
    text = format_timestamp(NOW)
    assert text == "2025-11-21T12:00:00.123456Z"
    assert parse_timestamp(text) == NOW


def test_parse_timestamp_accepts_offsets_and_refuses_naive_times():
    assert parse_timestamp("2025-11-21T14:00:00+02:00") == datetime(2025, 11, 21, 12, tzinfo=UTC)
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_timestamp("2025-11-21T12:00:00")


# --------------------------------------------------------------------------- meta, locks


def test_source_info_round_trips_through_json():
    source = SourceInfo(kind=SourceKind.GIT, url="git@h:o/r.git", commit="abc", digest="d")
    assert SourceInfo.from_json(source.to_json()) == source
    directory = SourceInfo(kind="directory", url="/srv/specs", digest="d")  # type: ignore[arg-type]
    assert directory.kind is SourceKind.DIRECTORY
    assert directory.commit is None


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "svn", "url": "u", "digest": "d"},
        {"kind": "git", "url": "u"},
        {"kind": "git", "url": 1, "digest": "d"},
    ],
)
def test_a_bad_source_is_refused(data):
    with pytest.raises(ValueError):
        SourceInfo.from_json(data)


def test_lock_info_of_this_process_names_it_and_round_trips():
    info = LockInfo.for_this_process(command="rune-sync apply .", now=NOW)
    assert info.pid > 0
    assert info.is_known
    assert LockInfo.from_json(json.loads(json.dumps(info.to_json()))) == info
    text = info.describe()
    for part in (info.user, info.host, str(info.pid), "rune-sync apply .", "2025-11-21T12:00:00"):
        assert part in text
    assert LockInfo.for_this_process(command="x", now=NOW).id != info.id


def test_an_unknown_holder_says_so():
    unknown = LockInfo.unknown(seen_at=NOW)
    assert not unknown.is_known
    assert "not recorded itself" in unknown.describe()


@pytest.mark.parametrize(
    "data",
    [
        {},
        {
            "id": "x",
            "user": "u",
            "host": "h",
            "pid": "1",
            "command": "c",
            "since": "2025-01-01T00:00:00Z",
        },
    ],
)
def test_a_bad_lock_record_is_refused(data):
    with pytest.raises(ValueError):
        LockInfo.from_json(data)
