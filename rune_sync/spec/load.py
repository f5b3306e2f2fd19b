"""Load a source directory: the runefile and every resource document below the root.

Walks the tree (hidden files and folders skipped, symlinks followed only while they
stay inside the root), reads each ``*.yaml``/``*.yml`` file, and splits its documents
into raw resources that remember their file, line and column. Every problem becomes a
diagnostic; nothing here raises for bad input. The runefile is found here but parsed
by :mod:`rune_sync.spec.runefile`.

Called by :mod:`rune_sync.spec.validate`; it knows the kind keys but not the fields.
A :class:`ParseCache` (held by a long-running caller such as watch) keeps each file's
parse between loads: every file is still read (its bytes feed the input digest), but
only a file whose path, display name or content changed is parsed again.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rune_sync.diagnostics import Diagnostic, Location
from rune_sync.spec import yamlread
from rune_sync.spec.model import Kind

MAX_FILE_BYTES = 16 * 1024 * 1024
"""Larger resource files are refused: split them (a 10,000-volume repo is ~2 MB)."""

RUNEFILE_NAMES = ("runefile.yaml", "runefile.yml", "runefile.toml")
YAML_SUFFIXES = (".yaml", ".yml")

SINGULAR: dict[str, Kind] = {
    "storageClass": Kind.STORAGE_CLASS,
    "volume": Kind.VOLUME,
    "snapshot": Kind.SNAPSHOT,
    "service": Kind.SERVICE,
    "secret": Kind.SECRET,
}
PLURAL: dict[str, Kind] = {
    "storageClasses": Kind.STORAGE_CLASS,
    "volumes": Kind.VOLUME,
    "snapshots": Kind.SNAPSHOT,
    "services": Kind.SERVICE,
    "secrets": Kind.SECRET,
}
KIND_KEY = {kind: key for key, kind in SINGULAR.items()}


def display_path(path: Path, cwd: Path | None = None) -> str:
    """``path`` relative to the working directory when it lies below it."""
    base = cwd or Path.cwd()
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a resource came from; ``node`` is its raw mapping, for locating fields."""

    file: str
    line: int
    column: int
    node: Any = field(default=None, compare=False, repr=False)

    @property
    def location(self) -> Location:
        return Location(file=self.file, line=self.line, column=self.column)

    def position(self, path: tuple[str | int, ...]) -> yamlread.Pos:
        """(line, column) of the field at ``path``; the resource's own place for ``()``."""
        if not path or self.node is None:
            return (self.line, self.column)
        return yamlread.position_at(self.node, path) or (self.line, self.column)

    def locate(self, *path: str | int) -> Location:
        """The location of the field at ``path`` (or the nearest enclosing one)."""
        line, column = self.position(tuple(path))
        return Location(file=self.file, line=line, column=column)


@dataclass(frozen=True, slots=True)
class RawResource:
    """One resource as written: its kind, its mapping, and where it is."""

    kind: Kind
    data: yamlread.PosDict
    origin: Origin


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file of the source: where it is, how it is shown, and its text (if readable)."""

    path: Path
    display: str
    text: str


@dataclass(frozen=True, slots=True)
class LoadResult:
    resources: tuple[RawResource, ...]
    runefile: SourceFile | None
    diagnostics: tuple[Diagnostic, ...]
    digest: str
    files: tuple[str, ...]
    groups: tuple[tuple[RawResource, ...], ...] = ()
    """Each file's resources, in file order; with a :class:`ParseCache`, an unchanged
    file's tuple is the very object of the previous load (callers may cache by it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Parsed:
    content: bytes
    """The SHA-256 of the file's bytes."""
    resources: tuple[RawResource, ...]
    diagnostics: tuple[Diagnostic, ...]


