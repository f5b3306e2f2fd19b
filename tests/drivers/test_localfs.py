"""The filesystem primitives under the local drivers: bounded removal and mount detection."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rune_sync.drivers import localfs


@pytest.fixture
def mounted_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs mounted at a path with a space in it, inside ``tmp_path/tree``."""
    point = tmp_path / "tree" / "sub dir" / "mnt"
    point.mkdir(parents=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("no mount command")
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        (point / "precious.txt").write_text("precious")
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)


def test_removal_never_crosses_into_another_filesystem(tmp_path, mounted_tmpfs):
    with (
        localfs.closing_fd(os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)) as fd,
        pytest.raises(localfs.Refused, match="on another filesystem"),
    ):
        localfs.remove_entry(fd, "tree", shown_as=str(tmp_path / "tree"))
    assert (mounted_tmpfs / "precious.txt").read_text() == "precious"


def test_mount_table_lists_mounts_below_a_path_with_escaped_names(tmp_path, mounted_tmpfs):
    assert localfs.mounts_within(str(tmp_path / "tree")) == [str(mounted_tmpfs)]
    assert localfs.mounts_within(str(tmp_path / "tre")) == []


def test_removal_refuses_links_and_files_and_reports_missing(tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    (tmp_path / "file").write_text("x")
    with localfs.closing_fd(os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)) as fd:
        with pytest.raises(localfs.Refused, match="is a symlink"):
            localfs.remove_entry(fd, "link", shown_as="link")
        with pytest.raises(localfs.Refused, match="is not a directory"):
            localfs.remove_entry(fd, "file", shown_as="file")
        assert localfs.remove_entry(fd, "missing", shown_as="missing") is False
    assert (tmp_path / "target").is_dir() and (tmp_path / "file").exists()


def test_removal_of_deep_trees_is_bounded(tmp_path):
    deep = tmp_path / "deep"
    path = deep
    for _ in range(localfs.MAX_DEPTH + 2):
        path = path / "d"
    path.mkdir(parents=True)
    with (
        localfs.closing_fd(os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)) as fd,
        pytest.raises(localfs.Refused, match="nested deeper"),
    ):
        localfs.remove_entry(fd, "deep", shown_as="deep")
