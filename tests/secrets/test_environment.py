"""Secrets from ``RUNE_SECRET_<NAMESPACE>_<NAME>_<KEY>`` variables."""

from __future__ import annotations

from rune_sync.secrets.environment import EnvironmentSource
from rune_sync.secrets.notices import Notices
from rune_sync.secrets.store import Found, Missing

CANARY = "CANARY-3nv-5ecret"


def test_the_variable_of_the_secret_answers():
    env = {"RUNE_SECRET_SHARED_DO_API_TOKEN_TOKEN": CANARY}
    answer = EnvironmentSource(env, notices=Notices()).find("shared", "do-api-token", "token")
    assert isinstance(answer, Found)
    assert answer.value.reveal() == CANARY
    assert answer.where == "environment variable RUNE_SECRET_SHARED_DO_API_TOKEN_TOKEN"


def test_an_empty_variable_is_set_and_answers():
    answer = EnvironmentSource({"RUNE_SECRET_P_N_K": ""}, notices=Notices()).find("p", "n", "k")
    assert isinstance(answer, Found)
    assert answer.value.reveal() == ""


def test_a_missing_variable_is_named():
    answer = EnvironmentSource({}, notices=Notices()).find("prod", "db", "tls.key")
    assert answer == Missing(("no environment variable RUNE_SECRET_PROD_DB_TLS_KEY",))


def test_one_variable_serving_two_secrets_is_warned_about_once_naming_both():
    notices = Notices()
    env = EnvironmentSource({"RUNE_SECRET_A_B_C_K": CANARY}, notices=notices)
    first = env.find("a-b", "c", "k")
    second = env.find("a", "b-c", "k")
    env.find("a", "b-c", "k")
    env.find("a-b", "c", "k")
    assert isinstance(first, Found)
    assert isinstance(second, Found)
    assert first.value == second.value
    (warning,) = notices.take()
    assert warning.code == "RS404"
    assert "RUNE_SECRET_A_B_C_K" in warning.message
    assert "secret:c.a-b.rune/k" in warning.message
    assert "secret:b-c.a.rune/k" in warning.message
    assert CANARY not in str(warning)


def test_the_same_secret_read_twice_is_no_collision():
    notices = Notices()
    env = EnvironmentSource({"RUNE_SECRET_P_N_K": "v"}, notices=notices)
    env.find("p", "n", "k")
    env.find("p", "n", "k")
    assert notices.take() == ()
