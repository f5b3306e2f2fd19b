"""The plan-time check over a real, validated and expanded source."""

from __future__ import annotations

from pathlib import Path

from rune_sync.diagnostics import Severity
from rune_sync.secrets import Resolver, check
from tests.plan import desired_from
from tests.secrets.test_directory import private_dir, put

CANARY = "CANARY-ch3ck-5ecret"

CLASS_AND_VOLUMES = {
    "c.yaml": """\
        storageClass:
          name: do
          driver: do-volume
          parameters: {region: nyc3, apiToken: "secret:do-token.shared.rune/token"}
    """,
    "v.yaml": """\
        volumes:
          - {name: a, namespace: prod, storageClassName: do, size: 1Gi, accessMode: ReadWriteOnce}
          - {name: b, namespace: prod, storageClassName: do, size: 1Gi, accessMode: ReadWriteOnce}
          - name: c
            namespace: staging
            storageClassName: do
            size: 1Gi
            accessMode: ReadWriteOnce
            parameters: {apiToken: "secret:own/token"}
    """,
}


def run(tmp_path: Path, files, *, env=None, secrets: dict[str, str] | None = None):
    root = private_dir(tmp_path / "secrets")
    for rel, value in (secrets or {}).items():
        put(root, rel, value)
    desired = desired_from(tmp_path / "src", files)
    resolver = Resolver.from_sources(secrets_dir=root, environ=env or {})
    return check(desired, resolver), root


def test_a_clean_source_has_nothing_to_say(tmp_path):
    found, _ = run(
        tmp_path,
        CLASS_AND_VOLUMES,
        secrets={"shared/do-token/token": CANARY, "staging/own/token": CANARY},
    )
    assert found == ()


def test_each_missing_secret_is_one_error_where_it_is_written(tmp_path):
    found, root = run(tmp_path, CLASS_AND_VOLUMES)
    assert [(d.code, str(d.location), d.resource) for d in found] == [
        ("RS401", "c.yaml:4:30", "storageclass/do"),
        ("RS401", "v.yaml:9:18", "volume/staging/c"),
    ]
    class_error, volume_error = found
    assert class_error.message.startswith(
        "secret:do-token.shared.rune/token does not resolve: "
        f"no file {root / 'shared/do-token/token'}; "
        "no environment variable RUNE_SECRET_SHARED_DO_TOKEN_TOKEN; "
    )
    assert class_error.message.endswith("(needed by volume/prod/a and 1 more)")
    assert volume_error.message.startswith(
        "secret:own/token (secret:own.staging.rune/token) does not resolve"
    )


def test_a_shorthand_on_a_class_is_checked_in_each_consuming_namespace(tmp_path):
    files = {
        "c.yaml": """\
            storageClass:
              name: shared
              driver: local
              parameters: {token: "secret:tok/token"}
        """,
        "v.yaml": """\
            volumes:
              - {name: a, namespace: prod, storageClassName: shared, size: 1Gi,
                 accessMode: ReadWriteOnce}
              - {name: b, namespace: dev, storageClassName: shared, size: 1Gi,
                 accessMode: ReadWriteOnce}
        """,
    }
    found, _ = run(tmp_path, files, secrets={"prod/tok/token": CANARY})
    assert [(d.code, d.resource) for d in found] == [("RS401", "storageclass/shared")]
    assert found[0].message.startswith("secret:tok/token (secret:tok.dev.rune/token)")
    assert found[0].message.endswith("(needed by volume/dev/b)")


def test_a_pinned_reference_on_an_unused_class_is_checked_a_shorthand_one_cannot_be(tmp_path):
    files = {
        "c.yaml": """\
            storageClasses:
              - {name: pinned, driver: local, parameters: {t: "secret:x.ops.rune/k"}}
              - {name: short, driver: local, parameters: {t: "secret:x/k"}}
        """
    }
    found, _ = run(tmp_path, files)
    assert [(d.code, d.resource) for d in found] == [("RS401", "storageclass/pinned")]


def test_the_legacy_reference_is_checked(tmp_path):
    files = {
        "c.yaml": """\
            storageClass:
              name: do
              driver: do-volume
              parameters: {region: nyc3, apiTokenSecretRef: shared/do-api-token}
        """,
    }
    found, _ = run(tmp_path, files)
    assert [d.code for d in found] == ["RS401"]
    assert found[0].message.startswith(
        "apiTokenSecretRef shared/do-api-token (secret:do-api-token.shared.rune/token) "
        "does not resolve"
    )


def test_a_refused_file_is_rs402_and_warnings_follow_the_errors(tmp_path):
    (tmp_path / "outside").write_text(CANARY, encoding="utf-8")
    files = {
        "v.yaml": """\
            volume:
              name: a
              namespace: prod
              size: 1Gi
              accessMode: ReadWriteOnce
              parameters: {t: "secret:x/k", u: "secret:y/k"}
        """
    }
    root = private_dir(tmp_path / "secrets")
    private_dir(root / "prod/x")
    (root / "prod/x/k").symlink_to(tmp_path / "outside")
    put(root, "prod/y/k", CANARY, mode=0o644)
    desired = desired_from(tmp_path / "src", files)
    found = check(desired, Resolver.from_sources(secrets_dir=root, environ={}))
    # Sorted by file: the secrets directory's absolute path comes before v.yaml.
    assert [(d.code, d.severity, d.resource) for d in found] == [
        ("RS403", Severity.WARNING, ""),
        ("RS402", Severity.ERROR, "volume/prod/a"),
    ]
    assert "outside the secrets directory" in found[1].message
    assert all(CANARY not in str(d) for d in found)
