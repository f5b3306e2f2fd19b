"""Every example in ``examples/`` validates and plans; the runnable ones apply.

Example sources are discovered, not listed: a directory below ``examples/`` that holds a
runefile is a source; a top-level example folder with resource files and no runefile is
one source. A folder with no resource files (a workflow, systemd units) is not a source:
it must instead be named by another test module that checks it the way it is used.
Secret references an example makes get a value that the fake DigitalOcean API
(``do_api``) accepts, and ``DIGITALOCEAN_API_URL`` points at it, so nothing leaves
127.0.0.1.

Beyond that: the README's quick start runs as written (validate, apply, a second apply
that changes nothing) in a temporary copy, DigitalOcean applies against the fake API, and
host-paths applies with its directories moved below a temporary root.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from tests.conftest import REPO, run_cli

EXAMPLES = REPO / "examples"
RUNEFILES = ("runefile.yaml", "runefile.yml", "runefile.toml")
KINDS = {
    "storageClass",
    "storageClasses",
    "volume",
    "volumes",
    "snapshot",
    "snapshots",
    "service",
    "services",
    "secret",
    "secrets",
}
REFERENCE = re.compile(r"secret:([a-z0-9-]+)\.([a-z0-9-]+)\.rune/([A-Za-z0-9._-]+)")


def _is_resource_file(path: Path) -> bool:
    if path.suffix not in {".yaml", ".yml"} or path.name in RUNEFILES:
        return False
    try:
        documents = list(YAML(typ="safe").load_all(path.read_text(encoding="utf-8")))
    except YAMLError:
        return True  # a broken resource file is still one; validate will say so
    return any(isinstance(d, dict) and set(d) & KINDS for d in documents)


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def example_sources() -> list[Path]:
    """Directories holding a runefile, plus top-level folders with resources and none."""
    sources = sorted(
        p.parent for name in RUNEFILES for p in EXAMPLES.rglob(name) if _visible(p, EXAMPLES)
    )
    for folder in sorted(p for p in EXAMPLES.iterdir() if p.is_dir()):
        has_runefile = any(s.is_relative_to(folder) for s in sources)
        if not has_runefile and any(_is_resource_file(f) for f in folder.rglob("*.y*ml")):
            sources.append(folder)
    return sources


def folders_without_resources() -> list[Path]:
    return [
        folder
        for folder in sorted(p for p in EXAMPLES.iterdir() if p.is_dir())
        if not any(s.is_relative_to(folder) for s in example_sources())
    ]


def _id(path: Path) -> str:
    return str(path.relative_to(EXAMPLES))


def _secret_env(source: Path, value: str) -> dict[str, str]:
    """A value for every pinned secret reference of the source (DESIGN §9 naming)."""
    env = {}
    for path in source.rglob("*.y*ml"):
        for name, namespace, key in REFERENCE.findall(path.read_text(encoding="utf-8")):
            parts = (namespace, name, key)
            variable = "RUNE_SECRET_" + "_".join(re.sub(r"[^A-Za-z0-9]", "_", p) for p in parts)
            env[variable.upper()] = value
    return env


def test_the_known_examples_are_discovered():
    found = {_id(s) for s in example_sources()}
    assert {"quickstart", "host-paths", "digitalocean"} <= found
    assert "github-actions" in {_id(f) for f in folders_without_resources()}


@pytest.mark.parametrize("folder", folders_without_resources(), ids=_id)
def test_an_example_without_resources_is_checked_by_a_test_of_its_own(folder):
    """Not a source, so not planned here: some other test module must check it."""
    spellings = (f'"examples" / "{folder.name}"', f"examples/{folder.name}")
    this = Path(__file__).resolve()
    naming = [
        path
        for path in (REPO / "tests").rglob("test_*.py")
        if path.resolve() != this and any(s in path.read_text("utf-8") for s in spellings)
    ]
    assert naming, (
        f"examples/{folder.name} has no resource files, so it is not planned here; "
        "give it a test that refers to it as examples/" + folder.name
    )


@pytest.mark.parametrize("source", example_sources(), ids=_id)
def test_example_validates_and_plans(source, tmp_path, do_api):
    env = {"DIGITALOCEAN_API_URL": do_api.url, **_secret_env(source, do_api.token)}
    checked = run_cli("validate", str(source), env=env, cwd=tmp_path)
    assert checked.code == 0, checked.stdout + checked.stderr
    assert "error[" not in checked.stdout
    planned = run_cli(
        "plan",
        str(source),
        "--state",
        str(tmp_path / "state.db"),
        "--detailed-exitcode",
        env=env,
        cwd=tmp_path,
    )
    assert planned.code == 2, planned.stdout + planned.stderr  # a fresh state: all creates
    assert "No data will be destroyed." in planned.stdout
    assert not (tmp_path / "state.db").exists()  # plan never creates the state


# --- the README's quick start, as written ----------------------------------------------


def _readme_quick_start() -> list[list[str]]:
    """The rune-sync commands of the README's first shell block, as argument lists."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert block is not None
    commands = [part.strip() for part in block[1].split("&&")]
    return [c.split()[1:] for c in commands if c.startswith(".venv/bin/rune-sync ")]