class ParseCache:
    """Each file's parse, kept between loads of one source (not thread-safe: one loader).

    An entry is keyed by the file's path and display name and checked against the
    SHA-256 of its bytes, so an edit is never missed, whatever the file's timestamps
    say; entries of files gone from the source are dropped at the end of each load.
    ``parses`` counts the files actually parsed, ``reuses`` those taken from the cache.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[Path, str], _Parsed] = {}
        self.parses = 0
        self.reuses = 0

    def parse(self, *, path: Path, shown: str, text: str, raw: bytes) -> _Parsed:
        key = (path, shown)
        content = hashlib.sha256(raw).digest()
        entry = self._entries.get(key)
        if entry is not None and entry.content == content:
            self.reuses += 1
            return entry
        self.parses += 1
        entry = _parse_file(text=text, shown=shown, content=content)
        self._entries[key] = entry
        return entry

    def keep_only(self, keys: set[tuple[Path, str]]) -> None:
        for key in [k for k in self._entries if k not in keys]:
            del self._entries[key]


def _parse_file(*, text: str, shown: str, content: bytes) -> _Parsed:
    try:
        docs = yamlread.parse(text)
    except yamlread.YamlProblem as exc:
        problem = _diag(exc.code, exc.message, shown, exc.pos)
        return _Parsed(content=content, resources=(), diagnostics=(problem,))
    resources, problems = split_documents(docs, shown)
    return _Parsed(content=content, resources=tuple(resources), diagnostics=tuple(problems))


def _diag(code: str, message: str, file: str, pos: tuple[int, int] = (0, 0)) -> Diagnostic:
    return Diagnostic(
        code=code, message=message, location=Location(file=file, line=pos[0], column=pos[1])
    )


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class _Walker:
    """Collects candidate files below a root, reporting what it cannot traverse."""

    def __init__(self, root: Path, skip: frozenset[Path], cwd: Path) -> None:
        self.root = root
        self.real_root = root.resolve()
        self.skip = skip
        self.cwd = cwd
        self.diagnostics: list[Diagnostic] = []
        self._seen_dirs: set[tuple[int, int]] = set()
        self._seen_files: set[tuple[int, int]] = set()
        self._ancestors: list[tuple[int, int]] = []

    def files(self) -> list[Path]:
        found: list[Path] = []
        self._walk(self.root, found)
        found.sort()
        return found

    def _walk(self, directory: Path, found: list[Path]) -> None:
        """Read ``directory`` once. A symlink back to a folder above it is a loop (RS010);
        one to a folder read under another name is an alias, and its files are not read
        twice (that would declare every resource in it twice)."""
        shown = display_path(directory, self.cwd)
        try:
            st = directory.stat()
        except OSError as exc:
            self.diagnostics.append(_diag("RS005", f"cannot read folder: {exc.strerror}", shown))
            return
        ident = (st.st_dev, st.st_ino)
        if ident in self._ancestors:
            self.diagnostics.append(
                _diag("RS010", "symlink loop: this folder contains itself", shown)
            )
            return
        if ident in self._seen_dirs:
            return
        self._seen_dirs.add(ident)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            self.diagnostics.append(_diag("RS005", f"cannot read folder: {exc.strerror}", shown))
            return
        self._ancestors.append(ident)
        try:
            self._read_entries(entries, found)
        finally:
            self._ancestors.pop()

    def _read_entries(self, entries: list[os.DirEntry[str]], found: list[Path]) -> None:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_symlink() and not self._symlink_ok(path):
                continue
            try:
                is_dir = entry.is_dir()
                is_file = entry.is_file()
            except OSError as exc:
                self.diagnostics.append(
                    _diag("RS005", f"cannot read: {exc.strerror}", display_path(path, self.cwd))
                )
                continue
            if is_dir:
                self._walk(path, found)
            elif is_file and entry.name.endswith(YAML_SUFFIXES) and path not in self.skip:
                st = entry.stat()
                if (st.st_dev, st.st_ino) not in self._seen_files:
                    self._seen_files.add((st.st_dev, st.st_ino))
                    found.append(path)

    def _symlink_ok(self, path: Path) -> bool:
        shown = display_path(path, self.cwd)
        try:
            target = path.resolve(strict=True)
        except RuntimeError:
            self.diagnostics.append(_diag("RS010", "symlink loop", shown))
            return False
        except OSError:
            if path.name.endswith(YAML_SUFFIXES):
                self.diagnostics.append(_diag("RS010", "broken symlink", shown))
            return False
        if not _is_within(target, self.real_root):
            self.diagnostics.append(
                _diag("RS010", f"symlink points outside the source ({target}); not read", shown)
            )
            return False
        return True


def read_text(path: Path, shown: str) -> tuple[str | None, bytes, Diagnostic | None]:
    """Read a file as UTF-8 text: (text, raw bytes, problem)."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            mib = size / (1024 * 1024)
            return (
                None,
                b"",
                _diag(
                    "RS009",
                    f"file is {mib:.1f} MiB; resource files are read up to "
                    f"{MAX_FILE_BYTES // (1024 * 1024)} MiB — split it into several files",
                    shown,
                ),
            )
        raw = path.read_bytes()
    except OSError as exc:
        return None, b"", _diag("RS005", f"cannot read file: {exc.strerror or exc}", shown)
    if b"\x00" in raw:
        line = raw[: raw.index(b"\x00")].count(b"\n") + 1
        return (
            None,
            raw,
            _diag("RS004", "binary file (contains NUL bytes); not YAML", shown, (line, 1)),
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        return (
            None,
            raw,
            _diag(
                "RS004",
                f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
                shown,
                (line, col),
            ),
        )
    return text, raw, None


def split_documents(
    docs: list[yamlread.YamlDocument], shown: str
) -> tuple[list[RawResource], list[Diagnostic]]:
    """Turn parsed documents into raw resources, checking the kind keys."""
    resources: list[RawResource] = []
    diagnostics: list[Diagnostic] = []
    for doc in docs:
        value = doc.value
        if value is None:
            continue  # an empty document (a stray '---') declares nothing
        if not isinstance(value, yamlread.PosDict):
            what = "a list" if isinstance(value, list) else "a single value"
            diagnostics.append(
                _diag(
                    "RS006",
                    f"a document must be a mapping of kinds (storageClass:, volume:, …), "
                    f"not {what}",
                    shown,
                    doc.pos,
                )
            )
            continue
        for key, body in value.items():
            pos = value.key_pos[key]
            if key in SINGULAR:
                items: list[tuple[Any, tuple[int, int]]] = [(body, pos)]
            elif key in PLURAL:
                if not isinstance(body, yamlread.PosList):
                    diagnostics.append(
                        _diag("RS008", f"{key}: must be a list of resources", shown, pos)
                    )
                    continue
                items = list(zip(body, body.item_pos, strict=True))
            else:
                diagnostics.append(_diag("RS007", _unknown_kind(key), shown, pos))
                continue
            kind = SINGULAR.get(key) or PLURAL[key]
            for item, item_pos in items:
                if not isinstance(item, yamlread.PosDict):
                    got = "nothing" if item is None else f"a {_type_name(item)}"
                    diagnostics.append(
                        _diag(
                            "RS008",
                            f"{KIND_KEY[kind]}: must be a mapping of fields, got {got}",
                            shown,
                            item_pos,
                        )
                    )
                    continue
                origin = Origin(shown, item_pos[0], item_pos[1], item)
                resources.append(RawResource(kind, item, origin))
    return resources, diagnostics


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _unknown_kind(key: str) -> str:
    known = [*SINGULAR, *PLURAL]
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown kind {key!r}{hint}; expected one of: {', '.join(known)}"


def find_runefile(root: Path) -> tuple[Path | None, tuple[Path, ...]]:
    """The runefile at ``root`` (first of yaml, yml, toml) and any others beside it."""
    present = tuple(root / n for n in RUNEFILE_NAMES if (root / n).is_file())
    return (present[0] if present else None), present[1:]


def load_directory(
    root: Path,
    *,
    runefile: Path | None = None,
    cwd: Path | None = None,
    cache: ParseCache | None = None,
) -> LoadResult:
    """Load every resource below ``root``. ``runefile`` overrides the one at the root.

    With ``cache``, files whose content did not change since the cache last saw them
    are not parsed again (the result is the same as without it)."""
    cache = cache or ParseCache()
    here = cwd or Path.cwd()
    found, extra = find_runefile(root)
    diagnostics: list[Diagnostic] = []
    chosen = runefile if runefile is not None else found
    if runefile is None and extra and found is not None:
        diagnostics.append(
            Diagnostic(
                code="RS303",
                severity=_warning(),
                message=(
                    f"several runefiles at the source root; using {found.name} and ignoring "
                    + ", ".join(p.name for p in extra)
                ),
                location=Location(file=display_path(found, here)),
            )
        )
    skip = frozenset(root / n for n in RUNEFILE_NAMES) | (
        {runefile} if runefile is not None else set()
    )
    walker = _Walker(root, frozenset(skip), here)
    files = walker.files()
    diagnostics.extend(walker.diagnostics)

    digest = hashlib.sha256()
    resources: list[RawResource] = []
    groups: list[tuple[RawResource, ...]] = []
    shown_files: list[str] = []
    seen: set[tuple[Path, str]] = set()
    for path in files:
        shown = display_path(path, here)
        shown_files.append(shown)
        text, raw, problem = read_text(path, shown)
        digest.update(str(path.relative_to(root)).encode() + b"\0" + raw + b"\0")
        if problem is not None:
            diagnostics.append(problem)
            continue
        assert text is not None
        seen.add((path, shown))
        parsed = cache.parse(path=path, shown=shown, text=text, raw=raw)
        resources.extend(parsed.resources)
        groups.append(parsed.resources)
        diagnostics.extend(parsed.diagnostics)
    cache.keep_only(seen)

    runefile_file: SourceFile | None = None
    if chosen is not None:
        shown = display_path(chosen, here)
        text, raw, problem = read_text(chosen, shown)
        digest.update(b"runefile\0" + raw)
        if problem is not None:
            diagnostics.append(problem)
        else:
            assert text is not None
            runefile_file = SourceFile(chosen, shown, text)
    return LoadResult(
        resources=tuple(resources),
        runefile=runefile_file,
        diagnostics=tuple(diagnostics),
        digest=digest.hexdigest(),
        files=tuple(shown_files),
        groups=tuple(groups),
    )


def _warning() -> Any:
    from rune_sync.diagnostics import Severity

    return Severity.WARNING


def iter_kinds(resources: tuple[RawResource, ...], kind: Kind) -> Iterator[RawResource]:
    return (r for r in resources if r.kind is kind)


def file_is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False
