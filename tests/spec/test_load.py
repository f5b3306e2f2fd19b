"""Loading a source directory: files found, kinds split, and every kind of bad input."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rune_sync.spec import load
from rune_sync.spec.model import Kind

VOLUME = "volume:\n  name: a\n  size: 1Gi\n  accessMode: ReadWriteOnce\n"


def codes(result: load.LoadResult) -> list[tuple[str, str, int, int]]:
    return [
        (d.code, d.location.file, d.location.line, d.location.column)
        for d in result.diagnostics
        if d.location is not None
    ]


def test_reads_yaml_and_yml_recursively_and_skips_hidden(tree):
    root = tree(
        {
            "a.yaml": VOLUME,
            "deep/er/b.yml": "volumes:\n  - name: b\n  - name: c\n",
            ".hidden.yaml": "broken: [",
            ".git/x.yaml": "broken: [",
            "notes.txt": "not yaml",
            "runefile.yaml": "storage: {}\nservices: whatever-runed-owns\n",
        }
    )
    result = load.load_directory(root, cwd=root)
    assert result.diagnostics == ()
    assert [r.data["name"] for r in result.resources] == ["a", "b", "c"]
    assert result.files == ("a.yaml", "deep/er/b.yml")
    assert result.runefile is not None and result.runefile.display == "runefile.yaml"
    b = result.resources[1]
    assert b.kind is Kind.VOLUME and (b.origin.line, b.origin.column) == (2, 5)


def test_digest_changes_with_content_and_not_with_hidden_files(tree):
    root = tree({"a.yaml": VOLUME})
    first = load.load_directory(root).digest
    (root / ".scratch.yaml").write_text("x: 1\n")
    assert load.load_directory(root).digest == first
    (root / "a.yaml").write_text(VOLUME.replace("1Gi", "2Gi"))
    assert load.load_directory(root).digest != first


@pytest.mark.parametrize(
    ("content", "code", "line", "column"),
    [
        ("volume:\n  name: a\n  name: b\n", "RS002", 3, 3),
        ("volume:\n\tname: a\n", "RS001", 2, 1),
        ("volume: [\n", "RS001", 2, 1),
        ("- volume: {}\n", "RS006", 1, 1),
        ("just a string\n", "RS006", 1, 1),
        ("volume:\n", "RS008", 1, 1),
        ("volumes: {name: a}\n", "RS008", 1, 1),
        ("volumes:\n  - name: a\n  - 3\n", "RS008", 3, 5),
        ("volumz:\n  name: a\n", "RS007", 1, 1),
        ("x: !Custom 1\n", "RS011", 1, 4),
        (b"volume:\n  name: caf\xe9\n", "RS004", 2, 12),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "RS004", 3, 1),
    ],
)
def test_bad_files_get_one_precise_diagnostic(tree, content, code, line, column):
    root = tree({"bad.yaml": content, "good.yaml": VOLUME})
    result = load.load_directory(root, cwd=root)
    assert codes(result) == [(code, "bad.yaml", line, column)]
    assert [r.origin.file for r in result.resources if r.origin.file == "good.yaml"] == [
        "good.yaml"
    ]  # the good file still loads


def test_unknown_kind_suggests_the_right_one(tree):
    result = load.load_directory(tree({"a.yaml": "storageclass:\n  name: x\n"}))
    assert "did you mean 'storageClass'" in result.diagnostics[0].message


def test_alias_bomb_is_refused(tree):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    result = load.load_directory(tree({"bomb.yaml": "\n".join(lines) + "\n"}))
    assert [d.code for d in result.diagnostics] == ["RS003"]


def test_huge_file_is_refused_without_reading_it(tree, tmp_path):
    root = tree({})
    big = root / "big.yaml"
    with big.open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)  # sparse: 50 MB without writing them
    result = load.load_directory(root, cwd=root)
    assert [(d.code, d.location.file) for d in result.diagnostics] == [("RS009", "big.yaml")]
    assert "50.0 MiB" in result.diagnostics[0].message


def test_symlink_loop_is_reported_once(tree):
    root = tree({"a/v.yaml": VOLUME})
    os.symlink("..", root / "a" / "loop")
    result = load.load_directory(root, cwd=root)
    assert [(d.code, d.location.file) for d in result.diagnostics] == [("RS010", "a/loop")]
    assert len(result.resources) == 1


def test_self_referencing_symlink_is_reported(tree):
    root = tree({})
    os.symlink("x.yaml", root / "x.yaml")
    result = load.load_directory(root, cwd=root)
    assert [d.code for d in result.diagnostics] == ["RS010"]


def test_symlink_out_of_the_source_is_not_followed(tree, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text(VOLUME)
    root = tree({})
    os.symlink(outside, root / "elsewhere")
    os.symlink(outside / "secret.yaml", root / "leak.yaml")
    result = load.load_directory(root, cwd=root)
    assert sorted(d.code for d in result.diagnostics) == ["RS010", "RS010"]
    assert result.resources == ()


def test_a_symlinked_folder_inside_the_source_is_read_once(tree):
    root = tree({"shared/v.yaml": VOLUME})
    os.symlink("shared", root / "alias")
    os.symlink("shared/v.yaml", root / "again.yaml")
    result = load.load_directory(root, cwd=root)
    assert result.diagnostics == ()
    assert [r.data["name"] for r in result.resources] == ["a"]


def test_a_hidden_folder_is_read_through_a_visible_symlink(tree):
    root = tree({".real/v.yaml": VOLUME})
    os.symlink(".real", root / "visible")
    result = load.load_directory(root, cwd=root)
    assert result.diagnostics == ()
    assert result.files == ("visible/v.yaml",)


def test_empty_documents_are_ignored(tree):
    result = load.load_directory(tree({"a.yaml": "---\n---\n" + VOLUME + "---\n"}))
    assert result.diagnostics == () and len(result.resources) == 1


def test_several_runefiles_warn_and_the_yaml_one_wins(tree):
    root = tree({"runefile.yaml": "storage: {}\n", "runefile.toml": "[storage]\n"})
    result = load.load_directory(root, cwd=root)
    assert [d.code for d in result.diagnostics] == ["RS303"]
    assert not result.diagnostics[0].is_error
    assert result.runefile is not None and result.runefile.path.name == "runefile.yaml"


def test_explicit_runefile_is_not_read_as_resources(tree):
    root = tree({"conf/rf.yaml": "storage: {}\nother: x\n", "a.yaml": VOLUME})
    result = load.load_directory(root, runefile=root / "conf" / "rf.yaml", cwd=root)
    assert result.diagnostics == ()
    assert result.runefile is not None and result.runefile.display == "conf/rf.yaml"


def test_display_paths_are_relative_to_the_working_directory(tree, tmp_path):
    root = tree({"bad.yaml": "volume: [\n"})
    result = load.load_directory(root, cwd=tmp_path)
    assert result.diagnostics[0].location.file == str(Path("src") / "bad.yaml")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_only_diagnose(data):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "x.yaml").write_bytes(data)
        result = load.load_directory(root, cwd=root)
        for d in result.diagnostics:
            assert d.code.startswith("RS0")
            assert d.location is not None and d.location.file == "x.yaml"
