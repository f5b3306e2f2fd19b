"""State targets: state names, and URLs shown with their password masked."""

from __future__ import annotations

import pytest

from rune_sync.state.target import DEFAULT_STATE_NAME, StateTarget, check_state_name, mask_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:s3cret@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgres://u@h/db", "postgres://u@h/db"),
        ("postgresql://u:p%40ss@h/db?sslmode=require", "postgresql://u:***@h/db?sslmode=require"),
        ("postgresql://h/db?password=s3cret&sslmode=verify-full",
         "postgresql://h/db?password=***&sslmode=verify-full"),
    ],
)  # fmt: skip
def test_a_password_is_masked_wherever_a_url_is_shown(url, shown):
    assert mask_url(url) == shown
    assert StateTarget(location=url).flags == f"--state {shown}"


def test_a_target_names_its_state_only_when_it_is_not_the_default():
    url = "postgresql://u:pw@h/db"
    assert str(StateTarget(location=url)) == "postgresql://u:***@h/db"
    named = StateTarget(location=url, name="prod")
    assert str(named) == "postgresql://u:***@h/db (state prod)"
    assert named.flags == "--state postgresql://u:***@h/db --state-name prod"
    assert StateTarget(location="state.db").name == DEFAULT_STATE_NAME


@pytest.mark.parametrize("name", ["default", "prod", "team-a.eu_1", "x" * 128])
def test_valid_state_names(name):
    assert check_state_name(name) == name


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "a b", "x" * 129])
def test_invalid_state_names_are_refused(name):
    with pytest.raises(ValueError, match="state name"):
        check_state_name(name)
