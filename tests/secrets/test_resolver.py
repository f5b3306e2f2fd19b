"""The resolver: the chain's order, what a driver gets, and what a failure says."""

from __future__ import annotations

from pathlib import Path

import pytest

from rune_sync.errors import DriverConfigError
from rune_sync.secrets import Resolver
from rune_sync.secrets.reference import reference_of
from rune_sync.secrets.store import Found
from tests.plan import validate, write_source
from tests.secrets.test_directory import private_dir, put

CANARY = "CANARY-r3s0lver-5ecret"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return private_dir(tmp_path / "secrets")


def source_secrets(tmp_path: Path, yaml: str):
    return validate(write_source(tmp_path / "src", {"s.yaml": yaml})).specs.secrets


def where(resolver: Resolver, namespace: str, name: str, key: str) -> str:
    ref = reference_of(namespace, "p", f"secret:{name}.{namespace}.rune/{key}")
    assert ref is not None
    answer = resolver.lookup(ref)
    assert isinstance(answer, Found), answer
    return answer.where


def test_sources_are_asked_directory_then_environment_then_resources(tmp_path, root):
    resources = source_secrets(
        tmp_path,
        """\
        secrets:
          - {name: a, namespace: prod, data: {k: from-source}}
          - {name: b, namespace: prod, data: {k: from-source}}
          - {name: c, namespace: prod, data: {k: from-source}}
        """,
    )
    put(root, "prod/a/k", "from-dir")
    env = {"RUNE_SECRET_PROD_A_K": "from-env", "RUNE_SECRET_PROD_B_K": "from-env"}
    resolver = Resolver.from_sources(secrets_dir=root, environ=env, resources=resources)
    got = resolver("prod", {"a": "secret:a/k", "b": "secret:b/k", "c": "secret:c/k"})
    assert dict(got) == {"a": "from-dir", "b": "from-env", "c": "from-source"}
    assert where(resolver, "prod", "a", "k") == f"file {root / 'prod/a/k'}"
    assert where(resolver, "prod", "b", "k") == "environment variable RUNE_SECRET_PROD_B_K"
    assert where(resolver, "prod", "c", "k") == "secret resource prod/c in the source"


def test_a_refused_file_is_not_skipped_for_a_later_source(tmp_path, root):
    (tmp_path / "outside").write_text(CANARY, encoding="utf-8")
    private_dir(root / "prod/a")
    (root / "prod/a/k").symlink_to(tmp_path / "outside")
    resolver = Resolver.from_sources(secrets_dir=root, environ={"RUNE_SECRET_PROD_A_K": "env"})
    with pytest.raises(DriverConfigError) as refused:
        resolver("prod", {"apiToken": "secret:a/k"})
    assert str(refused.value).startswith("secret:a/k (secret:a.prod.rune/k): ")
    assert "outside the secrets directory" in str(refused.value)
    assert CANARY not in str(refused.value)


def test_shorthand_resolves_in_the_consuming_namespace_and_fqdn_stays_pinned(root):
    put(root, "prod/tok/token", "prod-token")
    put(root, "staging/tok/token", "staging-token")
    put(root, "shared/tok/token", "shared-token")
    resolver = Resolver.from_sources(secrets_dir=root, environ={})
    params = {"short": "secret:tok/token", "pinned": "secret:tok.shared.rune/token"}
    assert dict(resolver("prod", params)) == {"short": "prod-token", "pinned": "shared-token"}
    assert dict(resolver("staging", params)) == {
        "short": "staging-token",
        "pinned": "shared-token",
    }


def test_the_legacy_key_keeps_its_name_and_gets_the_token(root):
    put(root, "shared/do-api-token/token", CANARY + "\n")
    resolver = Resolver.from_sources(secrets_dir=root, environ={})
    got = resolver("prod", {"region": "nyc3", "apiTokenSecretRef": "shared/do-api-token"})
    assert dict(got) == {"region": "nyc3", "apiTokenSecretRef": CANARY}


def test_literals_pass_verbatim_and_the_input_is_left_alone(root):
    resolver = Resolver.from_sources(secrets_dir=root, environ={"RUNE_SECRET_P_T_K": CANARY})
    params = {"region": "nyc3", "apiToken": "secret:t/k", "note": "secret-ish"}
    got = resolver("p", params)
    assert dict(got) == {"region": "nyc3", "apiToken": CANARY, "note": "secret-ish"}
    assert params["apiToken"] == "secret:t/k"
    with pytest.raises(TypeError):
        got["apiToken"] = "x"  # type: ignore[index]


def test_a_missing_secret_names_the_reference_and_every_place_looked(root):
    resolver = Resolver.from_sources(secrets_dir=root, environ={})
    with pytest.raises(DriverConfigError) as missing:
        resolver("prod", {"apiToken": "secret:do-api-token.shared.rune/token"})
    assert str(missing.value) == (
        "secret:do-api-token.shared.rune/token does not resolve: "
        f"no file {root / 'shared/do-api-token/token'}; "
        "no environment variable RUNE_SECRET_SHARED_DO_API_TOKEN_TOKEN; "
        "no secret resource shared/do-api-token in the source"
    )
    assert missing.value.operation == "resolve secrets"


def test_a_missing_key_of_a_present_secret_is_an_error_too(tmp_path, root):
    resources = source_secrets(
        tmp_path, "secret: {name: creds, namespace: prod, data: {user: u}}\n"
    )
    put(root, "prod/creds/user", "u")
    resolver = Resolver.from_sources(secrets_dir=root, environ={}, resources=resources)
    with pytest.raises(DriverConfigError, match=r"secret:creds/password .* does not resolve"):
        resolver("prod", {"p": "secret:creds/password"})


def test_a_malformed_reference_is_invalid_parameters(root):
    resolver = Resolver.from_sources(secrets_dir=root, environ={})
    with pytest.raises(DriverConfigError, match="needs a key"):
        resolver("prod", {"apiToken": "secret:nokey"})


def test_every_resolved_value_is_remembered_for_redaction(root):
    put(root, "prod/a/k", CANARY)
    resolver = Resolver.from_sources(secrets_dir=root, environ={})
    resolver("prod", {"x": "secret:a/k"})
    assert resolver.redactor.scrub(f"it was {CANARY}!") == "it was ***!"
