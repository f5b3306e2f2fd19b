"""Which SOURCE strings are git URLs, and that credentials never survive display."""

from __future__ import annotations

from pathlib import Path

import pytest

from rune_sync.source import urls


@pytest.mark.parametrize(
    "text",
    [
        "https://git.example.com/org/repo.git",
        "http://127.0.0.1:8080/repo.git",
        "ssh://git@git.example.com:2222/org/repo.git",
        "git://127.0.0.1/repo.git",
        "file:///srv/git/repo.git",
        "git@github.com:org/repo.git",
    ],
)
def test_git_url_forms_are_recognised(text):
    assert urls.is_git_url(text)


@pytest.mark.parametrize("text", [".", "examples/quickstart", "/srv/storage", "C:/x", "a:b"])
def test_paths_are_not_urls(text):
    assert not urls.is_git_url(text)


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("https://bob:s3cret@host/repo.git", "https://host/repo.git"),
        ("https://ghp_token@host/repo.git", "https://host/repo.git"),
        ("ssh://git:pw@host/repo.git", "ssh://host/repo.git"),
        ("ssh://git@host/repo.git", "ssh://git@host/repo.git"),
        ("git@host:org/repo.git", "git@host:org/repo.git"),
    ],
)
def test_display_url_drops_credentials(given, shown):
    assert urls.display_url(given) == shown


def test_redact_cleans_urls_inside_messages():
    text = "fatal: unable to access 'https://bob:s3cret@host/r.git/': 401"
    assert urls.redact(text) == "fatal: unable to access 'https://host/r.git/': 401"


def test_one_repository_under_several_spellings():
    assert urls.same_repository("https://Host/org/repo.git/", "https://bob:pw@host/org/repo")
    assert not urls.same_repository("https://host/org/repo", "https://host/org/other")
    assert urls.canonical(urls.file_url(Path("/srv/x.git"))) == "file:///srv/x"
