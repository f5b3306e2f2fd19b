"""Git sources against real repositories over file:// and git://: refs, --path,
provenance, the cache (reused, fetched incrementally, repaired) and bad input."""

from __future__ import annotations

import multiprocessing
import os
import shutil
from pathlib import Path

import pytest

from rune_sync.errors import SourceError
from rune_sync.source import git
from rune_sync.source.base import SourceKind, SourceRequest
from rune_sync.source.opener import open_source
from tests import gitserve

VOLUME = "volume:\n  name: {name}\n  size: 1Gi\n  accessMode: ReadWriteOnce\n"


def _open(source: str, cache_dir: Path, *, ref: str | None = None, path: str | None = None):
    return open_source(
        SourceRequest(source=source, ref=ref, path=path), cache_root=cache_dir, timeout=30
    )


def _entry_git_dir(cache_dir: Path) -> Path:
    (entry,) = [p for p in cache_dir.iterdir() if p.is_dir()]
    return entry / "git"


def test_branch_of_a_file_url_is_exported_with_its_provenance(repo, cache_dir):
    sha = repo.commit({"infra/a.yaml": VOLUME.format(name="a")}, "Add volume a")
    repo.push()
    snap = _open(repo.url, cache_dir, ref="main")
    assert snap.kind is SourceKind.GIT
    assert snap.commit is not None and snap.commit.sha == sha
    assert snap.commit.subject == "Add volume a"
    assert snap.commit.author == "Alice Example <alice@example.com>"
    assert snap.commit.date.startswith("2023-11-14T22:")
    assert (snap.root / "infra" / "a.yaml").read_text() == VOLUME.format(name="a")
    assert not str(snap.root).startswith(str(repo.bare))
    assert snap.root.is_relative_to(cache_dir)


def test_default_ref_is_the_remote_head(repo, cache_dir):
    repo.commit({"a.yaml": VOLUME.format(name="a")})
    repo.push()
    gitserve.git("checkout", "--quiet", "-b", "other", cwd=repo.work)
    other = repo.commit({"b.yaml": VOLUME.format(name="b")})
    repo.push(ref="other")
    snap = _open(repo.url, cache_dir)
    assert snap.commit is not None and snap.commit.sha != other
    assert not (snap.root / "b.yaml").exists()
    assert _open(repo.url, cache_dir, ref="other").commit.sha == other


def test_annotated_tag_resolves_to_its_commit(repo, cache_dir):
    first = repo.commit({"a.yaml": VOLUME.format(name="a")})
    repo.push()
    repo.tag("v1")
    repo.commit({"b.yaml": VOLUME.format(name="b")})
    repo.push()
    snap = _open(repo.url, cache_dir, ref="v1")
    assert snap.commit.sha == first
    assert not (snap.root / "b.yaml").exists()


def test_a_sha_that_is_no_tip_is_fetched(repo, cache_dir):
    first = repo.commit({"a.yaml": VOLUME.format(name="a")})
    repo.commit({"b.yaml": VOLUME.format(name="b")})
    repo.push()
    assert _open(repo.url, cache_dir, ref=first).commit.sha == first
    assert _open(repo.url, cache_dir, ref=first[:10]).commit.sha == first


def test_path_makes_the_subdirectory_the_root(repo, cache_dir):
    repo.commit({"infra/a.yaml": VOLUME.format(name="a"), "other/b.yaml": "not: ours\n"})
    repo.push()
    snap = _open(repo.url, cache_dir, ref="main", path="infra/")
    assert snap.path == "infra"
    assert sorted(p.name for p in snap.root.iterdir()) == ["a.yaml"]


def test_git_daemon_transport(repo, cache_dir, daemon):
    sha = repo.commit({"infra/a.yaml": VOLUME.format(name="a")})
    repo.push()
    url = daemon + "repo.git"
    snap = _open(url, cache_dir, ref="main", path="infra")
    assert snap.commit.sha == sha and snap.url == url
    assert git.remote_revision(url=url, ref="main", timeout=30) == sha
    assert git.remote_revision(url=url, ref=None, timeout=30) == sha


def test_remote_revision_follows_pushes_without_fetching(repo, cache_dir):
    repo.commit({"a.yaml": "x: 1\n"})
    repo.push()
    second = repo.commit({"a.yaml": "x: 2\n"})
    repo.push()
    assert git.remote_revision(url=repo.url, ref="main", timeout=30) == second
    assert not cache_dir.exists()


def test_second_open_reuses_the_cache_and_fetches_only_new_commits(repo, cache_dir):
    repo.commit({"a.yaml": VOLUME.format(name="a")})
    repo.push()
    first = _open(repo.url, cache_dir, ref="main")
    git_dir = _entry_git_dir(cache_dir)
    identity = git_dir.stat().st_ino, (git_dir / "config").stat().st_ino
    shallow = (git_dir / "shallow").read_text()
    again = _open(repo.url, cache_dir, ref="main")
    assert again.root == first.root
    second = repo.commit({"b.yaml": VOLUME.format(name="b")})
    repo.push()
    moved = _open(repo.url, cache_dir, ref="main")
    assert moved.commit.sha == second
    # the same clone, fetched into: same inodes, still shallow at the first commit only
    assert (git_dir.stat().st_ino, (git_dir / "config").stat().st_ino) == identity
    assert (git_dir / "shallow").read_text() == shallow