def test_the_readme_quick_start_applies_and_a_second_apply_changes_nothing(tmp_path):
    commands = _readme_quick_start()
    assert [c[0] for c in commands] == ["validate", "apply"]
    work = tmp_path / "checkout"
    shutil.copytree(EXAMPLES / "quickstart", work / "examples" / "quickstart")
    runefile = work / "examples" / "quickstart" / "runefile.yaml"
    volumes = tmp_path / "volumes"
    runefile.write_text(
        runefile.read_text(encoding="utf-8").replace(
            "/tmp/rune-sync-quickstart/volumes", str(volumes)
        ),
        encoding="utf-8",
    )
    validated = run_cli(*commands[0], cwd=work)
    assert validated.code == 0 and validated.stderr.startswith("No problems found")
    applied = run_cli(*commands[1], cwd=work)
    assert applied.code == 0, applied.stderr
    assert "Apply complete: 7 created" in applied.stdout
    assert (work / ".rune-sync" / "state.db").is_file()
    assert (volumes / "prod" / "web-data").is_dir()
    again = run_cli(*commands[1], cwd=work)
    assert again.code == 0
    assert "No changes. Nothing to apply." in again.stdout


# --- DigitalOcean against the fake API ---------------------------------------------------


def test_digitalocean_example_applies_against_the_fake_api_then_plans_no_changes(tmp_path, do_api):
    source = EXAMPLES / "digitalocean"
    env = {"DIGITALOCEAN_API_URL": do_api.url, **_secret_env(source, do_api.token)}
    assert list(_secret_env(source, "x")) == ["RUNE_SECRET_SHARED_DO_API_TOKEN_TOKEN"]
    state = str(tmp_path / "state.db")
    applied = run_cli("apply", str(source), "--state", state, "--auto-approve", env=env)
    assert applied.code == 0, applied.stderr
    names = sorted(v["name"] for v in do_api.volumes)
    assert names == ["rune-ci-build-cache", "rune-prod-pgdata"]
    assert [s["name"] for s in do_api.snapshots] == ["rune-prod-pgdata-before-upgrade"]
    again = run_cli("plan", str(source), "--state", state, "--detailed-exitcode", env=env)
    assert again.code == 0, again.stdout + again.stderr
    assert do_api.token not in applied.stdout + applied.stderr + again.stdout + again.stderr


# --- host-paths with its directories below a temporary root -------------------------------


def test_host_paths_example_applies_with_its_directories_moved_to_tmp(tmp_path):
    work = tmp_path / "host-paths"
    shutil.copytree(EXAMPLES / "host-paths", work)
    host = tmp_path / "host"
    for path in work.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        text = text.replace("/srv/rune", f"{host}/srv/rune")
        text = text.replace("/mnt/shared/rune", f"{host}/mnt/shared/rune")
        path.write_text(text, encoding="utf-8")
    (host / "mnt" / "shared" / "rune" / "assets").mkdir(parents=True)  # the operator's
    (host / "mnt" / "shared" / "rune" / "assets" / "logo.svg").write_text("<svg/>", "utf-8")
    state = str(tmp_path / "state.db")
    applied = run_cli("apply", str(work), "--state", state, "--auto-approve")
    assert applied.code == 0, applied.stderr
    assert (host / "srv" / "rune" / "media").is_dir()  # createIfMissing + allowCreateMissing
    assert (host / "mnt" / "shared" / "rune" / "assets" / "logo.svg").is_file()
    listed = run_cli("state", "list", "--state", state)
    assert "volume/media/assets" in listed.stdout and "Bound" in listed.stdout
