"""Triggers push requests into the inbox: real inotify events, a real timer."""

from __future__ import annotations

import io
import time
from pathlib import Path

import watchfiles

from rune_sync.watch.logs import Log
from rune_sync.watch.loop import Inbox, Request, Trigger
from rune_sync.watch.triggers import FileChanges, Periodic


def first(inbox: Inbox, *, timeout: float = 10.0) -> list[Request]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = inbox.take(timeout=0.1)
        if got:
            return got
    raise AssertionError("no request arrived")


def files(root: Path, inbox: Inbox) -> FileChanges:
    return FileChanges(
        root=root, inbox=inbox, log=Log(io.StringIO()), clock=time.monotonic, debounce=0.05
    )


def test_only_paths_that_can_change_the_source_are_relevant(tmp_path):
    watcher = files(tmp_path, Inbox())
    added, deleted = watchfiles.Change.added, watchfiles.Change.deleted
    assert watcher.relevant(added, str(tmp_path / "vols" / "a.yaml"))
    assert watcher.relevant(added, str(tmp_path / "runefile.toml"))
    assert watcher.relevant(deleted, str(tmp_path / "old-folder"))
    assert not watcher.relevant(added, str(tmp_path / "new-folder"))
    assert not watcher.relevant(added, str(tmp_path / ".rune-sync" / "state.db"))
    assert not watcher.relevant(added, str(tmp_path / ".git" / "x.yaml"))
    assert not watcher.relevant(added, str(tmp_path / "vols" / ".a.yaml.swp"))
    assert not watcher.relevant(added, str(tmp_path / "state.db-wal"))
    assert not watcher.relevant(added, str(tmp_path.parent / "elsewhere.yaml"))


def test_a_saved_file_becomes_one_change_request(tmp_path):
    inbox = Inbox()
    watcher = files(tmp_path, inbox)
    watcher.start()
    try:
        # The watch starts in its thread: write until the first event is seen.
        deadline = time.monotonic() + 10
        got: list[Request] = []
        while not got and time.monotonic() < deadline:
            (tmp_path / "a.yaml").write_text(f"# {time.monotonic()}\n", encoding="utf-8")
            got = inbox.take(timeout=0.2)
        assert got and got[0].trigger is Trigger.CHANGE and "a.yaml" in got[0].detail
        (tmp_path / ".hidden.yaml").write_text("x\n", encoding="utf-8")
        (tmp_path / "b.yml").write_text("x\n", encoding="utf-8")
        later = first(inbox)
        assert all(".hidden" not in r.detail for r in later)
        assert "b.yml" in later[-1].detail
    finally:
        watcher.close()


def test_periodic_pushes_its_trigger_and_a_check_can_hold_it_back_or_fail(tmp_path):
    inbox = Inbox()
    out = io.StringIO()
    answers = iter([None, OSError("remote out of reach"), "moved"])

    def check() -> str | None:
        answer = next(answers, None)
        if isinstance(answer, Exception):
            raise answer
        return answer

    ticker = Periodic(
        every=0.05,
        trigger=Trigger.RESYNC,
        inbox=inbox,
        log=Log(out, fmt="json"),
        clock=time.monotonic,
        check=check,
    )
    ticker.start()
    try:
        [request] = first(inbox)
        assert request.trigger is Trigger.RESYNC and request.detail == "moved"
    finally:
        ticker.close()
    assert '"error": "remote out of reach"' in out.getvalue()
