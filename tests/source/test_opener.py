"""What SOURCE, --ref and --path mean together."""

from __future__ import annotations

import pytest

from rune_sync.errors import SourceError
from rune_sync.source.base import CommitInfo, SourceKind, SourceSnapshot
from rune_sync.source.opener import normalise_path


@pytest.mark.parametrize(
    ("given", "clean"),
    [(None, None), ("infra/", "infra"), ("./infra//prod/", "infra/prod"), (".", None)],
)
def test_path_is_normalised(given, clean):
    assert normalise_path(given) == clean


@pytest.mark.parametrize("given", ["", "/etc", "../x", "a/../../b"])
def test_a_path_leaving_the_source_is_refused(given):
    with pytest.raises(SourceError):
        normalise_path(given)


def test_provenance_of_git_and_directory_snapshots(tmp_path):
    commit = CommitInfo(
        sha="a" * 40, author="A <a@x>", date="2026-01-01T00:00:00+00:00", subject="s"
    )
    git = SourceSnapshot(
        root=tmp_path,
        kind=SourceKind.GIT,
        url="https://h/r.git",
        commit=commit,
        ref="main",
        path="infra",
        remote="https://bob:canary@h/r.git",
    )
    assert git.provenance() == {
        "kind": "git",
        "url": "https://h/r.git",
        "commit": "a" * 40,
        "author": "A <a@x>",
        "date": "2026-01-01T00:00:00+00:00",
        "subject": "s",
        "ref": "main",
        "path": "infra",
    }
    assert "canary" not in repr(git)
    plain = SourceSnapshot(root=tmp_path, kind=SourceKind.DIRECTORY, url=str(tmp_path))
    assert plain.provenance() == {"kind": "directory", "url": str(tmp_path), "commit": None}
