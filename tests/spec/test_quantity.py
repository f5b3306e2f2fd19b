"""Kubernetes quantities: the forms the seeds and DESIGN §2/§3 accept and refuse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rune_sync.spec import quantity
from rune_sync.spec.quantity import Quantity, QuantityError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10Gi", 10 * 1024**3),
        ("1.5Gi", 3 * 1024**3 // 2),
        ("500M", 500 * 1000**2),
        ("500Mi", 500 * 1024**2),
        ("1G", 10**9),
        ("1K", 1000),
        ("1k", 1000),
        ("2Ti", 2 * 1024**4),
        ("1Ei", 1024**6),
        ("1e9", 10**9),
        ("1E3", 1000),
        ("+5Ki", 5 * 1024),
        (".5Ki", 512),
        ("1.", 1),
        ("1500m", 2),  # 1.5 bytes rounds up, as Kubernetes does
        ("0", 0),
        ("12345", 12345),
    ],
)
def test_parse_accepts_kubernetes_forms(text, expected):
    assert quantity.parse(text).bytes == expected


@pytest.mark.parametrize(
    "text", ["10gi", "10GB", "-1Gi", "-1", "", "Gi", "1.2.3", "10 Gi", "1e999999", "0x10", "1Gi "]
)
def test_parse_refuses_everything_else(text):
    with pytest.raises(QuantityError):
        quantity.parse(text)


def test_bare_integer_is_bytes_not_gigabytes():
    assert quantity.parse(10) == Quantity(10)


def test_negative_and_boolean_integers_are_refused():
    with pytest.raises(QuantityError):
        quantity.parse(-3)
    with pytest.raises(QuantityError):
        quantity.parse(True)


def test_equality_ignores_spelling():
    assert quantity.parse("1Gi") == quantity.parse("1024Mi")
    assert quantity.parse("1G") < quantity.parse("1Gi")


def test_gib_ceil_rounds_up():
    assert quantity.parse("1G").gib_ceil == 1
    assert quantity.parse("1025Mi").gib_ceil == 2


@given(st.integers(min_value=0, max_value=2**70))
def test_format_then_parse_round_trips(n):
    assert quantity.parse(quantity.format_bytes(n)).bytes == n


@given(st.integers(min_value=0, max_value=2**60), st.integers(min_value=0, max_value=2**60))
def test_ordering_follows_bytes(a, b):
    qa, qb = quantity.parse(quantity.format_bytes(a)), quantity.parse(quantity.format_bytes(b))
    assert (qa < qb) == (a < b)
    assert (qa == qb) == (a == b)


@given(st.text(max_size=30))
def test_arbitrary_text_parses_or_raises_quantity_error(text):
    try:
        q = quantity.parse(text)
    except QuantityError:
        return
    assert q.bytes >= 0


@given(
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from(["", "Ki", "Mi", "Gi", "Ti", "k", "K", "M", "G", "T"]),
)
def test_schema_pattern_agrees_with_parser(number, suffix):
    import re

    text = f"{number}{suffix}"
    assert re.fullmatch(quantity.PATTERN.strip("^$"), text)
    assert quantity.parse(text).bytes >= number
