"""Mount paths of a service: absolute (RS202, schema), not blocked (RS203), unique (RS205),
not overlapping secret/config mounts (RS206). Seed 000 *Validation*, seed 001 *Security
defaults*, and the DESIGN §3 reading of the blocklist: ``/`` and ``/etc`` are blocked as
exact paths, ``/proc``, ``/sys`` and ``/var/run/docker.sock`` with everything below them,
after normalising (``/etc/`` and ``//etc`` are ``/etc``).

Cases are checked the way ``test_rules.py`` checks them.
"""

from __future__ import annotations

import pytest

from rune_sync.diagnostics import Location, Severity
from tests.spec.test_rules import bad, check_rejected, good, src, validate_files


def service(*paths: str, secrets: tuple[str, ...] = (), configs: tuple[str, ...] = ()) -> str:
    """Service prod/web: volume mount k's mountPath on line 6+3k, then secret and config
    mounts (four lines each, mountPath second)."""
    text = "service:\n  name: web\n  namespace: prod\n  volumes:\n"
    for k, path in enumerate(paths):
        text += f'    - name: v{k}\n      mountPath: "{path}"\n'
        text += "      claimTemplate: {size: 1Gi, accessMode: ReadWriteOnce}\n"
    for key, target, items in (
        ("secretMounts", "secretName", secrets),
        ("configMounts", "configName", configs),
    ):
        if items:
            text += f"  {key}:\n"
        for k, path in enumerate(items):
            text += f'    - name: {key[0]}{k}\n      mountPath: "{path}"\n      {target}: x\n'
    return text


BLOCKED = [
    "/",
    "/etc",
    "/etc/",
    "//etc",
    "/./etc",
    "/proc",
    "/proc/1/root",
    "/sys",
    "/sys/fs",
    "/var/run/docker.sock",
    "/var/run/docker.sock/",
    "/var/run/docker.sock/x",
    "/etc/../proc/x",
    "/srv/../sys",
]
NOT_BLOCKED = [
    "/etc/app",
    "/etc/app/conf.d",
    "//etc/app",
    "/etcd",
    "/procfs",
    "/system",
    "/var/run",
    "/var/run/docker.sock.d",
    "/srv/proc",
    "/data",
]


@pytest.mark.parametrize("path", BLOCKED)
def test_blocked_mount_path_is_rejected_at_its_mount_path(tmp_path, path):
    result = validate_files(tmp_path, src(svc=service(path)))
    assert [(d.code, d.resource, d.severity, d.location) for d in result.diagnostics] == [
        ("RS203", "service/prod/web", Severity.ERROR, Location(file="svc.yaml", line=6, column=7))
    ]


@pytest.mark.parametrize("path", NOT_BLOCKED)
def test_mount_path_outside_the_blocklist_is_accepted(tmp_path, path):
    assert validate_files(tmp_path, src(svc=service(path))).diagnostics == ()


REJECTED = [
    # RS202 — mountPath absolute; subPath relative and without '..' (schema)
    bad(
        "RS202-relative-mount-path",
        "svc.yaml:6:7: error[RS202] service/prod/web",
        'mountPath: "data"',
        svc=service("data"),
    ),
    bad(
        "RS202-relative-secret-mount-path",
        "svc.yaml:10:7: error[RS202] service/prod/web",
        'mountPath: "run/secrets"',
        svc=service("/data", secrets=("run/secrets",)),
    ),
    bad(
        "RS202-absolute-sub-path",
        "svc.yaml:7:7: error[RS202] service/prod/web",
        "subPath: /logs",
        svc=service("/data").replace("claimTemplate", "subPath: /logs\n      claimTemplate"),
    ),
    bad(
        "RS202-sub-path-climbing-out",
        "svc.yaml:7:7: error[RS202] service/prod/web",
        "subPath: logs/../../x",
        svc=service("/data").replace("claimTemplate", "subPath: logs/../../x\n      claimTemplate"),
    ),
    bad(
        "RS202-sub-path-dot-dot",
        "svc.yaml:7:7: error[RS202] service/prod/web",
        'subPath: ".."',
        svc=service("/data").replace("claimTemplate", 'subPath: ".."\n      claimTemplate'),
    ),
    # RS203 — the blocklist applies to secret and config mounts too
    bad(
        "RS203-secret-mount-over-etc",
        "svc.yaml:10:7: error[RS203] service/prod/web",
        'mountPath: "/etc"',
        svc=service("/data", secrets=("/etc",)),
    ),
    bad(
        "RS203-config-mount-below-sys",
        "svc.yaml:10:7: error[RS203] service/prod/web",
        'mountPath: "/sys/kernel"',
        svc=service("/data", configs=("/sys/kernel",)),
    ),
    # RS205 — a volume mountPath is unique in its service (after normalising)
    bad(
        "RS205-two-volumes-at-one-path",
        "svc.yaml:9:7: error[RS205] service/prod/web",
        'mountPath: "/data"',
        svc=service("/data", "/data"),
    ),
    bad(
        "RS205-trailing-slash-is-the-same-path",
        "svc.yaml:12:7: error[RS205] service/prod/web",
        'mountPath: "/data/"',
        svc=service("/data", "/logs", "/data/"),
    ),
    # RS206 — volume mounts do not overlap secret/config mounts (nor those each other)
    bad(
        "RS206-secret-mount-inside-a-volume-mount",
        "svc.yaml:10:7: error[RS206] service/prod/web",
        'mountPath: "/data/creds"',
        svc=service("/data", secrets=("/data/creds",)),
    ),
    bad(
        "RS206-secret-mount-containing-a-volume-mount",
        "svc.yaml:10:7: error[RS206] service/prod/web",
        'mountPath: "/app"',
        svc=service("/app/data", secrets=("/app",)),
    ),
    bad(
        "RS206-config-mount-at-a-volume-mount-path",
        "svc.yaml:10:7: error[RS206] service/prod/web",
        'mountPath: "/data/"',
        svc=service("/data", configs=("/data/",)),
    ),
    bad(
        "RS206-config-mount-at-a-secret-mount-path",
        "svc.yaml:14:7: error[RS206] service/prod/web",
        'mountPath: "/run/app"',
        svc=service("/data", secrets=("/run/app",), configs=("/run/app",)),
    ),
]


@pytest.mark.parametrize("case", REJECTED)
def test_mount_violation_is_reported_once_at_its_mount_path(tmp_path, case):
    check_rejected(tmp_path, case)


ACCEPTED = [
    good(
        "RS202-relative-sub-paths",
        svc=service("/data", "/logs")
        .replace("v0\n", "v0\n      subPath: logs/app\n")
        .replace("v1\n", "v1\n      subPath: a..b/./c\n"),
    ),
    good("RS203-mount-below-etc", svc=service("/etc/app", secrets=("/etc/app-secrets",))),
    good("RS205-nested-volume-mounts", svc=service("/data", "/data/logs", "/data2")),
    good(
        "RS206-disjoint-secret-and-config-mounts",
        svc=service("/data", secrets=("/data2", "/run/secrets"), configs=("/run/config",)),
    ),
]


@pytest.mark.parametrize("files", ACCEPTED)
def test_valid_mounts_have_no_diagnostics(tmp_path, files):
    assert [str(d) for d in validate_files(tmp_path, files).diagnostics] == []


def test_every_mount_code_has_an_accepted_and_a_rejected_case():
    codes = {"RS202", "RS203", "RS205", "RS206"}
    assert codes - {p.values[0].code for p in REJECTED} == set()
    assert codes - {p.id.split("-")[0] for p in ACCEPTED} == set()
