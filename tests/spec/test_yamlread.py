"""The YAML reader: values, positions, and every way a file can be unacceptable."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rune_sync.spec import yamlread
from rune_sync.spec.yamlread import PosDict, PosList, YamlProblem


def one(text: str):
    docs = yamlread.parse(text)
    assert len(docs) == 1
    return docs[0].value


def test_scalars_follow_the_yaml_1_2_core_schema():
    data = one(
        "a: 1\nb: 1.5\nc: true\nd: ~\ne: yes\nf: 'true'\ng: 0x1f\nh: 0o17\ni: .inf\nj: -.inf\n"
        'k: no\nl: null\nm: 010\nn: 1e3\no: ""\np:\n'
    )
    assert data["a"] == 1 and isinstance(data["a"], int)
    assert data["b"] == 1.5
    assert data["c"] is True
    assert data["d"] is None
    assert data["e"] == "yes"  # not a boolean in YAML 1.2
    assert data["f"] == "true"
    assert data["g"] == 31 and data["h"] == 15
    assert data["i"] == math.inf and data["j"] == -math.inf
    assert data["k"] == "no"
    assert data["l"] is None and data["p"] is None
    assert data["m"] == 10
    assert data["n"] == 1000.0
    assert data["o"] == ""


def test_explicit_tags_are_honoured_or_refused():
    assert one("a: !!str 10\nb: !!int '7'\nc: !!float 1\n") == {"a": "10", "b": 7, "c": 1.0}
    with pytest.raises(YamlProblem) as exc:
        one("a: !!int ten\n")
    assert exc.value.code == "RS011"
    with pytest.raises(YamlProblem) as exc:
        one("a: !Ref thing\n")
    assert exc.value.code == "RS011" and exc.value.pos == (1, 4)


def test_positions_of_keys_and_items_are_one_based():
    data = one("volume:\n  name: x\n  list:\n    - a\n    - b: 1\n")
    assert isinstance(data, PosDict)
    assert data.key_pos["volume"] == (1, 1)
    vol = data["volume"]
    assert vol.key_pos == {"name": (2, 3), "list": (3, 3)}
    assert isinstance(vol["list"], PosList)
    assert vol["list"].item_pos == [(4, 7), (5, 7)]
    assert yamlread.position_at(data, ("volume", "list", 1, "b")) == (5, 7)
    assert yamlread.position_at(data, ("volume", "missing", "deeper")) == (1, 1)


def test_multi_document_streams_keep_each_document():
    docs = yamlread.parse("a: 1\n---\nb: 2\n---\n")
    assert [d.value for d in docs] == [{"a": 1}, {"b": 2}, None]
    assert docs[1].pos == (3, 1)


def test_duplicate_key_names_both_lines():
    with pytest.raises(YamlProblem) as exc:
        one("volume:\n  name: a\n  size: 1Gi\n  name: b\n")
    assert exc.value.code == "RS002"
    assert exc.value.pos == (4, 3)
    assert "line 2" in exc.value.message


def test_tabs_get_a_helpful_message():
    with pytest.raises(YamlProblem) as exc:
        one("volume:\n\tname: a\n")
    assert "tabs" in exc.value.message
    assert exc.value.pos[0] == 2


def test_syntax_errors_carry_a_position():
    with pytest.raises(YamlProblem) as exc:
        one("a: [1, 2\nb: 3\n")
    assert exc.value.code == "RS001"
    assert exc.value.pos[0] >= 1


def test_complex_keys_are_refused():
    with pytest.raises(YamlProblem, match="plain text"):
        one("? [a, b]\n: 1\n")


def test_aliases_and_merge_keys_work():
    data = one("base: &b {size: 1Gi, mode: x}\nv:\n  <<: *b\n  mode: y\n")
    assert data["v"] == {"size": "1Gi", "mode": "y"}
    with pytest.raises(YamlProblem, match="unknown alias"):
        one("a: *nope\n")


def test_alias_bomb_is_refused_quickly():
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    with pytest.raises(YamlProblem) as exc:
        yamlread.parse("\n".join(lines) + "\n")
    assert exc.value.code == "RS003"


def test_control_characters_are_refused_with_their_position():
    with pytest.raises(YamlProblem) as exc:
        one("a: 1\nb: x\x07y\n")
    assert exc.value.pos == (2, 5)
    assert "U+0007" in exc.value.message


def test_deep_nesting_is_a_problem_not_a_crash():
    with pytest.raises(YamlProblem):
        yamlread.parse("[" * 5000 + "]" * 5000)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_or_raises_yaml_problem(text):
    try:
        yamlread.parse(text)
    except YamlProblem as exc:
        assert exc.pos[0] >= 1 and exc.pos[1] >= 1


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-zA-Z0-9]{0,8}", fullmatch=True),
        st.one_of(
            st.integers(),
            st.text(st.characters(codec="utf-8", categories=["L", "N", "P", "Zs"]), max_size=10),
            st.booleans(),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_positions_point_at_their_key(mapping):
    import json

    text = "".join(f"{k}: {json.dumps(v, ensure_ascii=False)}\n" for k, v in mapping.items())
    data = one(text)
    lines = text.splitlines()
    for key in mapping:
        line, col = data.key_pos[key]
        assert lines[line - 1][col - 1 :].startswith(f"{key}:")
        assert data[key] == mapping[key]
