"""Secrets on the command line: where plan and apply find them, what happens when one is
missing, and that a resolved value is never written anywhere (DESIGN §9, §13).

Every run is a real ``python -m rune_sync`` process on real directories, a real secrets
directory and a real SQLite state. Volumes use the real ``local`` and ``local-host``
drivers. The crash log and a driver that quotes its parameters come from ``canary``, a
test-only driver installed the way any third-party driver is: a module plus a
``*.dist-info`` with an entry point in group ``rune_sync.drivers``, on ``PYTHONPATH``.
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Result
from tests.plan import write_source
from tests.secrets.test_directory import private_dir, put

CANARY = "CANARY-c1i-5ecret-0b7c3a52"
ENV_CANARY = "CANARY-c1i-env-4f3b2b1c"

Cli = Callable[..., Result]


@dataclass
class World:
    tmp: Path
    src: Path
    secrets: Path
    volumes: Path
    state: Path

    def source(self, files: dict[str, str]) -> Path:
        return write_source(
            self.src, {"runefile.yaml": f"storage:\n  localVolumeRoot: {self.volumes}\n", **files}
        )


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(
        tmp=tmp_path,
        src=tmp_path / "src",
        secrets=private_dir(tmp_path / "secrets"),
        volumes=tmp_path / "volumes",
        state=tmp_path / "state" / "state.db",
    )


def volume_with(parameters: str, *, name: str = "web", namespace: str = "prod") -> str:
    return textwrap.dedent(
        f"""\
        volume:
          name: {name}
          namespace: {namespace}
          size: 1Gi
          accessMode: ReadWriteOnce
          parameters: {parameters}
        """
    )


WEB = volume_with('{token: "secret:app/token"}')


def no_env() -> dict[str, str]:
    """Keep the caller's secrets settings out of the child."""
    return {"RUNE_SYNC_SECRETS_DIR": "", "RUNE_SYNC_STATE": ""}


# ------------------------------------------------------------------- missing secrets


def test_plan_names_a_missing_secret_in_every_format_and_exits_1(cli: Cli, world: World):
    src = world.source({"v.yaml": WEB})
    for fmt in ("text", "json", "markdown"):
        run = cli(
            "plan", str(src), "--state", str(world.state), "--secrets-dir", str(world.secrets),
            "--format", fmt, env=no_env(),
        )  # fmt: skip
        assert run.code == 1, run.stderr
        assert run.stdout == ""
        assert (
            "v.yaml:6:16: error[RS401] volume/prod/web: secret:app/token "
            "(secret:app.prod.rune/token) does not resolve: "
            f"no file {world.secrets / 'prod/app/token'}; "
            "no environment variable RUNE_SECRET_PROD_APP_TOKEN; "
            "no secret resource prod/app in the source"
        ) in run.stderr


def test_apply_with_a_missing_secret_stops_before_any_driver_call_or_state(cli: Cli, world: World):
    src = world.source({"v.yaml": WEB, "ok.yaml": volume_with("{}", name="plain")})
    run = cli(
        "apply", str(src), "--state", str(world.state), "--secrets-dir", str(world.secrets),
        "--auto-approve", env=no_env(),
    )  # fmt: skip
    assert run.code == 1
    assert "secret:app/token (secret:app.prod.rune/token) does not resolve" in run.stderr
    assert not world.volumes.exists()  # not even the volume without secrets
    assert not world.state.exists()


def test_a_missing_legacy_token_is_named(cli: Cli, world: World):
    src = world.source(
        {
            "c.yaml": """\
                storageClass:
                  name: do
                  driver: do-volume
                  parameters: {region: nyc3, apiTokenSecretRef: shared/do-api-token}
                ---
                volume: {name: cloud, namespace: prod, storageClassName: do, size: 1Gi,
                         accessMode: ReadWriteOnce}
            """
        }
    )
    run = cli("plan", str(src), "--state", str(world.state), env=no_env())
    assert run.code == 1
    assert (
        "c.yaml:4:30: error[RS401] storageclass/do: apiTokenSecretRef shared/do-api-token "
        "(secret:do-api-token.shared.rune/token) does not resolve: no secrets directory "
        "(--secrets-dir or RUNE_SYNC_SECRETS_DIR)"
    ) in run.stderr
    assert "(needed by volume/prod/cloud)" in run.stderr


