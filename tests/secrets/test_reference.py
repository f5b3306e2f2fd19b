"""Which parameters are references, and the namespace each one is looked up in."""

from __future__ import annotations

import pytest

from rune_sync.secrets.reference import reference_of, references
from rune_sync.spec.secrets import SecretReferenceError


def test_shorthand_resolves_in_the_consuming_volumes_namespace():
    ref = reference_of("prod", "apiToken", "secret:do-api-token/token")
    assert ref is not None
    assert ref.triple == ("prod", "do-api-token", "token")
    assert str(ref) == "secret:do-api-token/token (secret:do-api-token.prod.rune/token)"


def test_the_fqdn_form_is_pinned_whatever_the_consumer():
    for consumer in ("prod", "staging"):
        ref = reference_of(consumer, "apiToken", "secret:do-api-token.shared.rune/token")
        assert ref is not None
        assert ref.triple == ("shared", "do-api-token", "token")
        assert str(ref) == "secret:do-api-token.shared.rune/token"


def test_legacy_api_token_secret_ref_reads_key_token_of_namespace_slash_name():
    ref = reference_of("prod", "apiTokenSecretRef", "shared/do-api-token")
    assert ref is not None
    assert ref.is_legacy
    assert ref.triple == ("shared", "do-api-token", "token")
    assert str(ref) == (
        "apiTokenSecretRef shared/do-api-token (secret:do-api-token.shared.rune/token)"
    )


def test_values_without_the_prefix_are_not_references():
    assert reference_of("prod", "region", "nyc3") is None
    assert reference_of("prod", "note", "a secret: maybe") is None


def test_malformed_references_raise():
    with pytest.raises(SecretReferenceError, match="needs a key"):
        reference_of("prod", "apiToken", "secret:no-key")
    with pytest.raises(SecretReferenceError, match="<namespace>/<name>"):
        reference_of("prod", "apiTokenSecretRef", "just-a-name")


def test_references_lists_only_the_parameters_that_refer_to_secrets():
    found = references(
        "prod",
        {"region": "nyc3", "apiToken": "secret:t/token", "apiTokenSecretRef": "ops/legacy"},
    )
    assert [(r.parameter, r.triple) for r in found] == [
        ("apiToken", ("prod", "t", "token")),
        ("apiTokenSecretRef", ("ops", "legacy", "token")),
    ]
