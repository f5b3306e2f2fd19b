"""``rune-sync watch`` on a git source, as a real process polling a repository served by
``git daemon`` on 127.0.0.1: pushes are followed, the webhook polls at once, history rules
(no rollback, signatures) refuse a commit without ending the loop, an unreachable remote
fails cycles and leaves the storage alone, and a poll where nothing moved fetches nothing.
"""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rune_sync.state.backend import open_backend
from rune_sync.watch.http import signature
from tests import gitserve
from tests.cli.test_watch import SECRET, Watcher, records_of, volume, wait_for, watcher
from tests.conftest import run_cli


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> gitserve.Repo:
    """A served repository holding a runefile and volume ``a``; its cache is private."""
    monkeypatch.setenv("RUNE_SYNC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("RUNE_SYNC_STATE", raising=False)
    served = tmp_path / "served"
    served.mkdir()
    return gitserve.make_repo(served)


@pytest.fixture
def daemon(repo: gitserve.Repo) -> Iterator[str]:
    with gitserve.git_daemon(repo.bare.parent) as url:
        yield url + "repo.git"


def first_files(tmp_path: Path) -> dict[str, str | None]:
    return {
        "runefile.yaml": f"storage:\n  localVolumeRoot: {tmp_path / 'vols'}\n",
        "a.yaml": volume("a"),
    }


def source_commit(state: Path) -> str | None:
    with open_backend(state, create=False) as backend:
        source = backend.meta().source
        return source.commit if source is not None else None


def metrics(base: str) -> dict[str, dict[str, float]]:
    """Counter totals by family name and the label value that matters here."""
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics").text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                label = sample.labels.get("result") or sample.labels.get("outcome", "")
                out.setdefault(family.name, {})[label] = sample.value
    return out


def stop(w: Watcher) -> None:
    w.proc.send_signal(signal.SIGTERM)
    assert w.proc.wait(timeout=20) == 0, w.text()[-3000:]


def test_a_pushed_commit_is_followed_within_the_poll_interval(tmp_path, repo, daemon):
    first = repo.commit(first_files(tmp_path), "Add a")
    repo.push()
    state = tmp_path / "state.db"
    args = ("--state", str(state), "--interval", "200ms")
    with watcher(tmp_path, daemon, *args) as w:
        started = w.next_cycle(0)
        assert (started["result"], started["commit"]) == ("ok", first), started
        assert started["actions"] == {"create": 1}
        assert (tmp_path / "vols" / "prod" / "a").is_dir()

        second = repo.commit({"b.yaml": volume("b")}, "Add b")
        repo.push()
        moved = w.next_cycle(1)
        assert (moved["trigger"], moved["result"], moved["commit"]) == ("poll", "ok", second)
        assert moved["actions"] == {"create": 1} and moved["refresh"] is False
        assert (tmp_path / "vols" / "prod" / "b").is_dir()
        assert source_commit(state) == second

        third = repo.commit({"README.md": "no spec here\n"}, "Docs only")
        repo.push()
        quiet = w.next_cycle(2)
        assert (quiet["result"], quiet["commit"], quiet["actions"]) == ("ok", third, {})
        assert source_commit(state) == third, "a commit with no changes is still recorded"
        start = next(r for r in w.records() if r["event"] == "start")
        assert start["source"] == daemon and start["interval_s"] == 0.2
        stop(w)
    assert set(records_of(state)) == {"volume/prod/a", "volume/prod/b"}


def test_a_poll_where_nothing_moved_fetches_nothing(tmp_path, repo, daemon):
    repo.commit(first_files(tmp_path), "Add a")
    repo.push()
    args = ("--state", str(tmp_path / "state.db"), "--interval", "100ms", "--resync", "0")
    with watcher(tmp_path, daemon, *args, "--listen", "127.0.0.1:0") as w:
        base = w.address("/metrics")
        assert w.next_cycle(0)["result"] == "ok"
        cache = tmp_path / "cache"
        before = {p: p.stat().st_mtime_ns for p in cache.rglob("*")}
        polled = metrics(base)["rune_sync_watch_git_polls"].get("unchanged", 0)
        wait_for(
            "five more polls that found nothing new",
            lambda: metrics(base)["rune_sync_watch_git_polls"].get("unchanged", 0) >= polled + 5,
        )
        assert {p: p.stat().st_mtime_ns for p in cache.rglob("*")} == before
        assert len(w.cycles()) == 1, "no cycle ran"
        assert metrics(base)["rune_sync_watch_cycles"]["ok"] == 1
        stop(w)


def test_a_signed_webhook_polls_and_applies_at_once_despite_a_long_interval(tmp_path, repo, daemon):
    repo.commit(first_files(tmp_path), "Add a")
    repo.push()
    secret_file = tmp_path / "hook.secret"
    secret_file.write_text(SECRET, encoding="utf-8")
    args = (
        *("--state", str(tmp_path / "state.db"), "--interval", "1h"),
        *("--webhook-listen", "127.0.0.1:0", "--webhook-secret-file", str(secret_file)),
    )
    with watcher(tmp_path, daemon, *args) as w:
        url = w.address("/webhook") + "/webhook"
        assert w.next_cycle(0)["result"] == "ok"
        pushed = repo.commit({"b.yaml": volume("b")}, "Add b")
        repo.push()
        body = json.dumps({"ref": "refs/heads/main", "after": pushed}).encode()
        headers = {
            "X-Hub-Signature-256": signature(SECRET.encode(), body),
            "X-GitHub-Event": "push",
        }
        assert httpx.post(url, content=body, headers=headers).status_code == 202
        hooked = w.next_cycle(1)
        assert (hooked["trigger"], hooked["result"], hooked["commit"]) == (
            "webhook",
            "ok",
            pushed,
        )
        assert (tmp_path / "vols" / "prod" / "b").is_dir()
        stop(w)


def _force_push_unrelated(tmp_path: Path, repo: gitserve.Repo) -> str:
    gitserve.git("checkout", "--quiet", "--orphan", "rewritten", cwd=repo.work)
    sha = repo.commit({**first_files(tmp_path), "c.yaml": volume("c")}, "Rewritten history")
    repo.push(force=True, ref="rewritten:main")
    return sha


def test_a_force_push_to_an_unrelated_history_is_refused_until_rollback_is_allowed(
    tmp_path, repo, daemon
):
    applied = repo.commit(first_files(tmp_path), "Add a")
    repo.push()
    state = tmp_path / "state.db"
    args = ("--state", str(state), "--interval", "200ms", "--listen", "127.0.0.1:0")
    with watcher(tmp_path, daemon, *args) as w:
        base = w.address("/healthz")
        assert w.next_cycle(0)["result"] == "ok"
        rewritten = _force_push_unrelated(tmp_path, repo)
        refused = w.next_cycle(1)
        assert refused["result"] == "error" and refused["commit"] == rewritten, refused
        assert applied in refused["error"] and rewritten in refused["error"]
        assert "--allow-rollback" in refused["error"]
        retried = w.next_cycle(2)
        assert retried["trigger"] == "retry" and retried["result"] == "error"
        health = httpx.get(f"{base}/healthz")
        assert health.status_code == 200 and health.json()["status"] == "retrying"
        assert w.proc.poll() is None
        assert source_commit(state) == applied
        assert set(records_of(state)) == {"volume/prod/a"}
        assert not (tmp_path / "vols" / "prod" / "c").exists()
        stop(w)
    with watcher(tmp_path, daemon, *args, "--allow-rollback") as w:
        allowed = w.next_cycle(0)
        assert (allowed["result"], allowed["commit"]) == ("ok", rewritten), allowed
        assert (tmp_path / "vols" / "prod" / "c").is_dir()
        assert source_commit(state) == rewritten
        stop(w)


def test_an_unsigned_commit_is_refused_with_require_signed_and_a_signed_one_converges(
    tmp_path, repo, daemon, gpg_key
):
    signed = repo.commit(first_files(tmp_path), "Add a", sign=gpg_key)
    repo.push()
    state = tmp_path / "state.db"
    args = (
        *("--state", str(state), "--interval", "200ms"),
        *("--require-signed", "--trusted-keys", str(gpg_key.public)),
    )
    with watcher(tmp_path, daemon, *args) as w:
        assert w.next_cycle(0)["commit"] == signed
        unsigned = repo.commit({"b.yaml": volume("b")}, "Sneak b in")
        repo.push()
        refused = w.next_cycle(1)
        assert refused["result"] == "error" and refused["commit"] == unsigned
        assert f"commit {unsigned}" in refused["error"] and "is not signed" in refused["error"]
        assert source_commit(state) == signed
        assert not (tmp_path / "vols" / "prod" / "b").exists()

        repo.reset(signed)
        good = repo.commit({"c.yaml": volume("c")}, "Add c", sign=gpg_key)
        repo.push(force=True)
        converged = wait_for(
            "a good cycle on the signed commit",
            lambda: [c for c in w.cycles() if c["result"] == "ok" and c["commit"] == good],
        )[0]
        assert converged["actions"] == {"create": 1}
        assert source_commit(state) == good
        assert not (tmp_path / "vols" / "prod" / "b").exists()
        stop(w)


def test_an_unreachable_remote_fails_cycles_leaves_storage_alone_and_recovers(tmp_path, repo):
    repo.commit(first_files(tmp_path), "Add a")
    repo.push()
    state = tmp_path / "state.db"
    port = gitserve.free_port()
    served = repo.bare.parent
    args = (
        *("--state", str(state), "--interval", "200ms", "--listen", "127.0.0.1:0"),
        *("--unhealthy-after", "2"),
    )
    with contextlib.ExitStack() as remote:
        remote.enter_context(gitserve.git_daemon(served, port=port))
        with watcher(tmp_path, f"git://127.0.0.1:{port}/repo.git", *args) as w:
            base = w.address("/healthz")
            assert w.next_cycle(0)["result"] == "ok"
            before = records_of(state)
            remote.close()  # the daemon stops: the remote is out of reach

            failed = w.next_cycle(1)
            assert failed["trigger"] == "poll" and failed["result"] == "error", failed
            assert "127.0.0.1" in failed["error"]
            stalled = wait_for(
                "two failed cycles in a row",
                lambda: [c for c in w.cycles() if c.get("failures", 0) >= 2],
            )[0]
            assert stalled["trigger"] == "retry"
            health = httpx.get(f"{base}/healthz")
            assert health.status_code == 503 and health.json()["status"] == "stalled"
            assert w.proc.poll() is None
            assert records_of(state) == before, "nothing was planned against an empty source"
            assert (tmp_path / "vols" / "prod" / "a").is_dir()

            pushed = repo.commit({"b.yaml": volume("b")}, "Add b")
            repo.push()
            remote.enter_context(gitserve.git_daemon(served, port=port))
            back = wait_for(
                "a good cycle once the remote is back",
                lambda: [c for c in w.cycles() if c["result"] == "ok" and c["commit"] == pushed],
            )[0]
            assert back["actions"] == {"create": 1}
            assert (tmp_path / "vols" / "prod" / "b").is_dir()
            assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
            stop(w)


def test_a_remote_out_of_reach_from_the_start_fails_cycles_without_leaking_credentials(
    tmp_path, repo
):
    url = f"http://user:hunter2@127.0.0.1:{gitserve.free_port()}/storage.git"
    with watcher(tmp_path, url, "--state", str(tmp_path / "state.db")) as w:
        failed = w.next_cycle(0)
        assert failed["result"] == "error" and failed["commit"] is None, failed
        assert "127.0.0.1" in failed["error"] and failed["retry_in_s"] == 1.0
        assert w.proc.poll() is None
        stop(w)
    assert "hunter2" not in w.text() and "Traceback" not in w.text()
    assert not (tmp_path / "state.db").exists(), "no state was made from nothing"


def test_a_local_repository_watched_at_a_ref_follows_its_commits(tmp_path, repo):
    first = repo.commit(first_files(tmp_path), "Add a")
    args = ("--ref", "main", "--state", str(tmp_path / "state.db"), "--interval", "200ms")
    with watcher(tmp_path, str(repo.work), *args) as w:
        assert w.next_cycle(0)["commit"] == first
        (repo.work / "b.yaml").write_text(volume("b"), encoding="utf-8")
        second = repo.commit({}, "Add b (committed, not pushed)")
        moved = w.next_cycle(1)
        assert (moved["trigger"], moved["commit"], moved["actions"]) == (
            "poll",
            second,
            {"create": 1},
        )
        stop(w)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--interval", "5s"), "--interval polls a git source"),
        (("--require-signed", "--trusted-keys", "runefile.yaml"), "needs a git source"),
    ],
)
def test_git_only_flags_with_a_directory_source_are_usage_errors(tmp_path, args, message):
    (tmp_path / "runefile.yaml").write_text("storage: {}\n", encoding="utf-8")
    result = run_cli("watch", str(tmp_path), *args, cwd=tmp_path)
    assert result.code == 64, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_zero_interval_on_a_git_source_is_a_usage_error(tmp_path, repo):
    result = run_cli("watch", repo.url, "--interval", "0", cwd=tmp_path)
    assert result.code == 64 and "--interval must be more than 0" in result.stderr
