"""The secrets directory: ``DIR/<namespace>/<name>/<key>`` files, read with care."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rune_sync.secrets.directory import MAX_BYTES, DirectorySource
from rune_sync.secrets.notices import Notices
from rune_sync.secrets.store import Found, Missing, UnreadableSecret

CANARY = "CANARY-d1r3ct0ry-5ecret"


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def put(root: Path, rel: str, content: str | bytes, mode: int = 0o600) -> Path:
    path = root / rel
    for parent in reversed(Path(rel).parents[:-1]):  # the folders below root
        private_dir(root / parent)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return private_dir(tmp_path / "secrets")


def source(root: Path | None, notices: Notices | None = None) -> DirectorySource:
    return DirectorySource(root, notices=notices or Notices())


def value_of(answer: Found | Missing) -> str:
    assert isinstance(answer, Found), answer
    return answer.value.reveal()


@pytest.mark.parametrize(
    ("content", "value"),
    [("tok\n", "tok"), ("tok", "tok"), ("tok\n\n", "tok\n"), ("tok\r\n", "tok\r"), ("\n", "")],
    ids=["newline", "none", "two-newlines", "crlf", "only-newline"],
)
def test_the_value_is_the_file_less_exactly_one_trailing_newline(root, content, value):
    put(root, "prod/db/password", content)
    answer = source(root).find("prod", "db", "password")
    assert value_of(answer) == value
    assert isinstance(answer, Found)
    assert answer.where == f"file {root / 'prod/db/password'}"


def test_a_missing_file_says_which_file_it_looked_for(root):
    answer = source(root).find("prod", "db", "password")
    assert answer == Missing((f"no file {root / 'prod/db/password'}",))


def test_without_a_directory_it_says_how_to_give_one():
    answer = source(None).find("prod", "db", "password")
    assert isinstance(answer, Missing)
    assert "--secrets-dir" in answer.looked[0]
    assert "RUNE_SYNC_SECRETS_DIR" in answer.looked[0]


def test_a_directory_that_does_not_exist_is_named(tmp_path):
    answer = source(tmp_path / "nope").find("prod", "db", "password")
    assert answer == Missing((f"no secrets directory {tmp_path / 'nope'} (it is not a directory)",))


def test_a_symlinked_file_leading_outside_is_refused_naming_the_path_not_the_value(root, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.write_text(CANARY, encoding="utf-8")
    private_dir(root / "prod" / "db")
    (root / "prod/db/password").symlink_to(outside)
    with pytest.raises(UnreadableSecret) as refused:
        source(root).find("prod", "db", "password")
    message = str(refused.value)
    assert str(root / "prod/db/password") in message
    assert "outside the secrets directory" in message
    assert CANARY not in message


def test_a_symlinked_folder_leading_outside_is_refused(root, tmp_path):
    elsewhere = private_dir(tmp_path / "other-secrets")
    put(elsewhere, "db/password", CANARY)
    (root / "prod").symlink_to(elsewhere)
    with pytest.raises(UnreadableSecret, match="outside the secrets directory"):
        source(root).find("prod", "db", "password")


def test_symlinks_that_stay_inside_are_followed(root):
    # The layout Kubernetes uses for mounted secrets: key -> ..data/key -> ..2025/key.
    put(root, "prod/db/..2025_11_21/password", "s3cret\n")
    (root / "prod/db/..data").symlink_to("..2025_11_21")
    (root / "prod/db/password").symlink_to("..data/password")
    assert value_of(source(root).find("prod", "db", "password")) == "s3cret"


def test_a_folder_where_the_file_should_be_is_refused(root):
    private_dir(root / "prod/db/password")
    with pytest.raises(UnreadableSecret, match="is not a regular file"):
        source(root).find("prod", "db", "password")


def test_a_fifo_is_refused_without_blocking(root):
    private_dir(root / "prod/db")
    os.mkfifo(root / "prod/db/password", 0o600)
    with pytest.raises(UnreadableSecret, match="is not a regular file"):
        source(root).find("prod", "db", "password")


def test_a_symlink_loop_is_refused_as_unreadable(root):
    private_dir(root / "prod/db")
    (root / "prod/db/password").symlink_to("password")
    with pytest.raises(UnreadableSecret, match=r"cannot read .*prod/db/password"):
        source(root).find("prod", "db", "password")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_refused_naming_it(root):
    put(root, "prod/db/password", CANARY, mode=0o000)
    with pytest.raises(UnreadableSecret, match=r"cannot read .*Permission denied"):
        source(root).find("prod", "db", "password")


def test_a_file_that_is_not_utf8_is_refused(root):
    put(root, "prod/db/password", b"\xff\xfe\x00binary")
    with pytest.raises(UnreadableSecret, match="is not UTF-8 text"):
        source(root).find("prod", "db", "password")


def test_a_huge_file_is_refused(root):
    put(root, "prod/db/password", b"x" * (MAX_BYTES + 1))
    with pytest.raises(UnreadableSecret, match="larger than"):
        source(root).find("prod", "db", "password")


@pytest.mark.parametrize("key", [".", ".."])
def test_dot_keys_are_never_paths(root, key):
    put(root, "prod/secret-file", CANARY)
    private_dir(root / "prod/db")
    answer = source(root).find("prod", "db", key)
    assert isinstance(answer, Missing)
    assert "not a file name" in answer.looked[0]


def test_a_directory_open_to_others_is_warned_about_once(tmp_path):
    root = tmp_path / "secrets"
    root.mkdir()
    root.chmod(0o755)
    put(root, "prod/db/password", "a")
    put(root, "prod/db/user", "b", mode=0o644)
    notices = Notices()
    found = source(root, notices)
    for key in ("password", "user", "password"):
        found.find("prod", "db", key)
    warnings = notices.take()
    assert [(w.code, w.severity.value) for w in warnings] == [("RS403", "warning")]
    assert warnings[0].location is not None
    assert warnings[0].location.file == str(root)
    assert "mode 0755" in warnings[0].message
    assert f"chmod -R go-rwx {root}" in warnings[0].message
    found.find("prod", "db", "user")
    assert notices.take() == ()


def test_a_file_readable_by_the_group_is_warned_about(root):
    put(root, "prod/db/password", CANARY, mode=0o640)
    notices = Notices()
    source(root, notices).find("prod", "db", "password")
    (warning,) = notices.take()
    assert warning.location is not None
    assert warning.location.file == str(root / "prod/db/password")
    assert "mode 0640" in warning.message
    assert CANARY not in str(warning)


def test_private_secrets_get_no_warning(root):
    put(root, "prod/db/password", "x")
    notices = Notices()
    source(root, notices).find("prod", "db", "password")
    assert notices.take() == ()
