"""Secrets from ``secret`` resources of the source (validated for real)."""

from __future__ import annotations

import base64

import pytest

from rune_sync.secrets.resources import ResourceSource
from rune_sync.secrets.store import Found, Missing, UnreadableSecret
from rune_sync.spec.model import Secret
from tests.plan import validate, write_source

CANARY = "CANARY-r3s0urce-5ecret"
ENCODED = base64.b64encode(f"b64-{CANARY}".encode()).decode()
BINARY = base64.b64encode(bytes([0xFF, 0x00, 0xFE])).decode()

SECRETS = f"""\
    secrets:
      - name: mapped
        namespace: prod
        data: {{token: {CANARY}, user: admin}}
      - name: listed
        namespace: prod
        data:
          - {{key: token, value: listed-{CANARY}}}
      - name: single
        namespace: prod
        value: single-{CANARY}
      - name: encoded
        namespace: prod
        valueBase64: {ENCODED}
      - name: binary
        namespace: prod
        valueBase64: {BINARY}
      - name: made-by-rune
        namespace: prod
        type: dynamic
        engine: {{name: vault}}
"""


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> tuple[Secret, ...]:
    root = write_source(tmp_path_factory.mktemp("src"), {"secrets.yaml": SECRETS})
    return validate(root).specs.secrets


def value(answer: Found | Missing) -> str:
    assert isinstance(answer, Found), answer
    return answer.value.reveal()


def test_data_mapping_list_value_and_base64_text_all_answer(specs):
    found = ResourceSource(specs)
    assert value(found.find("prod", "mapped", "token")) == CANARY
    assert value(found.find("prod", "listed", "token")) == f"listed-{CANARY}"
    assert value(found.find("prod", "single", "value")) == f"single-{CANARY}"
    assert value(found.find("prod", "encoded", "value")) == f"b64-{CANARY}"


def test_the_answer_says_it_came_from_the_source(specs):
    answer = ResourceSource(specs).find("prod", "mapped", "user")
    assert isinstance(answer, Found)
    assert answer.where == "secret resource prod/mapped in the source"


def test_the_spec_never_shows_its_values(specs):
    assert all(CANARY not in repr(s) and CANARY not in str(s) for s in specs)


def test_a_missing_key_lists_the_keys_there_are(specs):
    answer = ResourceSource(specs).find("prod", "mapped", "password")
    assert answer == Missing(
        ("no key 'password' in secret resource prod/mapped in the source (its keys: token, user)",)
    )


def test_a_missing_secret_or_another_namespace_is_missing(specs):
    assert ResourceSource(specs).find("staging", "mapped", "token") == Missing(
        ("no secret resource staging/mapped in the source",)
    )


def test_binary_base64_data_is_refused(specs):
    with pytest.raises(UnreadableSecret, match="binary data"):
        ResourceSource(specs).find("prod", "binary", "value")


def test_a_dynamic_secret_reads_as_missing_and_says_why(specs):
    answer = ResourceSource(specs).find("prod", "made-by-rune", "value")
    assert isinstance(answer, Missing)
    assert "dynamic" in answer.looked[0]
