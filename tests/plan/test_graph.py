"""Execution order (DESIGN §6): classes → volumes → snapshots → restored volumes; destroys
in reverse; cycles refused; the same changes always in the same order."""

from __future__ import annotations

import random

import pytest

from rune_sync.plan import graph
from rune_sync.plan.model import Action, Change
from rune_sync.spec.model import Address


def a(text: str) -> Address:
    return Address.parse(text)


def change(address: str, action: Action = Action.CREATE, *deps: str) -> Change:
    return Change(
        address=a(address), action=action, reason="test", depends_on=tuple(a(d) for d in deps)
    )


def names(changes) -> list[str]:
    return [str(c.address) for c in changes]


def chain(action: Action) -> list[Change]:
    """class ← volume ← snapshot ← restored volume, listed backwards."""
    return [
        change("volume/prod/restored", action, "snapshot/prod/nightly"),
        change("snapshot/prod/nightly", action, "volume/prod/web"),
        change("volume/prod/web", action, "storageclass/fast"),
        change("storageclass/fast", action),
    ]


def test_creates_run_class_volume_snapshot_restored_volume():
    assert names(graph.order(chain(Action.CREATE))) == [
        "storageclass/fast",
        "volume/prod/web",
        "snapshot/prod/nightly",
        "volume/prod/restored",
    ]


@pytest.mark.parametrize("action", [Action.DESTROY, Action.FORGET])
def test_teardown_runs_in_reverse(action: Action):
    assert names(graph.order(chain(action))) == [
        "volume/prod/restored",
        "snapshot/prod/nightly",
        "volume/prod/web",
        "storageclass/fast",
    ]


def test_layers_group_independent_changes():
    changes = [*chain(Action.CREATE), change("volume/prod/other"), change("storageclass/slow")]
    assert [names(layer) for layer in graph.layers(changes)] == [
        ["storageclass/fast", "storageclass/slow", "volume/prod/other"],
        ["volume/prod/web"],
        ["snapshot/prod/nightly"],
        ["volume/prod/restored"],
    ]


def test_teardown_layers_are_reversed():
    assert [names(layer) for layer in graph.layers(chain(Action.DESTROY))] == [
        ["volume/prod/restored"],
        ["snapshot/prod/nightly"],
        ["volume/prod/web"],
        ["storageclass/fast"],
    ]


def test_a_create_waits_for_an_update_it_depends_on():
    changes = [
        change("snapshot/prod/s", Action.CREATE, "volume/prod/v"),
        change("volume/prod/v", Action.UPDATE),
    ]
    assert names(graph.order(changes)) == ["volume/prod/v", "snapshot/prod/s"]


def test_dependencies_outside_the_plan_are_ignored():
    changes = [change("volume/prod/v", Action.CREATE, "storageclass/gone")]
    assert names(graph.order(changes)) == ["volume/prod/v"]


def test_independent_changes_sort_by_kind_then_namespace_then_name():
    changes = [
        change("snapshot/a/s"),
        change("volume/b/a"),
        change("volume/a/z"),
        change("storageclass/z"),
        change("volume/a/b"),
        change("storageclass/a"),
    ]
    assert names(graph.order(changes)) == [
        "storageclass/a",
        "storageclass/z",
        "volume/a/b",
        "volume/a/z",
        "volume/b/a",
        "snapshot/a/s",
    ]


def test_order_is_the_same_whatever_the_input_order():
    changes = [
        *chain(Action.CREATE),
        *[change(f"volume/ns{i % 3}/v{i}") for i in range(20)],
        change("snapshot/ns1/s", Action.CREATE, "volume/ns1/v4"),
    ]
    expected = names(graph.order(changes))
    rng = random.Random(7)
    for _ in range(10):
        shuffled = changes[:]
        rng.shuffle(shuffled)
        assert names(graph.order(shuffled)) == expected


def test_every_dependency_comes_first():
    changes = [
        *chain(Action.CREATE),
        change("volume/prod/b", Action.CREATE, "storageclass/fast"),
        change("snapshot/prod/b1", Action.CREATE, "volume/prod/b"),
    ]
    position = {c.address: i for i, c in enumerate(graph.order(changes))}
    for c in changes:
        for dep in c.depends_on:
            assert position[dep] < position[c.address], (dep, c.address)


def test_a_cycle_raises_value_error_naming_it():
    changes = [
        change("volume/prod/a", Action.CREATE, "snapshot/prod/b"),
        change("snapshot/prod/b", Action.CREATE, "volume/prod/a"),
    ]
    with pytest.raises(ValueError, match="dependency cycle"):
        graph.order(changes)
    with pytest.raises(ValueError, match="dependency cycle"):
        graph.layers(changes)


def test_a_self_dependency_is_a_cycle():
    with pytest.raises(ValueError, match="dependency cycle"):
        graph.order([change("volume/prod/a", Action.CREATE, "volume/prod/a")])


def test_empty_plan_orders_to_nothing():
    assert graph.order([]) == ()
    assert graph.layers([]) == []
