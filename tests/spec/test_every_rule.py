"""One source with one violation of every rule, validated in one run (DESIGN §3: "all
problems reported in one run"), and the code catalogue against the codes the code emits.

``tests/fixtures/every_rule/`` holds the source. The expected list is written out in the
order the validator sorts (file, line, column), so a regression in any single position
shows up here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rune_sync.diagnostics import Severity
from rune_sync.spec.codes import CODES
from rune_sync.spec.validate import validate_directory
from tests.spec.test_rules import DRIVERS, PARAMETERS, src, validate_files

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "every_rule"

EXPECTED = [
    ("classes.yaml", 10, 5, "RS213"),  # second default: true
    ("classes.yaml", 11, 5, "RS219"),  # storageclass/fast again
    ("classes.yaml", 13, 5, "RS219"),  # storageclass/slow again
    ("classes.yaml", 16, 5, "RS215"),  # driver nfs
    ("classes.yaml", 21, 7, "RS222"),  # apiToken: secret:do-api-token/token
    ("classes.yaml", 26, 7, "RS107"),  # apiTokenSecretRef: bad
    ("classes.yaml", 32, 13, "RS223"),  # operator In without values
    ("classes.yaml", 39, 32, "RS226"),  # do-volume fsType: btrfs
    ("classes.yaml", 39, 47, "RS233"),  # apiToken written out
    ("runefile.yaml", 0, 0, "RS303"),  # runefile.toml beside it (no line: the whole file)
    ("runefile.yaml", 4, 3, "RS301"),  # defaultStorageClass: nope
    ("schema-errors.yaml", 6, 5, "RS101"),  # sise
    ("schema-errors.yaml", 7, 5, "RS102"),  # no accessMode
    ("schema-errors.yaml", 12, 14, "RS103"),  # tier: 1
    ("schema-errors.yaml", 15, 5, "RS104"),  # readwriteonce
    ("schema-errors.yaml", 16, 5, "RS105"),  # Bad_Name
    ("schema-errors.yaml", 20, 5, "RS106"),  # 10gi
    ("schema-errors.yaml", 25, 18, "RS107"),  # "secret:no-key"
    ("schema-errors.yaml", 28, 5, "RS108"),  # scale: -1
    ("schema-errors.yaml", 32, 9, "RS202"),  # mountPath: data
    ("secrets.yaml", 4, 3, "RS230"),  # data:
    ("services.yaml", 5, 9, "RS201"),  # mount with neither claim nor claimTemplate
    ("services.yaml", 13, 9, "RS207"),  # RWO claim at scale 3
    ("services.yaml", 15, 9, "RS203"),  # mountPath: /etc
    ("services.yaml", 18, 9, "RS205"),  # /blocks/ again
    ("services.yaml", 28, 9, "RS206"),  # secret mount /data/creds inside /data
    ("services.yaml", 34, 9, "RS211"),  # process runtime, local template
    ("services.yaml", 39, 17, "RS216"),  # claim nope
    ("services.yaml", 43, 9, "RS220"),  # pgdata-postgres-0 is also a Volume
    ("services.yaml", 49, 9, "RS225"),  # 64-character generated name
    ("services.yaml", 56, 10, "RS231"),  # mount name data twice in one service
    ("snapshots.yaml", 4, 14, "RS208"),  # snapshot of a local-host volume
    ("snapshots.yaml", 7, 14, "RS217"),  # source nope
    ("volumes.yaml", 6, 5, "RS204"),  # ReadWriteMany on local
    ("volumes.yaml", 12, 18, "RS209"),  # relative hostPath
    ("volumes.yaml", 18, 18, "RS210"),  # /srv/rune2 is not below /srv/rune
    ("volumes.yaml", 21, 5, "RS212"),  # delete inherited from a local-host class
    ("volumes.yaml", 26, 5, "RS214"),  # class fsat
    ("volumes.yaml", 29, 5, "RS221"),  # no class, no default
    ("volumes.yaml", 40, 7, "RS224"),  # createIfMissing without allowCreateMissing
    ("volumes.yaml", 44, 5, "RS228"),  # size: 10
    ("volumes.yaml", 49, 5, "RS229"),  # size: 0
    ("volumes.yaml", 56, 19, "RS218"),  # restoreFrom nope
    ("volumes.yaml", 67, 5, "RS227"),  # do-volume snapshot restored into local
    ("volumes.yaml", 84, 5, "RS232"),  # team/a-web and team-a/web: one DigitalOcean name
]

WARNINGS = {"RS222", "RS224", "RS228", "RS230", "RS233", "RS303"}

NOT_IN_THIS_RUN = {
    "RS302": "an unreadable runefile; RS301 needs the same runefile readable "
    "(see test_unreadable_runefile_is_rs302)",
}


def found(result) -> list[tuple[str, int, int, str]]:
    return [
        (d.location.file, d.location.line, d.location.column, d.code) for d in result.diagnostics
    ]


@pytest.fixture(scope="module")
def result():
    return validate_directory(FIXTURE, drivers=DRIVERS, parameter_rules=PARAMETERS, cwd=FIXTURE)


def test_every_rule_violation_is_reported_in_one_run_at_its_place(result):
    assert sorted(EXPECTED) == EXPECTED  # written in the validator's order
    assert found(result) == EXPECTED


def test_only_the_warning_codes_are_warnings_and_the_run_fails(result):
    assert {d.code for d in result.diagnostics if d.severity is Severity.WARNING} == WARNINGS
    assert all(d.is_error for d in result.diagnostics if d.code not in WARNINGS)
    assert not result.ok


def test_every_rule_and_runefile_code_is_triggered(result):
    wanted = {code for code in CODES if code.startswith(("RS2", "RS3"))}
    got = {d.code for d in result.diagnostics}
    assert wanted - got == set(NOT_IN_THIS_RUN)
    assert set(NOT_IN_THIS_RUN) <= set(CODES)


@pytest.mark.parametrize(
    ("text", "line"),
    [("storage: [\n", 2), ("storage: {}\n---\nstorage: {}\n", 3)],
    ids=["broken-yaml", "two-documents"],
)
def test_unreadable_runefile_is_rs302(tmp_path, text, line):
    result = validate_files(tmp_path, src(runefile=text))
    assert [(d.code, d.location.file, d.location.line) for d in result.diagnostics] == [
        ("RS302", "runefile.yaml", line)
    ]


# ------------------------------------------------------------------------ the catalogue

CODE_LITERAL = re.compile(r"""["'](RS\d{3})["']""")


def emitted_codes() -> set[str]:
    """Every code literal in the package's source and every x-rune-code in the schemas."""
    codes: set[str] = set()
    for path in (REPO / "rune_sync").rglob("*.py"):
        if path.name != "codes.py":
            codes |= set(CODE_LITERAL.findall(path.read_text(encoding="utf-8")))

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("x-rune-code"), str):
                codes.add(node["x-rune-code"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in (REPO / "schemas").glob("*.schema.json"):
        walk(json.loads(path.read_text(encoding="utf-8")))
    return codes


def test_every_emitted_code_is_catalogued_with_an_explanation():
    codes = emitted_codes()
    assert {"RS001", "RS101", "RS204", "RS301"} <= codes  # the scan sees the package
    missing = sorted(c for c in codes if c not in CODES)
    assert missing == []
    for code in codes:
        entry = CODES[code]
        assert entry.code == code
        assert entry.title.strip() and len(entry.explanation.strip()) > 20, code