def test_a_saved_plan_whose_secret_went_away_is_refused_before_any_driver_call(
    cli: Cli, world: World
):
    src = world.source({"v.yaml": WEB})
    put(world.secrets, "prod/app/token", CANARY)
    saved = world.tmp / "web.plan"
    args = ("--state", str(world.state), "--secrets-dir", str(world.secrets))
    planned = cli("plan", str(src), *args, "--out", str(saved), env=no_env())
    assert planned.code == 0, planned.stderr
    (world.secrets / "prod/app/token").unlink()
    run = cli("apply", str(saved), *args, "--auto-approve", env=no_env())
    assert run.code == 1
    assert "secret:app/token (secret:app.prod.rune/token) does not resolve" in run.stderr
    assert not world.volumes.exists()


def test_refresh_resolves_recorded_references_and_names_one_that_went_away(cli: Cli, world: World):
    # The volume left the source (so the desired state needs no secret), but refresh
    # still hands its driver the recorded parameters, resolved.
    src = world.source({"v.yaml": WEB, "keep.yaml": volume_with("{}", name="keep")})
    put(world.secrets, "prod/app/token", CANARY)
    args = ("--state", str(world.state), "--secrets-dir", str(world.secrets))
    assert cli("apply", str(src), *args, "--auto-approve", env=no_env()).code == 0
    (src / "v.yaml").unlink()
    assert cli("plan", str(src), *args, env=no_env()).code == 0
    (world.secrets / "prod/app/token").unlink()
    run = cli("plan", str(src), *args, env=no_env())
    assert run.code == 1
    assert (
        "refresh of volume/prod/web failed: secret:app/token (secret:app.prod.rune/token) "
        "does not resolve"
    ) in run.stderr
    assert cli("plan", str(src), *args, "--refresh=false", env=no_env()).code == 0


# ------------------------------------------------------------------- where secrets come from


def plan_ok(cli: Cli, world: World, *args: str, env: dict[str, str] | None = None) -> Result:
    src = world.source({"v.yaml": WEB})
    run = cli("plan", str(src), "--state", str(world.state), *args, env={**no_env(), **(env or {})})
    assert run.code == 0, run.stderr
    assert "+ volume/prod/web" in run.stdout
    return run


def test_secrets_dir_flag(cli: Cli, world: World):
    put(world.secrets, "prod/app/token", CANARY)
    plan_ok(cli, world, "--secrets-dir", str(world.secrets))


def test_rune_sync_secrets_dir_variable(cli: Cli, world: World):
    put(world.secrets, "prod/app/token", CANARY)
    plan_ok(cli, world, env={"RUNE_SYNC_SECRETS_DIR": str(world.secrets)})


def test_the_flag_wins_over_rune_sync_secrets_dir(cli: Cli, world: World):
    put(world.secrets, "prod/app/token", CANARY)
    empty = private_dir(world.tmp / "empty")
    plan_ok(
        cli, world, "--secrets-dir", str(world.secrets), env={"RUNE_SYNC_SECRETS_DIR": str(empty)}
    )
    src = world.source({"v.yaml": WEB})
    run = cli(
        "plan", str(src), "--state", str(world.state), "--secrets-dir", str(empty),
        env={"RUNE_SYNC_SECRETS_DIR": str(world.secrets)},
    )  # fmt: skip
    assert run.code == 1
    assert f"no file {empty / 'prod/app/token'}" in run.stderr


def test_rune_secret_environment_variable(cli: Cli, world: World):
    plan_ok(cli, world, env={"RUNE_SECRET_PROD_APP_TOKEN": ENV_CANARY})


def test_secret_resource_in_the_source_is_used_and_warned_about(cli: Cli, world: World):
    src = world.source(
        {
            "v.yaml": WEB,
            "s.yaml": f"secret: {{name: app, namespace: prod, data: {{token: {CANARY}}}}}\n",
        }
    )
    run = cli("plan", str(src), "--state", str(world.state), env=no_env())
    assert run.code == 0, run.stderr
    assert "warning[RS230] secret/prod/app" in run.stderr
    assert CANARY not in run.stdout + run.stderr


def host_path_world(world: World) -> tuple[Path, dict[str, Path]]:
    """A local-host volume whose hostPath is a secret; three candidate directories."""
    allowed = world.tmp / "allowed"
    dirs = {origin: allowed / f"from-{origin}" for origin in ("dir", "env", "source")}
    for d in dirs.values():
        d.mkdir(parents=True)
    src = write_source(
        world.src,
        {
            "runefile.yaml": f"storage:\n  hostPathAllowlist: [{allowed}]\n",
            "v.yaml": """\
                volume:
                  name: data
                  namespace: prod
                  storageClassName: local-host
                  size: 1Gi
                  accessMode: ReadWriteOnce
                  parameters: {hostPath: "secret:paths/data"}
            """,
            "s.yaml": (
                f"secret: {{name: paths, namespace: prod, data: {{data: {dirs['source']}}}}}\n"
            ),
        },
    )
    return src, dirs


