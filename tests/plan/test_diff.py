"""Field diffs of normalised specs: ``compute`` finds every changed leaf, ``apply`` replays.

Examples pin the shape of the diffs (paths, ops, order); Hypothesis checks the two laws
of STYLE §7 on generated nested JSON mappings: ``compute(a, a) == ()`` and
``apply(a, compute(a, b)) == b``.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rune_sync.plan import diff
from rune_sync.plan.model import DiffOp, FieldDiff

OLD = {
    "size": "1Gi",
    "labels": {"app": "web", "tier": "gold"},
    "parameters": {},
    "zones": ["a", "b"],
}
NEW = {
    "size": "2Gi",
    "labels": {"app": "web", "team": "core"},
    "parameters": {},
    "zones": ["a", "c"],
    "restoreFrom": "nightly",
}


def test_one_diff_per_changed_leaf_sorted_by_path():
    assert diff.compute(OLD, NEW) == (
        FieldDiff(op=DiffOp.ADD, path="labels.team", new="core"),
        FieldDiff(op=DiffOp.REMOVE, path="labels.tier", old="gold"),
        FieldDiff(op=DiffOp.ADD, path="restoreFrom", new="nightly"),
        FieldDiff(op=DiffOp.CHANGE, path="size", old="1Gi", new="2Gi"),
        FieldDiff(op=DiffOp.CHANGE, path="zones", old=["a", "b"], new=["a", "c"]),
    )


def test_lists_compare_whole_and_tuples_equal_lists():
    assert diff.compute({"z": ["a", {"k": ("x",)}]}, {"z": ("a", {"k": ["x"]})}) == ()
    assert diff.compute({"z": [1, 2]}, {"z": [2, 1]}) == (
        FieldDiff(op=DiffOp.CHANGE, path="z", old=[1, 2], new=[2, 1]),
    )


def test_a_mapping_replaced_by_a_scalar_is_one_change():
    assert diff.compute({"p": {"a": "1"}}, {"p": "x"}) == (
        FieldDiff(op=DiffOp.CHANGE, path="p", old={"a": "1"}, new="x"),
    )


def test_ignore_skips_top_level_keys_only():
    old = {"size": "1Gi", "labels": {"size": "s"}}
    new = {"size": "1024Mi", "labels": {"size": "m"}}
    assert diff.compute(old, new, ignore=frozenset({"size"})) == (
        FieldDiff(op=DiffOp.CHANGE, path="labels.size", old="s", new="m"),
    )


def test_none_values_are_values():
    assert diff.compute({"r": None}, {"r": "x"}) == (
        FieldDiff(op=DiffOp.CHANGE, path="r", old=None, new="x"),
    )
    assert diff.compute({"r": None}, {}) == (FieldDiff(op=DiffOp.REMOVE, path="r", old=None),)


def test_apply_replays_the_example_and_leaves_the_input_alone():
    before = copy.deepcopy(OLD)
    assert diff.apply(OLD, diff.compute(OLD, NEW)) == NEW
    assert before == OLD


def test_diffs_survive_json():
    for d in diff.compute(OLD, NEW):
        assert FieldDiff.from_json(d.to_json()) == d


def test_keys_with_dots_round_trip():
    old = {"labels": {"app.kubernetes.io/name": "web"}}
    new = {"labels": {"app.kubernetes.io/name": "api"}}
    assert diff.apply(old, diff.compute(old, new)) == new


# ----------------------------------------------------------------------------- properties

# Keys without '.': a dotted key is the known bug above, kept out of the laws.
KEYS = st.text(alphabet="abcxyz-_/", min_size=1, max_size=4)
SCALARS = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "a", "1Gi"])
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=10,
)
MAPPINGS = st.dictionaries(KEYS, JSON, max_size=5)


@settings(max_examples=150, deadline=None)
@given(MAPPINGS)
def test_diff_of_a_mapping_with_itself_is_empty(a: dict[str, Any]):
    assert diff.compute(a, a) == ()
    assert diff.compute(a, copy.deepcopy(a)) == ()


@settings(max_examples=300, deadline=None)
@given(MAPPINGS, MAPPINGS)
def test_applying_the_diff_gives_the_new_mapping(a: dict[str, Any], b: dict[str, Any]):
    diffs = diff.compute(a, b)
    assert diff.apply(a, diffs) == b
    assert (diffs == ()) == (a == b)
