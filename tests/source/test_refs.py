"""Resolving --ref against what ``git ls-remote`` lists, as git itself would."""

from __future__ import annotations

import pytest

from rune_sync.errors import SourceError
from rune_sync.source import refs

LISTING = refs.Listing(
    head="a" * 40,
    head_ref="refs/heads/main",
    refs={
        "refs/heads/main": "a" * 40,
        "refs/heads/v2": "b" * 40,
        "refs/tags/v2": "c" * 40,
    },
)


@pytest.mark.parametrize(
    ("ref", "want", "abbreviated"),
    [
        (None, "a" * 40, False),
        ("HEAD", "a" * 40, False),
        ("main", "a" * 40, False),
        ("refs/heads/v2", "b" * 40, False),
        ("v2", "c" * 40, False),  # a tag wins over a branch of the same name, as in git
        ("D" * 40, "d" * 40, False),
        ("deadbee", "deadbee", True),
    ],
)
def test_resolve(ref, want, abbreviated):
    target = refs.resolve(LISTING, ref, "repo")
    assert (target.want, target.abbreviated) == (want, abbreviated)


def test_an_unknown_ref_lists_what_there_is():
    with pytest.raises(SourceError, match="it has branch main, branch v2, tag v2"):
        refs.resolve(LISTING, "feature/x", "repo")


def test_an_empty_listing_is_an_empty_repository():
    with pytest.raises(SourceError, match="is empty"):
        refs.resolve(refs.Listing(head=None, head_ref=None), "main", "repo")


def test_peeled_tags_point_at_their_commit(repo):
    commit = repo.commit({"a.yaml": "x: 1\n"})
    repo.push()
    repo.tag("v1")
    listing = refs.list_refs(repo.url, repo.url, 30, [])
    assert listing.refs["refs/tags/v1"] == commit
    assert listing.head == commit and listing.head_ref == "refs/heads/main"
