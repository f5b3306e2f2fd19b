"""DNS-1123 labels and secret references."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rune_sync.spec import names, secrets
from rune_sync.spec.secrets import SecretRef, SecretReferenceError, SecretValue


@pytest.mark.parametrize("good", ["a", "web-data", "pgdata-postgres-0", "0abc", "a" * 63])
def test_valid_labels(good):
    assert names.is_dns1123_label(good)
    assert names.label_problem(good) is None


@pytest.mark.parametrize("bad", ["", "Web", "web_data", "-a", "a-", "a.b", "a" * 64, "é"])
def test_invalid_labels_say_why(bad):
    assert not names.is_dns1123_label(bad)
    assert names.label_problem(bad)


@given(st.text(max_size=70))
def test_label_check_matches_its_pattern(text):
    by_pattern = re.fullmatch(names.DNS1123_LABEL_PATTERN.strip("^$"), text) is not None
    assert names.is_dns1123_label(text) == (by_pattern and len(text) <= 63)


def test_split_qualified():
    assert names.split_qualified("shared.common.rune") == ("shared", "common")
    assert names.split_qualified("web-data") == ("web-data", None)
    assert names.split_qualified("a.b.c.rune") == ("a.b.c.rune", None)


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("secret:do-api-token/token", SecretRef(name="do-api-token", key="token")),
        (
            "secret:do-api-token.shared.rune/token",
            SecretRef(name="do-api-token", key="token", namespace="shared"),
        ),
        ("secret:s3/AWS_SECRET.key-1", SecretRef(name="s3", key="AWS_SECRET.key-1")),
    ],
)
def test_parse_reference(text, ref):
    parsed = secrets.parse_reference(text)
    assert parsed == ref
    assert str(parsed) == text


@pytest.mark.parametrize(
    "text",
    [
        "secret:",
        "secret:name",
        "secret:name/",
        "secret:Bad/key",
        "secret:a.b/key",
        "secret:a.b.c.rune/key",
        "secret:a/k y",
        "secret:a.ns.rune/",
    ],
)
def test_malformed_reference_is_refused(text):
    with pytest.raises(SecretReferenceError):
        secrets.parse_reference(text)


@given(st.text(max_size=40))
def test_reference_parser_agrees_with_schema_pattern(text):
    value = "secret:" + text
    matches = re.fullmatch(secrets.REFERENCE_PATTERN.strip("^$"), value) is not None
    try:
        secrets.parse_reference(value)
        parsed = True
    except SecretReferenceError:
        parsed = False
    if matches:
        assert parsed
    if parsed:
        name = text.partition("/")[0].split(".")[0]
        assert len(name) <= 63


def test_legacy_reference_reads_key_token():
    assert secrets.parse_legacy("shared/do-api-token") == SecretRef(
        name="do-api-token", key="token", namespace="shared"
    )
    for bad in ("do-api-token", "/x", "a/b/c", "A/b"):
        with pytest.raises(SecretReferenceError):
            secrets.parse_legacy(bad)


def test_secret_value_never_prints_itself():
    value = SecretValue("hunter2-canary")
    for text in (str(value), repr(value), f"{value}", f"{value!r}", f"{[value]}"):
        assert "hunter2" not in text
    assert value.reveal() == "hunter2-canary"
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(value)