@pytest.mark.parametrize(
    ("in_dir", "in_env", "expected"),
    [(True, True, "dir"), (False, True, "env"), (False, False, "source")],
    ids=["directory-first", "then-environment", "then-source"],
)
def test_directory_then_environment_then_source(
    cli: Cli, world: World, in_dir: bool, in_env: bool, expected: str
):
    src, dirs = host_path_world(world)
    if in_dir:
        put(world.secrets, "prod/paths/data", f"{dirs['dir']}\n")
    env = {**no_env(), "RUNE_SYNC_SECRETS_DIR": str(world.secrets)}
    if in_env:
        env["RUNE_SECRET_PROD_PATHS_DATA"] = str(dirs["env"])
    run = cli("apply", str(src), "--state", str(world.state), "--auto-approve", env=env)
    assert run.code == 0, run.stdout + run.stderr
    # The real local-host driver provisioned the directory the winning source named.
    assert f"created ({dirs[expected]})" in run.stdout + run.stderr


def test_one_variable_serving_two_namespaces_is_warned_about(cli: Cli, world: World):
    src = world.source(
        {
            "v.yaml": volume_with('{t: "secret:c/k"}', namespace="a-b")
            + "---\n"
            + volume_with('{t: "secret:b-c/k"}', namespace="a")
        }
    )
    run = cli(
        "plan",
        str(src),
        "--state",
        str(world.state),
        env={**no_env(), "RUNE_SECRET_A_B_C_K": ENV_CANARY},
    )
    assert run.code == 0, run.stderr
    assert "warning[RS404] environment variable RUNE_SECRET_A_B_C_K serves both" in run.stderr
    assert ENV_CANARY not in run.stdout + run.stderr


def test_a_secrets_directory_open_to_others_is_warned_about_once(cli: Cli, world: World):
    world.secrets.chmod(0o755)
    put(world.secrets, "prod/app/token", CANARY, mode=0o644)
    run = plan_ok(cli, world, "--secrets-dir", str(world.secrets))
    assert run.stderr.count("warning[RS403]") == 1
    assert f"chmod -R go-rwx {world.secrets}" in run.stderr


@pytest.fixture
def applied_then_removed(cli: Cli, world: World) -> tuple[Path, tuple[str, ...]]:
    """(source, flags): web applied with its token from a private secrets directory, then
    removed from the source, and the directory opened to others (RS403) — a warning
    that only resolving the recorded reference meets."""
    src = world.source(
        {"v.yaml": WEB + "  reclaimPolicy: delete\n", "keep.yaml": volume_with("{}", name="keep")}
    )
    put(world.secrets, "prod/app/token", CANARY)
    args = ("--state", str(world.state), "--secrets-dir", str(world.secrets))
    first = cli("apply", str(src), *args, "--auto-approve", env=no_env())
    assert first.code == 0, first.stderr
    assert "RS403" not in first.stderr
    (src / "v.yaml").unlink()
    world.secrets.chmod(0o755)
    (world.secrets / "prod/app/token").chmod(0o644)
    return src, (*args, "--auto-approve", "--allow-destroy", "--no-snapshot-before-destroy")


def test_a_warning_first_met_by_an_apply_call_is_printed_once(
    cli: Cli, world: World, applied_then_removed
):
    src, args = applied_then_removed
    run = cli("apply", str(src), *args, "--refresh=false", env=no_env())
    assert run.code == 0, run.stderr
    assert run.stderr.count("warning[RS403]") == 1
    assert "volume/prod/web: " in run.stderr.split("warning[RS403]")[0].splitlines()[-1]
    assert CANARY not in run.stdout + run.stderr


def test_a_warning_first_met_by_an_apply_call_is_one_json_note(
    cli: Cli, world: World, applied_then_removed
):
    src, args = applied_then_removed
    run = cli("apply", str(src), *args, "--refresh=false", "--format", "json", env=no_env())
    assert run.code == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    notes = [e for e in events if e["event"] == "note" and "RS403" in e["message"]]
    assert len(notes) == 1
    assert notes[0]["address"] == "volume/prod/web"
    assert notes[0]["action"] == "destroy"
    assert "RS403" not in run.stderr
    assert CANARY not in run.stdout + run.stderr


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_a_warning_first_met_by_refresh_is_printed_once(
    cli: Cli, world: World, applied_then_removed, command
):
    src, args = applied_then_removed
    run = cli(command, str(src), *(args if command == "apply" else args[:4]), env=no_env())
    assert run.code == 0, run.stderr
    assert run.stderr.count("warning[RS403]") == 1
    assert CANARY not in run.stdout + run.stderr


