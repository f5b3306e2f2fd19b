"""Apply with the real resolver: drivers get plaintext, nothing else ever does.

The real engine, planner and refresh, a real SQLite state and the real local driver
behind :class:`tests.apply.Flaky` (registered explicitly as ``local``), whose hooks see
each call's :class:`OpContext` — that is how a driver that quotes its parameters in an
error is played. Secrets come from a real secrets directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rune_sync import errors
from rune_sync.apply import engine
from rune_sync.apply.events import Phase
from rune_sync.drivers.base import OpContext
from rune_sync.plan.model import Action
from rune_sync.secrets import GuardedDrivers, Resolver
from tests.apply import FAST, Collect, Env, Flaky, docs, make_env, snapshot
from tests.secrets.test_directory import private_dir, put

CANARY = "CANARY-4pply-5ecret-9f1c"
PINNED = "CANARY-4pply-p1nned-77ab"

VOLUME = """\
volume:
  name: web
  namespace: prod
  size: 1Gi
  accessMode: ReadWriteOnce
  parameters:
    token: "secret:app/token"
    pinned: "secret:tok.shared.rune/token"
    region: nyc3
"""


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    root = private_dir(tmp_path / "secrets")
    put(root, "prod/app/token", CANARY + "\n")
    put(root, "shared/tok/token", PINNED + "\n")
    return root


def state_bytes(env: Env) -> bytes:
    """Every file of the state's folder: the database, its WAL and the lock sidecar."""
    env.backend.close()
    return b"".join(p.read_bytes() for p in sorted(env.state_path.parent.iterdir()))


def run(env: Env, files: dict[str, str], driver: Flaky, resolver: Resolver) -> tuple[Any, Collect]:
    planned = env.plan(files)
    events = Collect()
    result = engine.execute(
        planned.plan,
        backend=env.backend,
        drivers=GuardedDrivers(lambda name: {"local": driver}[name], resolver.redactor).get,
        reporter=events,
        settings=FAST,
        source=planned.source,
        resolve=resolver,
        clock=env.clock,
    )
    return result, events


def seen_by(driver: Flaky, *operations: str) -> list[dict[str, str]]:
    """A hook per operation that keeps the parameters the driver was called with."""
    seen: list[dict[str, str]] = []

    def keep(ctx: OpContext, request: Any) -> None:
        seen.append(dict(ctx.parameters))

    for operation in operations:
        driver.before[operation] = keep
    return seen


def everything_shown(events: Collect, result: Any) -> str:
    return "\n".join([e.message for e in events.events] + [o.message for o in result.outcomes])


def test_the_driver_gets_plaintext_in_the_volumes_namespace_and_the_state_keeps_references(
    env, secrets_dir
):
    driver = Flaky(env.driver)
    seen = seen_by(driver, "provision", "snapshot")
    resolver = Resolver.from_sources(secrets_dir=secrets_dir, environ={})
    files = {"v.yaml": docs(VOLUME, snapshot("web-snap", "web"))}
    result, events = run(env, files, driver, resolver)
    assert result.ok, everything_shown(events, result)
    resolved = {"token": CANARY, "pinned": PINNED, "region": "nyc3"}
    assert seen == [resolved, resolved]  # the volume, then its snapshot (same namespace)
    record = env.record("volume/prod/web")
    assert dict(record.driver_parameters) == {
        "token": "secret:app/token",
        "pinned": "secret:tok.shared.rune/token",
        "region": "nyc3",
    }
    assert CANARY not in everything_shown(events, result)
    data = state_bytes(env)
    assert CANARY.encode() not in data
    assert PINNED.encode() not in data
    assert b"secret:app/token" in data


