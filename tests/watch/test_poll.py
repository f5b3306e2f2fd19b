"""The git poller against a real repository (file://): it wakes a cycle only when the
ref moved, announces a commit once, and turns the remote going away and coming back
into one cycle each."""

from __future__ import annotations

from pathlib import Path

from rune_sync.watch.poll import GitPoll, Outcome
from tests import gitserve


class Loaded:
    """What the poller asks: the commit the last cycle loaded."""

    def __init__(self) -> None:
        self.commit: str | None = None

    def __call__(self) -> str | None:
        return self.commit


def poller(url: str, loaded: Loaded, counted: list[Outcome]) -> GitPoll:
    return GitPoll(url=url, ref="main", timeout=30, loaded=loaded, count=counted.append)


def test_a_poll_wakes_a_cycle_only_when_the_ref_moved(tmp_path: Path) -> None:
    repo = gitserve.make_repo(tmp_path)
    first = repo.commit({"a.yaml": "x: 1\n"})
    repo.push()
    loaded, counted = Loaded(), []
    check = poller(repo.url, loaded, counted)
    assert check() is None, "before any cycle loaded a commit, the start cycle serves it"
    loaded.commit = first
    assert check() is None
    second = repo.commit({"a.yaml": "x: 2\n"})
    repo.push()
    assert check() == second
    assert check() is None, "a commit is announced once, even if its cycle failed"
    loaded.commit = second
    assert check() is None
    assert (
        counted == [Outcome.UNCHANGED, Outcome.UNCHANGED, Outcome.MOVED] + [Outcome.UNCHANGED] * 2
    )


def test_a_remote_going_away_and_coming_back_wakes_one_cycle_each(tmp_path: Path) -> None:
    repo = gitserve.make_repo(tmp_path)
    sha = repo.commit({"a.yaml": "x: 1\n"})
    repo.push()
    loaded, counted = Loaded(), []
    loaded.commit = sha
    check = poller(repo.url, loaded, counted)
    assert check() is None
    hidden = repo.bare.rename(tmp_path / "elsewhere.git")
    away = check()
    assert away is not None and away.startswith("unreachable: ")
    assert check() is None, "the failed cycle's backoff retries from here"
    hidden.rename(repo.bare)
    assert check() == f"reachable again: {sha}"
    assert check() is None
    assert counted == [
        Outcome.UNCHANGED,
        Outcome.UNREACHABLE,
        Outcome.UNREACHABLE,
        Outcome.MOVED,
        Outcome.UNCHANGED,
    ]
