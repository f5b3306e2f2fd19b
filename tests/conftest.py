"""Shared fixtures: real directories and the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytest_plugins = [
    "tests.pgserver",  # the session PostgreSQL server: pg_server, pg_url
    "tests.gitfixtures",  # repo, daemon, gpg_key, ssh_key, other_*_key, cache_dir
]


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Write ``{relative path: text or bytes}`` below ``root``; returns ``root``."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Callable[[Mapping[str, str | bytes]], Path]:
    """Write files into a fresh source directory and return it."""
    root = tmp_path / "src"
    root.mkdir()
    return lambda files: write_tree(root, files)


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    prefix: tuple[str, ...] = (),
) -> Result:
    """Run the real ``rune-sync`` entry point as a separate process."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "rune_sync", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli() -> Callable[..., Result]:
    return run_cli


@pytest.fixture
def do_api():
    """A fake DigitalOcean API v2 on 127.0.0.1 (see ``tests/fakes/digitalocean.py``).

    Yields the running ``FakeDigitalOcean``: ``.url``, ``.token`` (full access), helpers to
    add tokens and droplets, fault switches and the request log. Stopped afterwards; a bug
    inside the fake fails the test that met it.
    """
    from tests.fakes.digitalocean import FakeDigitalOcean

    fake = FakeDigitalOcean().start()
    try:
        yield fake
    finally:
        fake.stop()
    if fake.internal_errors:
        pytest.fail("the fake DigitalOcean API failed:\n" + "\n".join(fake.internal_errors))
