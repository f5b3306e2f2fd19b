"""Which changes a watch cycle may carry out unattended."""

from __future__ import annotations

from rune_sync.plan.model import Action, Change, Plan
from rune_sync.spec.model import Address
from rune_sync.watch import withhold


def change(address: str, action: Action, *, blocked: str | None = None, deps=()) -> Change:
    return Change(
        address=Address.parse(address),
        action=action,
        reason="because",
        blocked=blocked,
        depends_on=tuple(Address.parse(d) for d in deps),
    )


def test_a_plan_with_nothing_blocked_runs_whole():
    plan = Plan(changes=(change("volume/prod/a", Action.CREATE),))
    split = withhold.split(plan)
    assert split.runnable is plan and split.withheld == ()


def test_a_blocked_destroy_is_withheld_and_the_rest_runs():
    plan = Plan(
        changes=(
            change("volume/prod/a", Action.CREATE),
            change("volume/prod/b", Action.DESTROY, blocked="--allow-destroy"),
            change("volume/prod/c", Action.UPDATE),
        )
    )
    split = withhold.split(plan)
    assert [str(c.address) for c in split.runnable.changes] == ["volume/prod/a", "volume/prod/c"]
    assert [str(c.address) for c in split.withheld] == ["volume/prod/b"]
    assert split.reasons == ("volume/prod/b: destroy withheld: needs --allow-destroy (because)",)
    assert not split.runnable.blocked


def test_what_depends_on_a_withheld_change_is_withheld_too():
    plan = Plan(
        changes=(
            change("storageclass/fast", Action.REPLACE, blocked="--allow-replace"),
            change("volume/prod/a", Action.CREATE, deps=["storageclass/fast"]),
            change("volume/prod/b", Action.CREATE),
        )
    )
    split = withhold.split(plan)
    assert [str(c.address) for c in split.runnable.changes] == ["volume/prod/b"]
    assert split.reasons[1] == (
        "volume/prod/a: create withheld: waits for storageclass/fast, which is withheld"
    )


def test_a_withheld_teardown_holds_back_the_teardown_that_must_follow_it():
    # Destroys run in reverse: the class goes only after its volume.
    plan = Plan(
        changes=(
            change(
                "volume/prod/a",
                Action.DESTROY,
                blocked="--allow-destroy",
                deps=["storageclass/old"],
            ),
            change("storageclass/old", Action.DESTROY),
        )
    )
    split = withhold.split(plan)
    assert split.runnable.changes == ()
    assert len(split.withheld) == 2


def test_a_tripped_breaker_withholds_every_forget_and_destroy_only():
    plan = Plan(
        changes=(
            change("volume/prod/a", Action.FORGET),
            change("volume/prod/b", Action.FORGET),
            change("volume/prod/c", Action.CREATE),
        ),
        mass_delete="the plan would forget or destroy all 2 managed volumes",
    )
    split = withhold.split(plan)
    assert [str(c.address) for c in split.runnable.changes] == ["volume/prod/c"]
    assert split.runnable.mass_delete is None
    assert all("needs --allow-mass-delete" in r for r in split.reasons)