# ------------------------------------------------------------------- never written anywhere


def all_bytes(*paths: Path) -> Iterator[tuple[Path, bytes]]:
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file():
                    yield child, child.read_bytes()
        elif path.exists():
            yield path, path.read_bytes()


def assert_nowhere(runs: list[Result], *paths: Path, values: tuple[str, ...]) -> None:
    for run in runs:
        for value in values:
            assert value not in run.stdout, run.stdout
            assert value not in run.stderr, run.stderr
    for path, data in all_bytes(*paths):
        for value in values:
            assert value.encode() not in data, path


def test_a_resolved_value_is_in_no_output_state_or_plan_file(cli: Cli, world: World):
    src = world.source(
        {
            "v.yaml": volume_with('{token: "secret:app/token", other: "secret:tok.shared.rune/k"}')
            + "---\n"
            + volume_with('{token: "secret:app/token"}', name="db")
            + "---\nsnapshot: {name: web-snap, namespace: prod, source: {volume: web}}\n"
        }
    )
    put(world.secrets, "prod/app/token", CANARY + "\n")
    env = {**no_env(), "RUNE_SECRET_SHARED_TOK_K": ENV_CANARY}
    common = ("--state", str(world.state), "--secrets-dir", str(world.secrets))
    saved = world.tmp / "plans" / "web.plan"
    saved.parent.mkdir()
    runs: list[Result] = []
    for fmt in ("text", "json"):
        runs.append(cli("validate", str(src), "--format", fmt, env=env))
    for fmt in ("text", "json", "markdown"):
        runs.append(cli("plan", str(src), *common, "--format", fmt, env=env))
    runs.append(cli("plan", str(src), *common, "--out", str(saved), env=env))
    runs.append(cli("show", str(saved), "--format", "json", env=env))
    runs.append(cli("apply", str(saved), *common, "--auto-approve", env=env))
    # Grow the volume (an update calls the driver with resolved parameters again).
    (src / "v.yaml").write_text((src / "v.yaml").read_text().replace("1Gi", "2Gi", 1))
    runs.append(cli("apply", str(src), *common, "--auto-approve", "--format", "json", env=env))
    runs.append(cli("apply", str(src), *common, "--auto-approve", env=env))
    for fmt in ("text", "json"):
        runs.append(cli("state", "list", "--state", str(world.state), "--format", fmt, env=env))
    runs.append(cli("state", "pull", "--state", str(world.state), env=env))
    assert all(r.code == 0 for r in runs), [(r.code, r.stderr) for r in runs if r.code]
    assert "+ volume/prod/web" in runs[2].stdout  # it really planned
    assert (world.volumes / "prod" / "web").is_dir()  # and really applied
    assert json.loads(runs[-1].stdout)  # the state is readable and holds records
    assert_nowhere(runs, world.state.parent, saved, values=(CANARY, ENV_CANARY))


def test_a_failing_real_driver_call_quoting_the_secret_shows_only_a_mask(cli: Cli, world: World):
    # local-host quotes the hostPath it refuses; here the hostPath is a secret outside
    # the allowlist, so the real driver's error would carry the value.
    secret_path = f"/srv/{CANARY}"
    src = write_source(
        world.src,
        {
            "runefile.yaml": f"storage:\n  hostPathAllowlist: [{world.tmp / 'allowed'}]\n",
            "v.yaml": """\
                volume:
                  name: data
                  namespace: prod
                  storageClassName: local-host
                  size: 1Gi
                  accessMode: ReadWriteOnce
                  parameters: {hostPath: "secret:paths/data"}
            """,
        },
    )
    put(world.secrets, "prod/paths/data", secret_path)
    common = ("--state", str(world.state), "--secrets-dir", str(world.secrets), "--auto-approve")
    runs = [
        cli("apply", str(src), *common, env=no_env()),
        cli("apply", str(src), *common, "--format", "json", env=no_env()),
        cli("state", "show", "volume/prod/data", "--state", str(world.state), env=no_env()),
    ]
    assert [r.code for r in runs] == [1, 1, 0]
    assert "local-host: hostPath *** is not under" in runs[0].stdout + runs[0].stderr
    assert_nowhere(runs, world.state.parent, values=(CANARY,))


