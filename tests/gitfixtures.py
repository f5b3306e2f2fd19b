"""Fixtures for git sources, for every test folder (registered as a plugin in
``tests/conftest.py``): a served repository, signing keys, a private cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import gitserve


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache of clones for the test (RUNE_SYNC_CACHE_DIR)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("RUNE_SYNC_CACHE_DIR", str(path))
    return path


@pytest.fixture
def repo(tmp_path: Path) -> gitserve.Repo:
    """An empty bare repository ``served/repo.git`` and its working clone."""
    served = tmp_path / "served"
    served.mkdir()
    return gitserve.make_repo(served)


@pytest.fixture
def daemon(repo: gitserve.Repo) -> Iterator[str]:
    """``git daemon`` serving the ``repo`` fixture's folder: ``git://127.0.0.1:P/``."""
    with gitserve.git_daemon(repo.bare.parent) as url:
        yield url


@pytest.fixture
def gpg_key(tmp_path: Path) -> Iterator[gitserve.GpgKey]:
    key = gitserve.make_gpg_key(tmp_path / "keys")
    try:
        yield key
    finally:
        gitserve.stop_gpg(key)


@pytest.fixture
def other_gpg_key(tmp_path: Path) -> Iterator[gitserve.GpgKey]:
    key = gitserve.make_gpg_key(tmp_path / "keys", email="mallory@example.com")
    try:
        yield key
    finally:
        gitserve.stop_gpg(key)


@pytest.fixture
def ssh_key(tmp_path: Path) -> gitserve.SshKey:
    return gitserve.make_ssh_key(tmp_path / "keys")


@pytest.fixture
def other_ssh_key(tmp_path: Path) -> gitserve.SshKey:
    return gitserve.make_ssh_key(tmp_path / "keys", email="mallory@example.com")
