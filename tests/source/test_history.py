"""No rollbacks and signed commits, on real repositories with real GPG and SSH keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from rune_sync.errors import RollbackError, SignatureError, SourceError
from rune_sync.source import history
from rune_sync.source.base import SourceRequest, TrustPolicy
from rune_sync.source.opener import open_source


def _open(url: str, cache_dir: Path, ref: str = "main"):
    return open_source(SourceRequest(source=url, ref=ref), cache_root=cache_dir, timeout=30)


def _check(snap, previous, **policy):
    history.check(snap, previous=previous, policy=TrustPolicy(**policy), timeout=30)


def test_a_descendant_passes_after_deepening_a_shallow_cache(repo, cache_dir):
    first = repo.commit({"a.yaml": "x: 0\n"})
    for i in range(1, 80):
        repo.commit({"a.yaml": f"x: {i}\n"})
    repo.push()
    snap = _open(repo.url, cache_dir)  # a shallow clone of the tip alone
    _check(snap, first)
    _check(snap, snap.commit.sha)


def test_a_force_push_is_a_rollback(repo, cache_dir):
    base = repo.commit({"a.yaml": "x: 0\n"})
    applied = repo.commit({"a.yaml": "x: 1\n"})
    repo.push()
    _open(repo.url, cache_dir)
    repo.reset(base)
    rewritten = repo.commit({"a.yaml": "x: 2\n"}, "rewritten")
    repo.push(force=True)
    snap = _open(repo.url, cache_dir)
    with pytest.raises(RollbackError) as caught:
        _check(snap, applied)
    assert applied in str(caught.value) and rewritten in str(caught.value)
    _check(snap, applied, allow_rollback=True)


def test_moving_back_to_an_ancestor_is_a_rollback(repo, cache_dir):
    old = repo.commit({"a.yaml": "x: 0\n"})
    new = repo.commit({"a.yaml": "x: 1\n"})
    repo.push()
    snap = _open(repo.url, cache_dir, ref=old)
    with pytest.raises(RollbackError, match=new):
        _check(snap, new)


def test_a_commit_unknown_to_a_fresh_cache_is_a_rollback(repo, cache_dir, tmp_path):
    repo.commit({"a.yaml": "x: 0\n"})
    repo.push()
    snap = _open(repo.url, tmp_path / "fresh-cache")
    with pytest.raises(RollbackError):
        _check(snap, "1" * 40)


def test_signed_history_passes_with_gpg_and_ssh_keys(repo, cache_dir, gpg_key, ssh_key):
    repo.commit({"a.yaml": "x: 0\n"}, sign=gpg_key)
    repo.commit({"a.yaml": "x: 1\n"}, sign=ssh_key)
    repo.push()
    snap = _open(repo.url, cache_dir)
    _check(
        snap,
        None,
        require_signed=True,
        trusted_keys=gpg_key.public,
        allowed_signers=ssh_key.allowed_signers,
    )


def test_oldest_unsigned_commit_is_named(repo, cache_dir, gpg_key):
    applied = repo.commit({"a.yaml": "x: 0\n"})
    unsigned = repo.commit({"a.yaml": "x: 1\n"}, "sneaky change")
    repo.commit({"a.yaml": "x: 2\n"}, "also unsigned")
    repo.commit({"a.yaml": "x: 3\n"}, sign=gpg_key)
    repo.push()
    snap = _open(repo.url, cache_dir)
    with pytest.raises(SignatureError) as caught:
        _check(snap, applied, require_signed=True, trusted_keys=gpg_key.public)
    message = str(caught.value)
    assert f'commit {unsigned} ("sneaky change") is not signed' in message
    assert "the 3 commit(s) since" in message
    _check(snap, applied, require_signed=True, trusted_keys=gpg_key.public, verify_tip_only=True)


def test_first_apply_checks_the_whole_history(repo, cache_dir, ssh_key):
    first = repo.commit({"a.yaml": "x: 0\n"}, "unsigned start")
    repo.commit({"a.yaml": "x: 1\n"}, sign=ssh_key)
    repo.push()
    snap = _open(repo.url, cache_dir)
    with pytest.raises(SignatureError, match=first):
        _check(snap, None, require_signed=True, allowed_signers=ssh_key.allowed_signers)


def test_untrusted_keys_are_refused(
    repo, cache_dir, gpg_key, other_gpg_key, ssh_key, other_ssh_key
):
    applied = repo.commit({"a.yaml": "x: 0\n"})
    by_mallory = repo.commit({"a.yaml": "x: 1\n"}, sign=other_gpg_key)
    repo.push()
    snap = _open(repo.url, cache_dir)
    with pytest.raises(SignatureError, match=f"{by_mallory}.*no good signature"):
        _check(
            snap,
            applied,
            require_signed=True,
            trusted_keys=gpg_key.public,
            allowed_signers=ssh_key.allowed_signers,
        )
    ssh_by_mallory = repo.commit({"a.yaml": "x: 2\n"}, sign=other_ssh_key)
    repo.push()
    snap = _open(repo.url, cache_dir)
    with pytest.raises(SignatureError, match=ssh_by_mallory):
        _check(
            snap,
            by_mallory,
            require_signed=True,
            trusted_keys=gpg_key.public,
            allowed_signers=ssh_key.allowed_signers,
        )


def test_a_key_file_without_keys_is_refused(repo, cache_dir, tmp_path):
    repo.commit({"a.yaml": "x: 0\n"})
    repo.push()
    junk = tmp_path / "junk.asc"
    junk.write_text("not a key\n")
    snap = _open(repo.url, cache_dir)
    with pytest.raises(SourceError, match="holds no OpenPGP public key"):
        _check(snap, None, require_signed=True, trusted_keys=junk)