# ------------------------------------------------------------------- the canary plugin driver

PLUGIN = '''\
"""A test-only driver: proves what it received without keeping it, fails on demand."""

import hashlib
from pathlib import Path

from rune_sync import errors
from rune_sync.drivers.base import Observation, ObservedKind
from rune_sync.spec.model import AccessMode, Capabilities


class CanaryDriver:
    CAPABILITIES = Capabilities(access_modes=frozenset({AccessMode.READ_WRITE_ONCE}))

    def __init__(self, *, settings):
        self.settings = settings

    name = "canary"
    capabilities = CAPABILITIES

    def provision(self, ctx, request):
        token = ctx.parameters["token"]
        Path(ctx.parameters["proof"]).write_text(hashlib.sha256(token.encode()).hexdigest())
        mode = ctx.parameters.get("mode")
        if mode == "fail":
            raise errors.DriverConfigError(
                f"canary: token {token} was rejected", driver="canary", operation="provision"
            )
        if mode == "crash":
            raise RuntimeError(f"canary blew up holding {token}")
        return f"canary:{request.namespace}/{request.name}"

    def observe(self, ctx, handle):
        return Observation(kind=ObservedKind.BLOCK_VOLUME)

    def delete(self, ctx, handle):
        pass
'''


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    site = tmp_path / "plugin-site"
    dist = site / "canary_driver-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "canary_driver.py").write_text(PLUGIN, encoding="utf-8")
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: canary-driver\nVersion: 0.1\n", encoding="utf-8"
    )
    (dist / "entry_points.txt").write_text(
        "[rune_sync.drivers]\ncanary = canary_driver:CanaryDriver\n", encoding="utf-8"
    )
    return site


def canary_source(world: World, mode: str) -> Path:
    proof = world.tmp / "proof.txt"
    return world.source(
        {
            "c.yaml": f"""\
                storageClass:
                  name: canary
                  driver: canary
                  parameters:
                    token: "secret:canary-token.shared.rune/token"
                    mode: {mode}
                    proof: {proof}
                ---
                volume: {{name: web, namespace: prod, storageClassName: canary, size: 1Gi,
                         accessMode: ReadWriteOnce}}
            """
        }
    )


def canary_env(plugin: Path, world: World) -> dict[str, str]:
    return {**no_env(), "PYTHONPATH": str(plugin), "TMPDIR": str(world.tmp / "debug")}


@pytest.mark.parametrize("mode", ["ok", "fail"])
def test_a_third_party_driver_gets_the_plaintext_and_its_errors_are_masked(
    cli: Cli, world: World, plugin: Path, mode: str
):
    src = canary_source(world, mode)
    put(world.secrets, "shared/canary-token/token", CANARY)
    env = canary_env(plugin, world)
    common = ("--state", str(world.state), "--secrets-dir", str(world.secrets), "--auto-approve")
    runs = [cli("apply", str(src), *common, "--format", fmt, env=env) for fmt in ("text", "json")]
    proof = (world.tmp / "proof.txt").read_text()
    assert proof == hashlib.sha256(CANARY.encode()).hexdigest()  # the driver got the value
    if mode == "ok":
        assert [r.code for r in runs] == [0, 0], runs[0].stderr
    else:
        assert [r.code for r in runs] == [1, 1]
        assert "canary: token *** was rejected" in runs[0].stdout + runs[0].stderr
        assert "canary: token *** was rejected" in runs[1].stdout
    assert_nowhere(runs, world.state.parent, values=(CANARY,))


def test_the_crash_debug_log_of_a_driver_bug_holds_no_secret(cli: Cli, world: World, plugin: Path):
    src = canary_source(world, "crash")
    put(world.secrets, "shared/canary-token/token", CANARY)
    (world.tmp / "debug").mkdir()
    run = cli(
        "apply", str(src), "--state", str(world.state), "--secrets-dir", str(world.secrets),
        "--auto-approve", env=canary_env(plugin, world),
    )  # fmt: skip
    assert run.code == 1
    match = re.search(r"Details were written to (\S+)", run.stderr)
    assert match, run.stderr
    log = Path(match.group(1))
    assert log.parent == world.tmp / "debug"
    text = log.read_text(encoding="utf-8")
    assert "RuntimeError: canary blew up holding ***" in text
    assert_nowhere([run], log, world.state.parent, values=(CANARY,))