def test_a_driver_error_quoting_the_secret_reaches_nobody(env, secrets_dir):
    driver = Flaky(env.driver)

    def quote(ctx: OpContext, request: Any) -> None:
        raise errors.DriverConfigError(
            f"token {ctx.parameters['token']} rejected", driver="local", operation="provision"
        )

    driver.before["provision"] = quote
    resolver = Resolver.from_sources(secrets_dir=secrets_dir, environ={})
    result, events = run(env, {"v.yaml": VOLUME}, driver, resolver)
    assert not result.ok
    (failed,) = result.failed
    assert failed.message == "token *** rejected"
    assert events.of("volume/prod/web", Phase.FAILED)[0].message == "token *** rejected"
    assert env.record("volume/prod/web").failure_message == "token *** rejected"
    assert CANARY.encode() not in state_bytes(env)


def test_retry_events_of_a_transient_error_quoting_the_secret_are_clean(env, secrets_dir):
    driver = Flaky(env.driver)
    calls: list[int] = []

    def flaky(ctx: OpContext, request: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise errors.DriverTransientError(
                f"503 with Authorization: Bearer {ctx.parameters['token']}",
                driver="local",
                operation="provision",
            )

    driver.before["provision"] = flaky
    resolver = Resolver.from_sources(secrets_dir=secrets_dir, environ={})
    result, events = run(env, {"v.yaml": VOLUME}, driver, resolver)
    assert result.ok
    (retry,) = events.of("volume/prod/web", Phase.RETRY)
    assert "Bearer ***" in retry.message
    assert CANARY not in everything_shown(events, result)


def test_a_secret_missing_at_apply_time_fails_the_resource_before_its_driver_call(env, tmp_path):
    driver = Flaky(env.driver)
    empty = private_dir(tmp_path / "empty-secrets")
    resolver = Resolver.from_sources(secrets_dir=empty, environ={})
    result, _ = run(env, {"v.yaml": VOLUME}, driver, resolver)
    (failed,) = result.failed
    assert failed.action is Action.CREATE
    assert failed.message.startswith(
        "secret:app/token (secret:app.prod.rune/token) does not resolve: "
        f"no file {empty / 'prod/app/token'}"
    )
    assert driver.count("provision") == 0
    assert env.volume_dirs() == set()
    assert env.record("volume/prod/web").status == "Failed"


def test_the_shorthand_follows_the_volume_into_its_own_namespace(env, secrets_dir):
    # The secret exists in prod only: the dev volume's shorthand must not find it.
    driver = Flaky(env.driver)
    resolver = Resolver.from_sources(secrets_dir=secrets_dir, environ={})
    dev = VOLUME.replace("namespace: prod", "namespace: dev").replace(
        '    pinned: "secret:tok.shared.rune/token"\n', ""
    )
    result, _ = run(env, {"v.yaml": dev}, driver, resolver)
    (failed,) = result.failed
    assert str(failed.address) == "volume/dev/web"
    assert "secret:app/token (secret:app.dev.rune/token) does not resolve" in failed.message


def test_destroy_resolves_the_recorded_references(env, secrets_dir):
    driver = Flaky(env.driver)
    seen = seen_by(driver, "delete")
    resolver = Resolver.from_sources(secrets_dir=secrets_dir, environ={})
    deletable = VOLUME.replace("  accessMode:", "  reclaimPolicy: delete\n  accessMode:")
    keeper = "volume: {name: keep, namespace: prod, size: 1Gi, accessMode: ReadWriteOnce}\n"
    assert run(env, {"v.yaml": deletable, "k.yaml": keeper}, driver, resolver)[0].ok
    planned = env.plan({"k.yaml": keeper}, allow_destroy=True)
    assert [c.action for c in planned.plan.changes if c.action is not Action.NOOP] == [
        Action.DESTROY
    ]
    result = engine.execute(
        planned.plan,
        backend=env.backend,
        drivers=GuardedDrivers(lambda name: driver, resolver.redactor).get,
        reporter=Collect(),
        settings=FAST,
        resolve=resolver,
        clock=env.clock,
    )
    assert result.ok
    assert seen == [{"token": CANARY, "pinned": PINNED, "region": "nyc3"}]
