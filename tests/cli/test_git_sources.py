"""``plan``, ``apply``, ``show`` and ``validate`` on git sources, through the real CLI:
repositories made here, served over file://, git:// (``git daemon``) and http://
(``git http-backend``); provenance in plans, saved plans and state; the cache; every bad
input ends in one message and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests import gitserve
from tests.conftest import REPO, Result, run_cli

RUNEFILE = "storage:\n  localVolumeRoot: {root}\n"
VOLUME = "volume:\n  name: {name}\n  namespace: prod\n  size: 1Gi\n  accessMode: ReadWriteOnce\n"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"RUNE_SYNC_CACHE_DIR": str(tmp_path / "cache"), "RUNE_SYNC_STATE": ""}


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The working directory of the commands (the default state lands here)."""
    path = tmp_path / "cwd"
    path.mkdir()
    return path


def _infra(tmp_path: Path, *names: str) -> dict[str, str | None]:
    files: dict[str, str | None] = {
        "infra/runefile.yaml": RUNEFILE.format(root=tmp_path / "volumes"),
        "README.md": "not a spec\n",
    }
    for name in names:
        files[f"infra/{name}.yaml"] = VOLUME.format(name=name)
    return files


def _run(work: Path, env: dict[str, str], *args: str) -> Result:
    result = run_cli(*args, cwd=work, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _error(result: Result) -> str:
    """The one error message of a failed run."""
    assert result.code == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_plan_file_url_with_ref_and_path_shows_the_commit(repo, tmp_path, work, env):
    sha = repo.commit(_infra(tmp_path, "web", "db"), "Add web and db volumes")
    repo.push()
    out = _run(work, env, "plan", repo.url, "--ref", "main", "--path", "infra/")
    assert out.code == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"Source: {repo.url} (ref main, path infra)"
    assert lines[1] == f"Commit: {sha}"
    assert lines[2] == "Author: Alice Example <alice@example.com>"
    assert lines[3].startswith("Date:   2023-11-14T22:")
    assert lines[4].strip() == "Add web and db volumes"
    assert "+ volume/prod/web" in out.stdout and "+ volume/prod/db" in out.stdout
    assert "Plan: 2 to create" in out.stdout

    markdown = _run(work, env, "plan", repo.url, "--path", "infra", "--format", "markdown")
    assert f"**Commit:** `{sha}` — Add web and db volumes" in markdown.stdout
    document = json.loads(
        _run(work, env, "plan", repo.url, "--path", "infra", "--format", "json").stdout
    )
    schema = json.loads((REPO / "schemas" / "plan.schema.json").read_text())
    assert not list(Draft202012Validator(schema).iter_errors(document))
    assert document["source"] == {
        "kind": "git",
        "url": repo.url,
        "commit": sha,
        "author": "Alice Example <alice@example.com>",
        "date": document["source"]["date"],
        "subject": "Add web and db volumes",
        "ref": None,
        "path": "infra",
        "digest": document["inputDigest"],
    }


def test_plan_over_git_daemon_with_tag_and_sha(repo, tmp_path, work, env):
    first = repo.commit(_infra(tmp_path, "web"), "first")
    repo.push()
    repo.tag("v1")
    second = repo.commit(_infra(tmp_path, "web", "db"), "second")
    repo.push()
    with gitserve.git_daemon(repo.bare.parent) as base:
        url = base + "repo.git"
        by_branch = _run(work, env, "plan", url, "--ref", "main", "--path", "infra")
        by_tag = _run(work, env, "plan", url, "--ref", "v1", "--path", "infra")
        by_sha = _run(work, env, "plan", url, "--ref", first[:12], "--path", "infra")
    assert f"Commit: {second}" in by_branch.stdout and "Plan: 2 to create" in by_branch.stdout
    assert f"Commit: {first}" in by_tag.stdout and "Plan: 1 to create" in by_tag.stdout
    assert f"Commit: {first}" in by_sha.stdout
    assert f"Source: {url} (ref v1, path infra)" in by_tag.stdout


def test_saved_plan_apply_and_state_keep_the_commit(repo, tmp_path, work, env):
    sha = repo.commit(_infra(tmp_path, "web"), "Add web")
    repo.push()
    saved = _run(
        work, env, "plan", repo.url, "--ref", "main", "--path", "infra", "--out", "plan.json"
    )
    assert saved.code == 0, saved.stderr
    source = json.loads((work / "plan.json").read_text())["source"]
    assert (source["commit"], source["ref"], source["path"]) == (sha, "main", "infra")
    shown = _run(work, env, "show", "plan.json")
    assert shown.code == 0 and f"Commit: {sha}" in shown.stdout
    applied = _run(work, env, "apply", "plan.json", "--auto-approve")
    assert applied.code == 0, applied.stderr
    assert (work / ".rune-sync" / "state.db").is_file()
    state = json.loads(_run(work, env, "state", "pull").stdout)
    assert state["source"]["kind"] == "git"
    assert state["source"]["commit"] == sha and state["source"]["url"] == repo.url
    assert not list((tmp_path / "cache").rglob("state.db"))


def test_saved_plan_is_refused_once_the_ref_moved_unless_pinned(repo, tmp_path, work, env):
    planned = repo.commit(_infra(tmp_path, "web"), "web")
    repo.push()
    assert (
        _run(
            work, env, "plan", repo.url, "--path", "infra", "--ref", "main", "--out", "plan.json"
        ).code
        == 0
    )
    moved = repo.commit(_infra(tmp_path, "web", "db"), "db")
    repo.push()
    stale = _run(work, env, "apply", "plan.json", "--auto-approve")
    assert stale.code == 4  # a stale plan: nothing changed, make a new plan
    message = stale.stderr
    assert planned in message and moved in message and f"--ref {planned}" in message
    pinned = _run(work, env, "apply", "plan.json", "--auto-approve", "--ref", planned)
    assert pinned.code == 0, pinned.stderr
    state = json.loads(_run(work, env, "state", "pull").stdout)
    assert state["source"]["commit"] == planned


def test_rollback_after_force_push_is_refused_unless_allowed(repo, tmp_path, work, env):
    base = repo.commit(_infra(tmp_path, "web"), "base")
    applied = repo.commit(_infra(tmp_path, "web", "db"), "applied")
    repo.push()
    args = ("--path", "infra", "--auto-approve")
    assert _run(work, env, "apply", repo.url, *args).code == 0
    again = _run(work, env, "plan", repo.url, "--path", "infra")
    assert again.code == 0 and "No changes" in again.stdout  # the same commit is fine
    repo.reset(base)
    rewritten = repo.commit(_infra(tmp_path, "web", "db"), "rewritten")
    repo.push(force=True)
    refused = _run(work, env, "plan", repo.url, "--path", "infra")
    message = _error(refused)
    assert applied in message and rewritten in message and "--allow-rollback" in message
    assert refused.stdout == ""
    allowed = _run(work, env, "apply", repo.url, *args, "--allow-rollback")
    assert allowed.code == 0, allowed.stderr
    state = json.loads(_run(work, env, "state", "pull").stdout)
    assert state["source"]["commit"] == rewritten  # recorded even though nothing changed


def test_second_plan_reuses_the_clone(repo, tmp_path, work, env):
    repo.commit(_infra(tmp_path, "web"))
    repo.push()
    assert _run(work, env, "plan", repo.url, "--path", "infra").code == 0
    (entry,) = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    before = {p: p.stat().st_ino for p in (entry / "git").rglob("*")}
    assert _run(work, env, "plan", repo.url, "--path", "infra").code == 0
    after = {p: p.stat().st_ino for p in (entry / "git").rglob("*")}
    assert after == before  # nothing fetched, nothing cloned


def test_damaged_cache_is_cloned_again_with_a_note(repo, tmp_path, work, env):
    repo.commit(_infra(tmp_path, "web"))
    repo.push()
    assert _run(work, env, "plan", repo.url, "--path", "infra").code == 0
    (entry,) = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]
    (entry / "git" / "HEAD").write_text("garbage\n")
    result = _run(work, env, "plan", repo.url, "--path", "infra")
    assert result.code == 0, result.stderr
    assert "Note: the git cache at" in result.stderr and "cloned again" in result.stderr
    assert "Plan: 1 to create" in result.stdout


