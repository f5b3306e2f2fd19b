"""The environment variable of a secret, and the collisions its naming allows."""

from __future__ import annotations

import pytest

from rune_sync.secrets.naming import env_name


@pytest.mark.parametrize(
    ("namespace", "name", "key", "variable"),
    [
        ("prod", "db", "password", "RUNE_SECRET_PROD_DB_PASSWORD"),
        ("shared", "do-api-token", "token", "RUNE_SECRET_SHARED_DO_API_TOKEN_TOKEN"),
        ("prod", "tls", "tls.crt", "RUNE_SECRET_PROD_TLS_TLS_CRT"),
        ("prod", "s3", "Access_Key-ID", "RUNE_SECRET_PROD_S3_ACCESS_KEY_ID"),
        ("a1", "b2", "c3", "RUNE_SECRET_A1_B2_C3"),
    ],
)
def test_parts_are_upper_cased_and_everything_but_letters_and_digits_becomes_underscore(
    namespace, name, key, variable
):
    assert env_name(namespace, name, key) == variable


def test_a_dash_in_the_namespace_or_the_name_collides_with_the_separator():
    assert env_name("a-b", "c", "k") == env_name("a", "b-c", "k") == "RUNE_SECRET_A_B_C_K"


def test_keys_lose_their_case_and_punctuation():
    names = {env_name("prod", "app", key) for key in ("to-ken", "to.ken", "To_Ken", "TO-KEN")}
    assert names == {"RUNE_SECRET_PROD_APP_TO_KEN"}
