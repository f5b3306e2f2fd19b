"""Incremental loading: with a cache, only files whose content changed are parsed again,
and the result is the one a fresh load gives."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from rune_sync.spec import load
from rune_sync.spec import validate as validation
from rune_sync.spec.model import Capabilities
from tests.conftest import write_tree


def vol(name: str, size: str = "1Gi") -> str:
    return f"volume: {{name: {name}, size: {size}, accessMode: ReadWriteOnce}}\n"


def source(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "src",
        {f"v{i}.yaml": vol(f"v{i}") for i in range(5)} | {"runefile.yaml": "storage: {}\n"},
    )


def same(a: load.LoadResult, b: load.LoadResult) -> None:
    assert [(r.kind, dict(r.data), r.origin) for r in a.resources] == [
        (r.kind, dict(r.data), r.origin) for r in b.resources
    ]
    assert a.diagnostics == b.diagnostics
    assert (a.digest, a.files) == (b.digest, b.files)


def test_an_unchanged_source_is_not_parsed_again(tmp_path):
    root = source(tmp_path)
    cache = load.ParseCache()
    first = load.load_directory(root, cache=cache)
    assert (cache.parses, cache.reuses) == (5, 0)
    again = load.load_directory(root, cache=cache)
    assert (cache.parses, cache.reuses) == (5, 5)
    same(first, again)
    assert all(a is b for a, b in zip(first.groups, again.groups, strict=True))


def test_only_the_edited_and_the_added_file_are_parsed(tmp_path):
    root = source(tmp_path)
    cache = load.ParseCache()
    load.load_directory(root, cache=cache)
    (root / "v3.yaml").write_text(vol("v3", "2Gi"), encoding="utf-8")
    (root / "new.yaml").write_text(vol("new"), encoding="utf-8")
    (root / "v0.yaml").unlink()
    loaded = load.load_directory(root, cache=cache)
    assert (cache.parses, cache.reuses) == (5 + 2, 3)  # v1, v2, v4 reused
    same(loaded, load.load_directory(root))
    sizes = {r.data["name"]: r.data["size"] for r in loaded.resources}
    assert sizes["v3"] == "2Gi" and "v0" not in sizes and "new" in sizes


def test_an_edit_that_keeps_size_and_time_is_still_seen(tmp_path):
    """The cache checks content, not timestamps: a same-size rewrite with the old mtime
    is parsed again."""
    root = source(tmp_path)
    cache = load.ParseCache()
    load.load_directory(root, cache=cache)
    path = root / "v1.yaml"
    stat = path.stat()
    path.write_text(vol("v9"), encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    loaded = load.load_directory(root, cache=cache)
    assert "v9" in {r.data["name"] for r in loaded.resources}


def test_a_broken_file_is_reported_and_its_fix_parsed(tmp_path):
    root = source(tmp_path)
    cache = load.ParseCache()
    (root / "v2.yaml").write_text("volume: [\n", encoding="utf-8")
    broken = load.load_directory(root, cache=cache)
    assert broken.diagnostics and broken.diagnostics[0].location.file.endswith("v2.yaml")
    (root / "v2.yaml").write_text(vol("v2"), encoding="utf-8")
    fixed = load.load_directory(root, cache=cache)
    assert fixed.diagnostics == ()
    same(fixed, load.load_directory(root))


def test_validation_with_a_cache_schema_checks_only_changed_files(tmp_path):
    root = source(tmp_path)
    drivers = {"local": Capabilities(access_modes=frozenset({"ReadWriteOnce"}))}
    cache = validation.SourceCache()
    first = validation.validate_directory(root, drivers=drivers, cache=cache)
    assert first.ok and len(first.specs.volumes) == 5
    (root / "v4.yaml").write_text(vol("v4", "3Gi") + "bogus: 1\n", encoding="utf-8")
    cached = validation.validate_directory(root, drivers=drivers, cache=cache)
    fresh = validation.validate_directory(root, drivers=drivers)
    assert cache.parsed.parses == 6
    assert cached.diagnostics == fresh.diagnostics and not cached.ok
    assert cached.specs == fresh.specs
    (root / "v4.yaml").write_text(vol("v4", "3Gi"), encoding="utf-8")
    healed = validation.validate_directory(root, drivers=drivers, cache=cache)
    assert healed.ok and healed.specs == validation.validate_directory(root, drivers=drivers).specs


EDITS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3),
        st.one_of(
            st.none(),  # delete the file
            st.just("volume: [\n"),  # broken YAML
            st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=3).map(
                lambda names: "".join(f"---\n{vol(n)}" for n in names)
            ),
        ),
    ),
    min_size=1,
    max_size=8,
)


@given(edits=EDITS)
@settings(max_examples=40, deadline=None)
def test_any_sequence_of_edits_loads_as_a_fresh_load_would(edits):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cache = load.ParseCache()
        for index, text in edits:
            path = root / f"f{index}.yaml"
            if text is None:
                path.unlink(missing_ok=True)
            else:
                path.write_text(text, encoding="utf-8")
            same(
                load.load_directory(root, cache=cache, cwd=root),
                load.load_directory(root, cwd=root),
            )