def test_validate_names_files_relative_to_the_source_root(repo, tmp_path, work, env):
    files = _infra(tmp_path, "web")
    files["infra/broken.yaml"] = "volume:\n  name: Bad_Name\n  size: 1Gi\n"
    repo.commit(files)
    repo.push()
    result = _run(work, env, "validate", repo.url, "--ref", "main", "--path", "infra")
    assert result.code == 1
    assert result.stdout.startswith("broken.yaml:")
    assert str(tmp_path / "cache") not in result.stdout + result.stderr
    assert "Source: " in result.stderr


def test_credentials_stay_out_of_output_plans_state_and_cache(repo, tmp_path, work, env):
    password = "canary-pa55word"
    sha = repo.commit(_infra(tmp_path, "web"))
    repo.push()
    with gitserve.git_http(repo.bare.parent, user="bob", password=password) as base:
        url = base.replace("http://", f"http://bob:{password}@") + "repo.git"
        planned = _run(
            work, env, "plan", url, "--path", "infra", "--out", "plan.json", "--format", "json"
        )
        applied = _run(work, env, "apply", url, "--path", "infra", "--auto-approve")
        wrong = _run(work, env, "plan", url.replace(password, "x" + password), "--path", "infra")
    assert planned.code == 0 and applied.code == 0, planned.stderr + applied.stderr
    assert json.loads(planned.stdout)["source"]["commit"] == sha
    assert _error(wrong)
    texts = [planned.stdout, planned.stderr, applied.stdout, applied.stderr, wrong.stderr]
    assert not any(password in text for text in texts)
    for path in [*work.rglob("*"), *(tmp_path / "cache").rglob("*")]:
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("environment", ["staging", "production"])
def test_the_gitops_example_plans_each_environment(repo, tmp_path, work, env, environment):
    example = REPO / "examples" / "gitops-repo"
    files: dict[str, str | None] = {
        str(path.relative_to(example)): path.read_text()
        for path in example.rglob("*")
        if path.is_file()
    }
    sha = repo.commit(files, "Storage for staging and production")
    repo.push()
    path = f"environments/{environment}"
    result = _run(work, env, "plan", repo.url, "--ref", "main", "--path", path, "--refresh=false")
    assert result.code == 0, result.stderr
    assert f"Commit: {sha}" in result.stdout and "No data will be destroyed." in result.stdout
    assert "volume/data/pgdata-postgres-0" in result.stdout


