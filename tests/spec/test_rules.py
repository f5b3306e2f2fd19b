"""Cross-resource rules (DESIGN §3; seed 000 *Validation*, seed 001 *Security defaults*).

Every case is a small real source directory validated with :func:`validate_directory`.
A rejected case states the diagnostic the way a compiler prints it,
``FILE:LINE:COL: SEVERITY[CODE] RESOURCE``, plus the text the source holds at that place
(the field the rule is about), which is checked against the source first so that a
miscounted expectation cannot agree with a wrong answer. The run must report that code
once and nothing else (``also`` lists codes the same source rightly adds). An accepted
case must validate with no diagnostic at all, so it cannot pass because a schema error
dropped the resource before the rules saw it. Mount paths (RS202/203/205/206) are in
``test_mounts.py``.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rune_sync.diagnostics import Diagnostic, Location, Severity
from rune_sync.drivers import do_volume
from rune_sync.spec.codes import CODES
from rune_sync.spec.model import AccessMode as A
from rune_sync.spec.model import Capabilities
from rune_sync.spec.validate import Validated, validate_directory

DRIVERS = {
    "local": Capabilities(
        access_modes=frozenset({A.READ_WRITE_ONCE}), snapshots=True, expand=True, online_expand=True
    ),
    "local-host": Capabilities(
        access_modes=frozenset({A.READ_WRITE_ONCE, A.READ_ONLY_MANY}),
        expand=True,
        online_expand=True,
        topology_keys=frozenset({"rune.io/host-path-root"}),
    ),
    "do-volume": Capabilities(
        access_modes=frozenset({A.READ_WRITE_ONCE}),
        snapshots=True,
        expand=True,
        block_device=True,
        topology_keys=frozenset({"rune.io/region"}),
    ),
}
PARAMETERS = {do_volume.NAME: do_volume.PARAMETERS}  # the driver's own declaration

WARNING = Severity.WARNING
ERROR = Severity.ERROR


def y(text: str) -> str:
    """Dedented YAML; written as ``y(\"\"\"\\`` its first line is line 1."""
    return textwrap.dedent(text)


def validate_files(root: Path, files: Mapping[str, str]) -> Validated:
    """Write ``{relative path: text}`` below ``root`` and validate it from there."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return validate_directory(root, drivers=DRIVERS, parameter_rules=PARAMETERS, cwd=root)


def only(result: Validated, code: str) -> Diagnostic:
    found = [d for d in result.diagnostics if d.code == code]
    assert len(found) == 1, [str(d) for d in result.diagnostics]
    return found[0]


def src(**files: str) -> dict[str, str]:
    """File names from keywords: ``vols=`` is vols.yaml, ``runefile_toml=`` runefile.toml."""
    return {(k.replace("_", ".") if "_" in k else f"{k}.yaml"): v for k, v in files.items()}


EXPECT = re.compile(
    r"(?P<file>[^:]+):(?P<line>\d+):(?P<column>\d+): "
    r"(?P<severity>error|warning)\[(?P<code>RS\d{3})\] (?P<resource>\S+)"
)


@dataclass(frozen=True)
class Rejected:
    expect: str
    text: str
    files: Mapping[str, str]
    also: tuple[str, ...] = ()

    @property
    def want(self) -> dict[str, Any]:
        m = EXPECT.fullmatch(self.expect)
        assert m is not None, self.expect
        return {**m.groupdict(), "line": int(m["line"]), "column": int(m["column"])}

    @property
    def code(self) -> str:
        return str(self.want["code"])


def bad(
    id: str, expect: str, text: str, *, also: tuple[str, ...] = (), bug: str = "", **files: str
) -> Any:
    """A rejected case; ``bug`` marks it xfail(strict) with that reason."""
    marks = [pytest.mark.xfail(strict=True, reason=f"BUG: {bug}")] if bug else []
    return pytest.param(Rejected(expect, text, src(**files), also), id=id, marks=marks)


def good(id: str, **files: str) -> Any:
    return pytest.param(src(**files), id=id)


def check_rejected(tmp_path: Path, case: Rejected) -> None:
    want = case.want
    line = case.files[want["file"]].splitlines()[want["line"] - 1]
    assert line[want["column"] - 1 :].startswith(case.text), "the expectation is miscounted"
    result = validate_files(tmp_path, case.files)
    assert sorted(d.code for d in result.diagnostics) == sorted([case.code, *case.also]), [
        str(d) for d in result.diagnostics
    ]
    d = only(result, case.code)
    assert d.resource == want["resource"]
    assert d.severity is Severity(want["severity"])
    assert d.location == Location(file=want["file"], line=want["line"], column=want["column"])
    assert result.ok is (d.severity is WARNING and not case.also)


def volume(
    name: str = "pgdata",
    *,
    cls: str = "local",
    mode: str = "ReadWriteOnce",
    size: str = "10Gi",
    extra: str = "",
) -> str:
    """A volume in ``prod``: name line 2, class line 4, then size, accessMode, ``extra``."""
    lines = [
        "volume:",
        f"  name: {name}",
        "  namespace: prod",
        *([f"  storageClassName: {cls}"] if cls else []),
        f"  size: {size}",
        f"  accessMode: {mode}",
        *(f"  {line}" for line in extra.splitlines()),
    ]
    return "\n".join(lines) + "\n"


def snapshot(name: str, source: str, namespace: str = "prod") -> str:
    return f"snapshot:\n  name: {name}\n  namespace: {namespace}\n  source: {{volume: {source}}}\n"


def runefile(*settings: str) -> str:
    return "storage:\n" + "".join(f"  {s}\n" for s in settings)


ALLOW_SRV_RUNE = runefile("hostPathAllowlist: [/srv/rune]")
NO_DEFAULT = runefile('defaultStorageClass: ""')
WEB_DATA = volume("web-data", size="1Gi")
MEDIA = volume("media", cls="local-host", extra="parameters: {hostPath: /srv/rune/media}")
DO_CLASS = y("""\
    storageClass:
      name: do-nyc3
      driver: do-volume
      parameters:
        region: nyc3
        apiToken: secret:do-api-token.shared.rune/token
    """)
POSTGRES = y("""\
    service:
      name: postgres
      namespace: prod
      scale: 2
      volumes:
        - name: pgdata
          mountPath: /var/lib/postgresql/data
          claimTemplate: {size: 10Gi, accessMode: ReadWriteOnce}
    """)


def web_service(mount: str, *, scale: int = 1, runtime: str = "") -> str:
    """Service prod/web with one mount ``data`` (item at 6:7); ``mount`` holds its
    claim/claimTemplate lines, starting on line 8."""
    head = f"service:\n  name: web\n  namespace: prod\n  scale: {scale}\n"
    body = "  volumes:\n    - name: data\n      mountPath: /data\n"
    return head + (runtime or "") + body + textwrap.indent(mount, "      ")


# --------------------------------------------------------------------------- rejected

REJECTED = [
    # RS201 — exactly one of claim / claimTemplate
    bad(
        "RS201-mount-with-neither-claim-nor-template",
        "svc.yaml:6:7: error[RS201] service/prod/web",
        "name: data",
        svc=web_service("readOnly: false\n"),
    ),
    bad(
        "RS201-mount-with-both-claim-and-template",
        "svc.yaml:6:7: error[RS201] service/prod/web",
        "name: data",
        vols=WEB_DATA,
        svc=web_service(
            "claim: {name: web-data}\nclaimTemplate: {size: 1Gi, accessMode: ReadWriteOnce}\n"
        ),
    ),
    # RS204 — an access mode the driver advertises
    bad(
        "RS204-rwx-volume-on-local",
        "vols.yaml:6:3: error[RS204] volume/prod/pgdata",
        "accessMode: ReadWriteMany",
        vols=volume(mode="ReadWriteMany"),
    ),
    bad(
        "RS204-rox-volume-on-a-do-volume-class",
        "vols.yaml:6:3: error[RS204] volume/prod/pgdata",
        "accessMode: ReadOnlyMany",
        classes=DO_CLASS,
        vols=volume(cls="do-nyc3", mode="ReadOnlyMany"),
    ),
    bad(
        "RS204-template-at-scale-0-is-still-checked",
        "svc.yaml:10:9: error[RS204] service/prod/web",
        "accessMode: ReadOnlyMany",
        svc=web_service("claimTemplate:\n  size: 10Gi\n  accessMode: ReadOnlyMany\n", scale=0),
    ),
    # RS207 — a ReadWriteOnce claim needs scale 1
    bad(
        "RS207-rwo-claim-on-a-scale-3-service",
        "svc.yaml:8:7: error[RS207] service/prod/web",
        "claim:",
        vols=WEB_DATA,
        svc=web_service("claim:\n  name: web-data\n", scale=3),
    ),
    bad(
        "RS207-rwo-claim-of-a-template-generated-volume",
        "svc.yaml:8:7: error[RS207] service/prod/web",
        "claim:",
        postgres=POSTGRES,
        svc=web_service("claim: {name: pgdata-postgres-0}\n", scale=2),
    ),
    # RS208 — snapshots only where the driver supports them
    bad(
        "RS208-snapshot-of-a-local-host-volume",
        "snaps.yaml:5:5: error[RS208] snapshot/prod/s1",
        "volume: media",
        runefile=ALLOW_SRV_RUNE,
        vols=MEDIA,
        snaps="snapshot:\n  name: s1\n  namespace: prod\n  source:\n    volume: media\n",
    ),
    bad(
        "RS208-restore-into-a-local-host-volume",
        "restored.yaml:8:3: error[RS208] volume/prod/restored",
        "restoreFrom:",
        runefile=ALLOW_SRV_RUNE,
        vols=WEB_DATA,
        snaps=snapshot("s1", "web-data"),
        restored=volume(
            "restored",
            cls="local-host",
            extra=("parameters: {hostPath: /srv/rune/restored}\nrestoreFrom: {snapshot: s1}"),
        ),
    ),
    # RS209 — local-host hostPath present, absolute, without '..'
    bad(
        "RS209-relative-host-path",
        "vols.yaml:8:5: error[RS209] volume/prod/media",
        "hostPath: srv/rune",
        runefile=ALLOW_SRV_RUNE,
        vols=volume("media", cls="local-host", extra="parameters:\n  hostPath: srv/rune"),
    ),
    bad(
        "RS209-host-path-with-dot-dot",
        "vols.yaml:8:5: error[RS209] volume/prod/media",
        "hostPath: /srv/rune/../../etc",
        runefile=ALLOW_SRV_RUNE,
        vols=volume(
            "media", cls="local-host", extra="parameters:\n  hostPath: /srv/rune/../../etc"
        ),
    ),
    bad(
        "RS209-missing-host-path-is-reported-at-parameters",
        "vols.yaml:7:3: error[RS209] volume/prod/media",
        "parameters:",
        runefile=ALLOW_SRV_RUNE,
        vols=volume("media", cls="local-host", extra="parameters:\n  other: x"),
    ),
    bad(
        "RS209-missing-host-path-in-a-template",
        "svc.yaml:8:7: error[RS209] service/prod/web",
        "claimTemplate:",
        runefile=ALLOW_SRV_RUNE,
        svc=web_service(
            "claimTemplate: {storageClassName: local-host, size: 1Gi, accessMode: ReadWriteOnce}\n"
        ),
    ),
    # RS210 — hostPath under the allowlist, by whole path components
    bad(
        "RS210-sibling-with-a-common-prefix-is-not-covered",
        "vols.yaml:8:5: error[RS210] volume/prod/media",
        "hostPath: /srv/rune2/media",
        runefile=ALLOW_SRV_RUNE,
        vols=volume("media", cls="local-host", extra="parameters:\n  hostPath: /srv/rune2/media"),
    ),
    bad(
        "RS210-parent-of-the-allowed-root",
        "vols.yaml:8:5: error[RS210] volume/prod/media",
        "hostPath: /srv",
        runefile=ALLOW_SRV_RUNE,
        vols=volume("media", cls="local-host", extra="parameters:\n  hostPath: /srv"),
    ),
    bad(
        "RS210-empty-allowlist-denies-every-path",
        "vols.yaml:7:16: error[RS210] volume/prod/media",
        "hostPath: /srv/rune/media",
        vols=MEDIA,
    ),
    bad(
        "RS210-host-path-from-the-class-is-reported-in-the-class",
        "classes.yaml:5:5: error[RS210] volume/prod/shared",
        "hostPath: /data/shared",
        runefile=ALLOW_SRV_RUNE,
        vols=volume("shared", cls="shared-host"),
        classes=y("""\
            storageClass:
              name: shared-host
              driver: local-host
              parameters:
                hostPath: /data/shared
            """),
    ),
    # RS211 — a process-runtime service mounts local-host volumes only
    bad(
        "RS211-process-service-claims-a-local-volume",
        "svc.yaml:7:7: error[RS211] service/prod/web",
        "name: data",
        vols=WEB_DATA,
        svc=web_service("claim: {name: web-data}\n", runtime="  process: {}\n"),
    ),
    bad(
        "RS211-process-service-template-on-do-volume",
        "svc.yaml:8:7: error[RS211] service/prod/web",
        "name: data",
        classes=DO_CLASS,
        svc=web_service(
            "claimTemplate: {storageClassName: do-nyc3, size: 1Gi, accessMode: ReadWriteOnce}\n",
            runtime="  process:\n    command: /usr/bin/web\n",
        ),
    ),
    # RS212 — no reclaimPolicy delete on local-host
    bad(
        "RS212-local-host-volume-asks-for-delete",
        "vols.yaml:7:3: error[RS212] volume/prod/media",
        "reclaimPolicy: delete",
        runefile=ALLOW_SRV_RUNE,
        vols=volume(
            "media",
            cls="local-host",
            extra=("reclaimPolicy: delete\nparameters: {hostPath: /srv/rune/media}"),
        ),
    ),
    bad(
        "RS212-delete-inherited-from-a-local-host-class",
        "vols.yaml:4:3: error[RS212] volume/prod/scratch",
        "storageClassName: host-scratch",
        runefile=ALLOW_SRV_RUNE,
        vols=volume("scratch", cls="host-scratch"),
        classes=y("""\
            storageClass:
              name: host-scratch
              driver: local-host
              reclaimPolicy: delete
              parameters: {hostPath: /srv/rune/scratch}
            """),
    ),
    bad(
        "RS212-local-host-template-asks-for-delete",
        "svc.yaml:12:9: error[RS212] service/prod/web",
        "reclaimPolicy: delete",
        runefile=ALLOW_SRV_RUNE,
        svc=web_service(
            y("""\
            claimTemplate:
              storageClassName: local-host
              size: 1Gi
              accessMode: ReadWriteOnce
              reclaimPolicy: delete
              parameters: {hostPath: /srv/rune/web}
            """)
        ),
    ),
    # RS213 — at most one default class
    bad(
        "RS213-second-default-class",
        "classes.yaml:7:5: error[RS213] storageclass/slow",
        "default: true",
        classes=y("""\
            storageClasses:
              - name: fast
                driver: local
                default: true
              - name: slow
                driver: local
                default: true
            """),
    ),
    # RS214 — storageClassName names a class
    bad(
        "RS214-volume-names-an-unknown-class",
        "vols.yaml:4:3: error[RS214] volume/prod/pgdata",
        "storageClassName: fsat",
        vols=volume(cls="fsat"),
    ),
    bad(
        "RS214-template-at-scale-0-names-an-unknown-class",
        "svc.yaml:8:23: error[RS214] service/prod/web",
        "storageClassName: nope",
        svc=web_service(
            "claimTemplate: {storageClassName: nope, size: 1Gi, accessMode: ReadWriteOnce}\n",
            scale=0,
        ),
    ),
    # RS215 — the class's driver is installed
    bad(
        "RS215-unknown-driver",
        "classes.yaml:3:3: error[RS215] storageclass/nfs",
        "driver: nfs",
        classes="storageClass:\n  name: nfs\n  driver: nfs\n",
    ),
    # RS216 — a claim names a volume that exists (templates' volumes included)
    bad(
        "RS216-claim-of-an-undefined-volume",
        "svc.yaml:9:9: error[RS216] service/prod/web",
        "name: web-dta",
        vols=WEB_DATA,
        svc=web_service("claim:\n  name: web-dta\n"),
    ),
    bad(
        "RS216-cross-namespace-claim-looks-in-the-named-namespace",
        "svc.yaml:8:15: error[RS216] service/prod/web",
        "name: web-data.shared.rune",
        vols=WEB_DATA,
        svc=web_service("claim: {name: web-data.shared.rune}\n"),
    ),
    bad(
        "RS216-template-ordinal-at-the-scale-is-not-generated",
        "svc.yaml:8:15: error[RS216] service/prod/web",
        "name: pgdata-postgres-2",
        postgres=POSTGRES,
        svc=web_service("claim: {name: pgdata-postgres-2}\n"),
    ),
    # RS217 — a snapshot's source volume exists in its namespace
    bad(
        "RS217-snapshot-of-an-undefined-volume",
        "snaps.yaml:4:12: error[RS217] snapshot/prod/s1",
        "volume: nope",
        snaps=snapshot("s1", "nope"),
    ),
    bad(
        "RS217-source-exists-only-in-another-namespace",
        "snaps.yaml:4:12: error[RS217] snapshot/staging/s1",
        "volume: web-data",
        vols=WEB_DATA,
        snaps=snapshot("s1", "web-data", namespace="staging"),
    ),
    # RS218 — a restore source exists
    bad(
        "RS218-restore-from-an-undefined-snapshot",
        "vols.yaml:8:5: error[RS218] volume/prod/restored",
        "snapshot: s1",
        vols=volume("restored", extra="restoreFrom:\n  snapshot: s1"),
    ),
    # RS219 — no two resources share an address
    bad(
        "RS219-same-volume-in-two-files-is-reported-on-the-second",
        "b.yaml:2:3: error[RS219] volume/prod/web-data",
        "name: web-data",
        a=WEB_DATA,
        b=WEB_DATA,
    ),
    bad(
        "RS219-same-class-twice-in-one-list",
        "classes.yaml:4:5: error[RS219] storageclass/fast",
        "name: fast",
        classes=y("""\
            storageClasses:
              - name: fast
                driver: local
              - name: fast
                driver: local-host
            """),
    ),
    bad(
        "RS219-same-service-twice",
        "svc.yaml:4:5: error[RS219] service/prod/web",
        "name: web",
        svc=y("""\
            services:
              - name: web
                namespace: prod
              - name: web
                namespace: prod
                image: nginx
            """),
    ),
    # RS220 — template-generated names do not collide with explicit volumes
    bad(
        "RS220-template-generates-an-explicit-volume",
        "postgres.yaml:6:7: error[RS220] service/prod/postgres",
        "name: pgdata",
        postgres=POSTGRES,
        vols=volume("pgdata-postgres-1"),
    ),
    # RS221 — a volume without storageClassName needs a default
    bad(
        "RS221-default-disabled-and-no-default-class",
        "vols.yaml:2:5: error[RS221] volume/prod/pgdata",
        "name: pgdata",
        runefile=NO_DEFAULT,
        vols="volumes:\n  - name: pgdata\n    namespace: prod\n    size: 1Gi\n"
        "    accessMode: ReadWriteOnce\n",
    ),
    bad(
        "RS221-template-without-class-and-no-default",
        "postgres.yaml:8:7: error[RS221] service/prod/postgres",
        "claimTemplate:",
        runefile=NO_DEFAULT,
        postgres=POSTGRES,
    ),
    # RS222 — shorthand secret reference on a cluster-scoped class (warning)
    bad(
        "RS222-shorthand-secret-on-a-class",
        "classes.yaml:6:5: warning[RS222] storageclass/do-nyc3",
        "apiToken: secret:do-api",
        classes=DO_CLASS.replace(".shared.rune", ""),
    ),
    # RS223 — In/NotIn need values, Exists/DoesNotExist take none
    bad(
        "RS223-in-without-values",
        "classes.yaml:8:11: error[RS223] storageclass/regional",
        "key: rune.io/zone",
        classes=y("""\
            storageClass:
              name: regional
              driver: do-volume
              parameters: {region: nyc3}
              allowedTopologies:
                - matchLabels: {rune.io/region: nyc3}
                - matchExpressions:
                    - key: rune.io/zone
                      operator: In
            """),
    ),
    bad(
        "RS223-exists-with-values",
        "classes.yaml:8:11: error[RS223] storageclass/regional",
        "{key: rune.io/region",
        classes=y("""\
            storageClass:
              name: regional
              driver: do-volume
              parameters: {region: nyc3}
              allowedTopologies:
                - matchExpressions:
                    - {key: rune.io/zone, operator: In, values: [nyc3a]}
                    - {key: rune.io/region, operator: Exists, values: [nyc3]}
            """),
    ),
    bad(
        "RS223-notin-with-an-empty-list",
        "classes.yaml:4:43: error[RS223] storageclass/regional",
        "{key: rune.io/zone",
        classes="storageClass:\n  name: regional\n  driver: local\n"
        "  allowedTopologies: [{matchExpressions: "
        "[{key: rune.io/zone, operator: NotIn, values: []}]}]\n",
    ),
    # RS224 — createIfMissing without allowCreateMissing (warning; see also the test below)
    bad(
        "RS224-create-if-missing-without-allow-create-missing",
        "vols.yaml:9:5: warning[RS224] volume/prod/media",
        'createIfMissing: "true"',
        runefile=ALLOW_SRV_RUNE,
        vols=volume(
            "media",
            cls="local-host",
            extra=('parameters:\n  hostPath: /srv/rune/media\n  createIfMissing: "true"'),
        ),
    ),
    # RS225 — generated names are DNS-1123 labels of at most 63 characters
    bad(
        "RS225-generated-name-of-64-characters",
        f"svc.yaml:5:7: error[RS225] service/prod/{'s' * 30}",
        "name: mmm",
        svc=f"service:\n  name: {'s' * 30}\n  namespace: prod\n  volumes:\n"
        f"    - name: {'m' * 31}\n      mountPath: /data\n"
        "      claimTemplate: {size: 1Gi, accessMode: ReadWriteOnce}\n",
    ),
    # RS227 — restore on the snapshot's driver
    bad(
        "RS227-do-volume-snapshot-restored-into-local",
        "restored.yaml:7:3: error[RS227] volume/prod/restored",
        "restoreFrom:",
        classes=DO_CLASS,
        vols=volume(cls="do-nyc3"),
        snaps=snapshot("s1", "pgdata"),
        restored=volume("restored", extra="restoreFrom: {snapshot: s1}"),
    ),
    # RS228 — a bare number is bytes (warning); RS229 — size greater than zero
    bad(
        "RS228-size-10-is-ten-bytes",
        "vols.yaml:5:3: warning[RS228] volume/prod/pgdata",
        "size: 10",
        vols=volume(size="10"),
    ),
    bad(
        "RS229-size-0",
        "vols.yaml:5:3: error[RS229] volume/prod/pgdata",
        "size: 0",
        vols=volume(size="0"),
    ),
    bad(
        "RS229-template-size-0Gi",
        "svc.yaml:8:23: error[RS229] service/prod/web",
        "size: 0Gi",
        svc=web_service("claimTemplate: {size: 0Gi, accessMode: ReadWriteOnce}\n"),
    ),
    # RS230 — secret values written in the source (warning; see also the test below)
    bad(
        "RS230-secret-with-data",
        "secrets.yaml:4:3: warning[RS230] secret/prod/db-password",
        "data:",
        secrets="secret:\n  name: db-password\n  namespace: prod\n  data:\n    password: x\n",
    ),
    # RS301 — the runefile's defaultStorageClass names a class
    bad(
        "RS301-yaml-runefile",
        "runefile.yaml:3:3: error[RS301] runefile",
        "defaultStorageClass: nope",
        runefile=runefile("hostPathAllowlist: [/srv/rune]", "defaultStorageClass: nope"),
    ),
    bad(
        "RS301-toml-runefile",
        "runefile.toml:5:1: error[RS301] runefile",
        'defaultStorageClass = "nope"',
        runefile_toml='[other]\nx = 1\n\n[storage]\ndefaultStorageClass = "nope"\n',
    ),
    bad(
        "RS301-also-leaves-a-classless-volume-without-a-class",
        "runefile.yaml:2:3: error[RS301] runefile",
        "defaultStorageClass: nope",
        also=("RS221",),
        runefile=runefile("defaultStorageClass: nope"),
        vols=volume(cls=""),
    ),
    # RS107 from the rules — the legacy apiTokenSecretRef is <namespace>/<name>
    bad(
        "RS107-legacy-api-token-ref-without-namespace-on-a-class",
        "classes.yaml:6:5: error[RS107] storageclass/do-nyc3",
        "apiTokenSecretRef: bad",
        classes=DO_CLASS.replace(
            "apiToken: secret:do-api-token.shared.rune/token", "apiTokenSecretRef: bad"
        ),
    ),
    bad(
        "RS107-legacy-api-token-ref-without-namespace-on-a-volume",
        "vols.yaml:8:5: error[RS107] volume/prod/pgdata",
        "apiTokenSecretRef: bad",
        classes=DO_CLASS,
        vols=volume(cls="do-nyc3", extra="parameters:\n  apiTokenSecretRef: bad"),
    ),
]


@pytest.mark.parametrize("case", REJECTED)
def test_violation_is_reported_once_at_the_field_it_is_about(tmp_path, case):
    check_rejected(tmp_path, case)


# --------------------------------------------------------------------------- accepted

ACCEPTED = [
    good("RS201-claim-only", vols=WEB_DATA, svc=web_service("claim: {name: web-data}\n")),
    good("RS201-claim-template-only", postgres=POSTGRES),
    good(
        "RS204-rwo-on-local-rox-on-local-host-rwo-on-do-volume",
        runefile=ALLOW_SRV_RUNE,
        classes=DO_CLASS,
        vols=volume(),
        do=volume("db", cls="do-nyc3"),
        media=MEDIA.replace("ReadWriteOnce", "ReadOnlyMany"),
    ),
    good(
        "RS207-rox-claim-on-local-host-serves-scale-3",
        runefile=ALLOW_SRV_RUNE,
        vols=MEDIA.replace("ReadWriteOnce", "ReadOnlyMany"),
        svc=web_service("readOnly: true\nclaim: {name: media}\n", scale=3),
    ),
    good(
        "RS207-rwo-claim-at-scale-1-of-a-generated-volume",
        postgres=POSTGRES,
        svc=web_service("claim: {name: pgdata-postgres-1}\n"),
    ),
    good(
        "RS207-rwo-claim-at-scale-0",
        vols=WEB_DATA,
        svc=web_service("claim: {name: web-data}\n", scale=0),
    ),
    good(
        "RS208-RS218-snapshot-and-restore-on-local",
        vols=WEB_DATA,
        snaps=snapshot("s1", "web-data"),
        restored=volume("restored", extra="restoreFrom: {snapshot: s1}"),
    ),
    good(
        "RS209-RS210-host-path-equal-to-the-allowed-root",
        runefile=ALLOW_SRV_RUNE,
        vols=volume("media", cls="local-host", extra="parameters: {hostPath: /srv/rune}"),
    ),
    good(
        "RS210-trailing-slashes-are-ignored",
        runefile=runefile("hostPathAllowlist: [/opt/x, /srv/rune/]"),
        vols=volume("media", cls="local-host", extra="parameters: {hostPath: /srv/rune/a/b/}"),
    ),
    good(
        "RS210-host-path-from-the-class",
        runefile=ALLOW_SRV_RUNE,
        vols=volume("shared", cls="shared-host"),
        classes="storageClass:\n  name: shared-host\n  driver: local-host\n"
        "  parameters: {hostPath: /srv/rune/shared}\n",
    ),
    good(
        "RS211-process-service-claims-local-host",
        runefile=ALLOW_SRV_RUNE,
        vols=MEDIA,
        svc=web_service("claim: {name: media}\n", runtime="  process: {}\n"),
    ),
    good(
        "RS211-container-service-claims-local",
        vols=WEB_DATA,
        svc=web_service("claim: {name: web-data}\n"),
    ),
    good(
        "RS212-delete-on-local-and-retain-overriding-a-local-host-delete-class",
        runefile=ALLOW_SRV_RUNE,
        vols=volume(extra="reclaimPolicy: delete"),
        scratch=volume("scratch", cls="host-scratch", extra="reclaimPolicy: retain"),
        classes="storageClass:\n  name: host-scratch\n  driver: local-host\n"
        "  reclaimPolicy: delete\n  parameters: {hostPath: /srv/rune/scratch}\n",
    ),
    good(
        "RS213-one-default-class",
        classes="storageClasses:\n  - {name: fast, driver: local, default: true}\n"
        "  - {name: slow, driver: local, default: false}\n",
    ),
    good(
        "RS214-RS215-classes-defined-and-built-in",
        classes=DO_CLASS,
        vols=volume(cls="do-nyc3"),
        more=volume("cache", cls="local"),
    ),
    good(
        "RS216-cross-namespace-claim",
        vols=WEB_DATA,
        svc=web_service("claim: {name: web-data.prod.rune}\n").replace("prod\n", "shop\n", 1),
    ),
    good(
        "RS217-snapshot-of-a-template-generated-volume",
        postgres=POSTGRES,
        snaps=snapshot("pgdata-2025-11-15", "pgdata-postgres-0"),
    ),
    good(
        "RS219-same-name-in-two-namespaces-and-two-kinds",
        a=WEB_DATA,
        b=WEB_DATA.replace("prod", "staging"),
        snaps=snapshot("web-data", "web-data"),
    ),
    good(
        "RS220-explicit-volume-beyond-the-scale",
        postgres=POSTGRES,
        vols=volume("pgdata-postgres-2"),
    ),
    good(
        "RS220-template-at-scale-0-generates-nothing",
        postgres=POSTGRES.replace("scale: 2", "scale: 0"),
        vols=volume("pgdata-postgres-0"),
    ),
    good(
        "RS221-default-disabled-but-a-class-is-default",
        runefile=NO_DEFAULT,
        vols=volume(cls=""),
        classes="storageClass:\n  name: fast\n  driver: local\n  default: true\n",
    ),
    good("RS221-without-runefile-the-default-is-local", vols=volume(cls=""), postgres=POSTGRES),
    good(
        "RS222-pinned-on-a-class-shorthand-on-a-volume",
        classes=DO_CLASS,
        vols=volume(cls="do-nyc3", extra="parameters: {apiToken: 'secret:my-token/token'}"),
    ),
    good(
        "RS107-legacy-api-token-ref-namespace-slash-name",
        classes=DO_CLASS.replace(
            "apiToken: secret:do-api-token.shared.rune/token",
            "apiTokenSecretRef: shared/do-api-token",
        ),
    ),
    good(
        "RS223-well-formed-expressions",
        classes=y("""\
        storageClass:
          name: regional
          driver: do-volume
          parameters: {region: nyc3}
          allowedTopologies:
            - matchLabels: {rune.io/region: nyc3}
            - matchExpressions:
                - {key: rune.io/zone, operator: In, values: [nyc3a, nyc3b]}
                - {key: rune.io/rack, operator: NotIn, values: [r1]}
                - {key: rune.io/region, operator: Exists}
                - {key: rune.io/edge, operator: DoesNotExist, values: []}
        """),
    ),
    good(
        "RS224-create-if-missing-with-allow-create-missing",
        runefile=runefile("hostPathAllowlist: [/srv/rune]", "allowCreateMissing: true"),
        vols=volume(
            "media",
            cls="local-host",
            extra='parameters: {hostPath: /srv/rune/m, createIfMissing: "true"}',
        ),
    ),
    good(
        "RS225-generated-name-of-exactly-63-characters",
        svc=f"service:\n  name: {'s' * 30}\n  namespace: prod\n  volumes:\n"
        f"    - name: {'m' * 30}\n      mountPath: /data\n"
        "      claimTemplate: {size: 1Gi, accessMode: ReadWriteOnce}\n",
    ),
    good(
        "RS227-restore-on-the-same-driver",
        classes=DO_CLASS,
        vols=volume(cls="do-nyc3"),
        snaps=snapshot("s1", "pgdata"),
        restored=volume("restored", cls="do-nyc3", extra="restoreFrom: {snapshot: s1}"),
    ),
    good(
        "RS228-RS229-sizes-with-units",
        a=volume("a", size="10Gi"),
        b=volume("b", size="500M"),
        c=volume("c", size="1.5Gi"),
    ),
    good(
        "RS230-dynamic-secret-without-values",
        secrets="secret:\n  name: db\n  namespace: prod\n  type: dynamic\n",
    ),
    good(
        "RS301-default-names-a-repository-class",
        runefile=runefile("defaultStorageClass: fast"),
        vols=volume(cls=""),
        classes="storageClass:\n  name: fast\n  driver: local\n",
    ),
]


@pytest.mark.parametrize("files", ACCEPTED)
def test_valid_source_has_no_diagnostics(tmp_path, files):
    result = validate_files(tmp_path, files)
    assert [str(d) for d in result.diagnostics] == []
    assert result.ok


MOUNT_CODES = {"RS202", "RS203", "RS205", "RS206"}  # test_mounts.py
NOT_PRODUCED = {"RS226"}  # see test_do_volume_class_parameter_problems_are_rejected


def test_every_rule_code_has_an_accepted_and_a_rejected_case():
    rule_codes = {c for c in CODES if "RS201" <= c <= "RS230"} | {"RS301"}
    wanted = rule_codes - MOUNT_CODES - NOT_PRODUCED
    rejected = {p.values[0].code for p in REJECTED}
    accepted = {word for p in ACCEPTED for word in p.id.split("-") if word.startswith("RS")}
    assert wanted - rejected == set()
    assert wanted - accepted == set()


# ------------------------------------------------------------------ readings of §3 and §4


def test_create_if_missing_without_allow_create_missing_is_only_a_warning(tmp_path):
    result = validate_files(
        tmp_path,
        src(
            runefile=ALLOW_SRV_RUNE,
            vols=volume(
                "media",
                cls="local-host",
                extra='parameters: {hostPath: /srv/rune/m, createIfMissing: "true"}',
            ),
        ),
    )
    assert [(d.code, d.resource, d.severity) for d in result.diagnostics] == [
        ("RS224", "volume/prod/media", WARNING)
    ]
    assert result.ok


def test_secret_values_in_the_source_are_only_a_warning(tmp_path):
    result = validate_files(
        tmp_path,
        src(
            secrets=y("""\
        secrets:
          - name: db-password
            namespace: prod
            data:
              - {key: password, value: hunter2}
          - name: api
            namespace: prod
            value: token
        """)
        ),
    )
    assert [(d.code, d.resource, d.severity) for d in result.diagnostics] == [
        ("RS230", "secret/prod/db-password", WARNING),
        ("RS230", "secret/prod/api", WARNING),
    ]
    assert result.ok


def test_size_0_fails_the_run_and_size_10_does_not(tmp_path):
    assert not validate_files(tmp_path / "zero", src(vols=volume(size="0"))).ok
    assert validate_files(tmp_path / "ten", src(vols=volume(size="10"))).ok


def test_class_named_local_replaces_the_builtin(tmp_path):
    files = src(
        runefile=ALLOW_SRV_RUNE,
        classes="storageClass:\n  name: local\n  driver: local-host\n"
        "  parameters: {hostPath: /srv/rune/shared}\n",
        # the built-in local (driver local) refuses ReadOnlyMany; local-host supports it
        vols=volume("assets", cls="local", mode="ReadOnlyMany"),
    )
    assert validate_files(tmp_path / "a", files).diagnostics == ()
    # and a snapshot is refused, though the built-in local supports snapshots
    files["snaps.yaml"] = snapshot("s1", "assets")
    result = validate_files(tmp_path / "b", files)
    assert [(d.code, d.resource) for d in result.diagnostics] == [("RS208", "snapshot/prod/s1")]


def test_repository_default_class_wins_over_the_runefile_default(tmp_path):
    files = src(
        runefile=runefile("defaultStorageClass: local", "hostPathAllowlist: [/srv/rune]"),
        classes="storageClass:\n  name: hostfs\n  driver: local-host\n  default: true\n"
        "  parameters: {hostPath: /srv/rune/shared}\n",
        vols=volume("assets", cls="", mode="ReadOnlyMany"),
    )
    assert validate_files(tmp_path / "marked", files).diagnostics == ()
    files["classes.yaml"] = files["classes.yaml"].replace("default: true", "default: false")
    result = validate_files(tmp_path / "unmarked", files)  # local now: no ReadOnlyMany
    assert [(d.code, str(d.location)) for d in result.diagnostics] == [("RS204", "vols.yaml:5:3")]


def test_template_at_scale_0_generates_no_volume_to_reference(tmp_path):
    result = validate_files(
        tmp_path,
        src(
            postgres=POSTGRES.replace("scale: 2", "scale: 0"),
            snaps=snapshot("s1", "pgdata-postgres-0"),
        ),
    )
    assert [(d.code, d.resource) for d in result.diagnostics] == [("RS217", "snapshot/prod/s1")]


def test_rules_run_on_valid_resources_beside_schema_errors(tmp_path):
    result = validate_files(
        tmp_path,
        src(
            a=y("""\
            volumes:
              - name: broken
                namespace: prod
                size: 10gi
                accessMode: ReadWriteOnce
              - name: wide
                namespace: prod
                size: 1Gi
                accessMode: ReadWriteMany
            """),
            b=y("""\
            service:
              name: web
              namespace: prod
              volumes:
                - name: data
                  mountPath: data
                  claim: {name: wide}
            ---
            service:
              name: api
              namespace: prod
              volumes:
                - name: data
                  mountPath: /proc/self
                  claim: {name: nope}
            """),
        ),
    )
    assert [(str(d.location), d.code, d.resource) for d in result.diagnostics] == [
        ("a.yaml:4:5", "RS106", "volume/prod/broken"),
        ("a.yaml:9:5", "RS204", "volume/prod/wide"),
        ("b.yaml:6:7", "RS202", "service/prod/web"),
        ("b.yaml:14:7", "RS203", "service/prod/api"),
        ("b.yaml:15:15", "RS216", "service/prod/api"),
    ]


# ----------------------------------------------------------------------------- bugs


def test_overlong_secret_name_in_a_class_parameter_is_a_diagnostic_not_a_crash(tmp_path):
    files = src(classes=DO_CLASS.replace("do-api-token.shared.rune", "a" * 64))
    try:
        result = validate_files(tmp_path, files)
    except Exception as exc:
        raise AssertionError(f"validate_directory raised {exc!r}") from exc
    d = only(result, "RS107")
    assert (d.resource, str(d.location)) == ("storageclass/do-nyc3", "classes.yaml:6:5")


def test_overlong_secret_name_in_a_volume_parameter_is_rejected(tmp_path):
    files = src(vols=volume(extra=f"parameters:\n  token: secret:{'a' * 64}/token"))
    d = only(validate_files(tmp_path, files), "RS107")
    assert (d.resource, str(d.location)) == ("volume/prod/pgdata", "vols.yaml:8:5")


def test_claim_templates_generating_the_same_volume_are_rejected(tmp_path):
    result = validate_files(
        tmp_path,
        src(
            svc=y("""\
        services:
          - name: b-c
            namespace: prod
            volumes:
              - {name: a, mountPath: /data, claimTemplate: {size: 1Gi, accessMode: ReadWriteOnce}}
          - name: c
            namespace: prod
            volumes:
              - {name: a-b, mountPath: /data, claimTemplate: {size: 1Gi, accessMode: ReadWriteOnce}}
        """)
        ),
    )
    assert {d.code for d in result.diagnostics if d.is_error} & {"RS219", "RS220"}


def test_duplicate_mount_names_in_one_service_are_rejected(tmp_path):
    result = validate_files(
        tmp_path,
        src(
            svc=y("""\
        service:
          name: web
          namespace: prod
          volumes:
            - {name: data, mountPath: /a, claimTemplate: {size: 1Gi, accessMode: ReadWriteOnce}}
            - {name: data, mountPath: /b, claimTemplate: {size: 1Gi, accessMode: ReadWriteOnce}}
        """)
        ),
    )
    assert [str(d.location) for d in result.diagnostics if d.is_error] == ["svc.yaml:6:8"]


def test_legacy_api_token_ref_in_a_claim_template_is_checked(tmp_path):
    files = src(
        classes=DO_CLASS,
        svc=web_service(
            "claimTemplate:\n  storageClassName: do-nyc3\n  size: 1Gi\n"
            "  accessMode: ReadWriteOnce\n  parameters: {apiTokenSecretRef: bad}\n"
        ),
    )
    d = only(validate_files(tmp_path, files), "RS107")
    assert (d.resource, str(d.location)) == ("service/prod/web", "svc.yaml:12:22")


@pytest.mark.parametrize(
    "parameters",
    ["{fsType: ext4}", "{region: nyc3, fsType: btrfs}"],
    ids=["without-region", "fstype-btrfs"],
)
def test_do_volume_class_parameter_problems_are_rejected(tmp_path, parameters):
    files = src(
        classes=f"storageClass:\n  name: do\n  driver: do-volume\n  parameters: {parameters}\n"
    )
    d = only(validate_files(tmp_path, files), "RS226")
    assert (d.resource, d.location.file, d.location.line) == ("storageclass/do", "classes.yaml", 4)


@pytest.mark.parametrize(
    ("allowed", "host_path"),
    [("//srv/rune", "/srv/rune/a"), ("/srv/rune", "//srv/rune/a")],
    ids=["double-slash-allowlist", "double-slash-host-path"],
)
def test_double_leading_slash_is_compared_by_components(tmp_path, allowed, host_path):
    files = src(
        runefile=runefile(f'hostPathAllowlist: ["{allowed}"]'),
        vols=volume("media", cls="local-host", extra=f'parameters: {{hostPath: "{host_path}"}}'),
    )
    assert [str(d) for d in validate_files(tmp_path, files).diagnostics] == []


# ------------------------------------------------------------------ RS233: credentials written out

TOKEN = "dop_v1_0123456789abcdef"


def test_a_literal_api_token_on_a_class_is_a_warning_at_its_key_never_showing_it(tmp_path):
    classes = DO_CLASS.replace("secret:do-api-token.shared.rune/token", TOKEN)
    result = validate_files(tmp_path, src(classes=classes))
    d = only(result, "RS233")
    assert d.severity is WARNING
    assert (d.resource, str(d.location)) == ("storageclass/do-nyc3", "classes.yaml:6:5")
    assert "secret:<name>.<namespace>.rune/" in d.message
    assert TOKEN not in str(d)
    assert result.ok


def test_a_literal_api_token_on_a_volume_of_a_do_volume_class_is_a_warning(tmp_path):
    files = src(
        classes=DO_CLASS,
        vols=volume("web", cls="do-nyc3", extra=f"parameters: {{apiToken: {TOKEN}}}"),
    )
    d = only(validate_files(tmp_path, files), "RS233")
    assert (d.resource, str(d.location)) == ("volume/prod/web", "vols.yaml:7:16")
    assert TOKEN not in str(d)


def test_a_secret_reference_or_a_driver_without_secret_parameters_gets_no_rs233(tmp_path):
    files = src(
        classes=DO_CLASS,
        vols=volume("web", extra="parameters: {apiToken: plain}"),  # local: no such rule
    )
    assert "RS233" not in {d.code for d in validate_files(tmp_path, files).diagnostics}


def test_every_parameter_a_driver_declares_secret_is_checked(tmp_path):
    rules = {
        "do-volume": dataclasses.replace(
            do_volume.PARAMETERS, secret=frozenset({"apiToken", "apiEndpoint"})
        )
    }
    classes = DO_CLASS.replace("region: nyc3", "region: nyc3\n    apiEndpoint: https://x")
    (tmp_path / "classes.yaml").write_text(classes, encoding="utf-8")
    result = validate_directory(tmp_path, drivers=DRIVERS, parameter_rules=rules, cwd=tmp_path)
    found = [d for d in result.diagnostics if d.code == "RS233"]
    assert [str(d.location) for d in found] == ["classes.yaml:6:5"]
    assert "'apiEndpoint'" in found[0].message