@pytest.mark.parametrize("damage", ["objects", "head", "packs"])
def test_a_damaged_cache_is_cloned_again(repo, cache_dir, damage):
    sha = repo.commit({"a.yaml": VOLUME.format(name="a")})
    repo.push()
    _open(repo.url, cache_dir, ref="main")
    git_dir = _entry_git_dir(cache_dir)
    shutil.rmtree(git_dir.parent / "trees")
    if damage == "objects":
        shutil.rmtree(git_dir / "objects")
    elif damage == "head":
        (git_dir / "HEAD").write_text("garbage\n")
        (git_dir / "config").write_text("[[[ not a config\n")
    else:
        for pack in (git_dir / "objects").rglob("*"):
            if pack.is_file():
                pack.write_bytes(b"garbage")
    snap = _open(repo.url, cache_dir, ref="main")
    assert snap.commit.sha == sha
    assert (snap.root / "a.yaml").is_file()
    assert any("was damaged" in note and "cloned again" in note for note in snap.notes)


def _open_in_child(args: tuple[str, str]) -> str:
    url, cache = args
    snap = open_source(SourceRequest(source=url, ref="main"), cache_root=Path(cache), timeout=60)
    return snap.commit.sha if snap.commit else ""


def test_concurrent_runs_share_one_cache_safely(repo, cache_dir):
    sha = repo.commit({"a.yaml": VOLUME.format(name="a")})
    repo.push()
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(_open_in_child, [(repo.url, str(cache_dir))] * 6)
    assert results == [sha] * 6
    assert len([p for p in cache_dir.iterdir() if p.is_dir()]) == 1


def test_local_repository_path_needs_ref(repo, cache_dir, tmp_path):
    sha = repo.commit({"a.yaml": VOLUME.format(name="a")})
    snap = _open(str(repo.work), cache_dir, ref="main")
    assert snap.kind is SourceKind.GIT and snap.commit.sha == sha
    assert snap.url == repo.work.resolve().as_uri()
    as_directory = _open(str(repo.work), cache_dir)
    assert as_directory.kind is SourceKind.DIRECTORY and as_directory.root == repo.work


def test_path_on_a_directory_selects_the_subdirectory(tmp_path, cache_dir):
    gitserve_tree = tmp_path / "plain"
    (gitserve_tree / "infra").mkdir(parents=True)
    snap = _open(str(gitserve_tree), cache_dir, path="infra")
    assert snap.kind is SourceKind.DIRECTORY and snap.root == gitserve_tree / "infra"


@pytest.mark.parametrize(
    ("ref", "path", "message"),
    [
        ("nope", None, "--ref 'nope' is not a branch, tag or commit of"),
        ("main", "missing", "--path missing does not exist at commit"),
        ("main", "a.yaml", "--path a.yaml is a file at commit"),
        ("main", "../up", "must stay inside the source"),
        ("main", "/abs", "must be relative to the source root"),
        ("0" * 40, None, "is not a commit in"),
    ],
)
def test_bad_ref_or_path_says_which(repo, cache_dir, ref, path, message):
    repo.commit({"a.yaml": VOLUME.format(name="a")})
    repo.push()
    with pytest.raises(SourceError, match=message.replace("(", r"\(")) as caught:
        _open(repo.url, cache_dir, ref=ref, path=path)
    assert str(cache_dir) not in str(caught.value) or "cache" in str(caught.value)


def test_empty_repository(repo, cache_dir):
    with pytest.raises(SourceError, match="is empty: it has no commits yet"):
        _open(repo.url, cache_dir)


def test_unreachable_and_not_git(tmp_path, cache_dir):
    with pytest.raises(SourceError, match=r"cannot read the git repository git://127\.0\.0\.1"):
        _open(f"git://127.0.0.1:{gitserve.free_port()}/repo.git", cache_dir)
    (tmp_path / "plain").mkdir()
    with pytest.raises(SourceError, match="does not appear to be a git repository"):
        _open((tmp_path / "plain").as_uri(), cache_dir)


def test_ref_on_a_plain_directory_is_refused(tmp_path, cache_dir):
    with pytest.raises(SourceError, match="needs a git repository"):
        _open(str(tmp_path), cache_dir, ref="main")


def test_a_stuck_remote_is_stopped_after_the_timeout(cache_dir):
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])  # accept, never answer
            except OSError:
                continue

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        url = f"git://127.0.0.1:{listener.getsockname()[1]}/repo.git"
        with pytest.raises(SourceError, match="did not finish within 1s"):
            open_source(SourceRequest(source=url), cache_root=cache_dir, timeout=1)
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()


def test_credentials_never_reach_the_cache_or_messages(repo, cache_dir):
    password = "canary-pa55word"
    repo.commit({"a.yaml": VOLUME.format(name="a")})
    repo.push()
    with gitserve.git_http(repo.bare.parent, user="bob", password=password) as base:
        authed = base.replace("http://", f"http://bob:{password}@") + "repo.git"
        snap = _open(authed, cache_dir, ref="main")
        assert password not in snap.url and password not in repr(snap)
        with pytest.raises(SourceError) as caught:
            _open(authed.replace(password, "wrong-" + password), cache_dir, ref="main")
        assert password not in str(caught.value)
        with pytest.raises(SourceError) as caught:
            _open(authed, cache_dir, ref="nope")
        assert password not in str(caught.value)
    for path in cache_dir.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
    assert os.environ.get("RUNE_SYNC_CACHE_DIR") == str(cache_dir)