# ------------------------------------------------------------------ bad input


def test_unreachable_remote(work, env):
    url = f"git://127.0.0.1:{gitserve.free_port()}/repo.git"
    assert "cannot read the git repository" in _error(_run(work, env, "plan", url))


def test_a_remote_gone_after_apply_is_an_error_not_an_empty_source(repo, tmp_path, work, env):
    repo.commit(_infra(tmp_path, "web", "db"))
    repo.push()
    with gitserve.git_daemon(repo.bare.parent) as base:
        url = base + "repo.git"
        assert _run(work, env, "apply", url, "--path", "infra", "--auto-approve").code == 0
    result = _run(work, env, "plan", url, "--path", "infra", "--allow-mass-delete")
    assert "cannot read the git repository" in _error(result)
    assert result.stdout == ""  # no plan at all, certainly not one that forgets everything


def test_unknown_ref(repo, tmp_path, work, env):
    repo.commit(_infra(tmp_path, "web"))
    repo.push()
    message = _error(_run(work, env, "plan", repo.url, "--ref", "nope"))
    assert "--ref 'nope' is not a branch, tag or commit" in message and "branch main" in message


def test_missing_path(repo, tmp_path, work, env):
    repo.commit(_infra(tmp_path, "web"))
    repo.push()
    assert "--path nowhere does not exist at commit" in _error(
        _run(work, env, "apply", repo.url, "--path", "nowhere", "--auto-approve")
    )
    assert not (work / ".rune-sync").exists()


