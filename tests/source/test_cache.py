"""The cache of clones: where it lives, one entry per repository, its lock, pruning."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from rune_sync.errors import SourceError
from rune_sync.source import cache


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RUNE_SYNC_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache.cache_root() == tmp_path / "home" / ".cache" / "rune-sync"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "rune-sync"
    monkeypatch.setenv("RUNE_SYNC_CACHE_DIR", str(tmp_path / "mine"))
    assert cache.cache_root() == tmp_path / "mine"


def test_one_entry_per_repository_whatever_the_credentials(tmp_path):
    a = cache.entry_for(tmp_path, "https://bob:pw@git.example.com/org/repo.git")
    b = cache.entry_for(tmp_path, "https://git.example.com/org/repo")
    c = cache.entry_for(tmp_path, "https://git.example.com/org/other.git")
    assert a == b and a != c
    assert "pw" not in a.base.name and a.base.parent == tmp_path


def test_a_held_entry_makes_others_wait_then_give_up(tmp_path):
    entry = cache.entry_for(tmp_path, "file:///srv/repo.git")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(entry.lock_path)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with (
            pytest.raises(SourceError, match="another rune-sync has been using"),
            cache.locked(entry, timeout=0.2),
        ):
            pass
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
        if holder.stdout is not None:
            holder.stdout.close()
    with cache.locked(entry, timeout=5):
        assert entry.lock_path.exists()


def test_prune_keeps_the_tree_in_use_and_recent_ones(tmp_path):
    entry = cache.Entry(base=tmp_path / "entry")
    for name in ("current", "recent", "old", ".export-crashed"):
        (entry.trees / name).mkdir(parents=True)
    long_ago = time.time() - cache.TREE_MAX_IDLE - 10
    for name in ("current", "old", ".export-crashed"):
        os.utime(entry.trees / name, (long_ago, long_ago))
    cache.prune(entry, keep=entry.trees / "current")
    assert sorted(p.name for p in entry.trees.iterdir()) == ["current", "recent"]