def test_empty_repository(repo, work, env):
    assert "is empty: it has no commits yet" in _error(_run(work, env, "plan", repo.url))


def test_not_a_repository(tmp_path, work, env):
    (tmp_path / "plain").mkdir()
    url = (tmp_path / "plain").as_uri()
    assert "does not appear to be a git repository" in _error(_run(work, env, "plan", url))
    assert "needs a git repository" in _error(
        _run(work, env, "validate", str(tmp_path / "plain"), "--ref", "main")
    )


def test_path_on_a_plain_directory_is_its_subdirectory(tmp_path, work, env):
    gitserve_tree = tmp_path / "plain"
    (gitserve_tree / "infra").mkdir(parents=True)
    (gitserve_tree / "infra" / "web.yaml").write_text(VOLUME.format(name="web"))
    (gitserve_tree / "elsewhere.yaml").write_text("this: is not read\n")
    result = _run(work, env, "plan", str(gitserve_tree), "--path", "infra")
    assert result.code == 0 and "+ volume/prod/web" in result.stdout
    assert "--path nope does not exist" in _error(
        _run(work, env, "plan", str(gitserve_tree), "--path", "nope")
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--require-signed",), "--require-signed needs --trusted-keys"),
        (("--verify-tip-only",), "--verify-tip-only takes effect only with --require-signed"),
        (("--trusted-keys", "README.md"), "--trusted-keys takes effect only with --require-signed"),
        (("--trusted-keys", "missing.asc", "--require-signed"), "does not exist"),
    ],
)
def test_signature_flags_without_their_partner_are_usage_errors(work, env, args, needle):
    (work / "README.md").write_text("a file\n")
    result = _run(work, env, "plan", ".", *args)
    assert result.code == 64 and needle in result.stderr


def test_require_signed_on_a_directory_is_refused(tmp_path, work, env):
    keys = tmp_path / "keys.asc"
    keys.write_text("")
    message = _error(_run(work, env, "plan", ".", "--require-signed", "--trusted-keys", str(keys)))
    assert "--require-signed needs a git source" in message


@pytest.fixture
def small_cache(tmp_path: Path) -> Iterator[tuple[str, ...]]:
    """A command prefix that runs rune-sync with its cache on a 256 KiB tmpfs."""
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("cannot make a private mount namespace here (unshare -m needs root)")
    cache = tmp_path / "tiny-cache"
    cache.mkdir()
    yield (
        "unshare",
        "-m",
        "sh",
        "-c",
        'mount -t tmpfs -o size=256k tmpfs "$0" && exec "$@"',
        str(cache),
    )


def test_disk_full_clone_is_one_message(repo, tmp_path, work, env, small_cache):
    files = _infra(tmp_path, "web")
    files["infra/blob.txt"] = os.urandom(600_000).hex()
    repo.commit(files)
    repo.push()
    result = run_cli(
        "plan",
        repo.url,
        "--path",
        "infra",
        cwd=work,
        env={**env, "RUNE_SYNC_CACHE_DIR": small_cache[-1]},
        prefix=small_cache,
    )
    assert "Traceback" not in result.stderr
    message = _error(result)
    assert "no space left on the device" in message and "RUNE_SYNC_CACHE_DIR" in message
