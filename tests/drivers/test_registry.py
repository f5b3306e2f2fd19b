"""The driver registry: entry-point discovery, declared drivers, refusals, broken plugins.

Third-party plugins are real distributions: a ``*.dist-info`` with ``entry_points.txt``
and a module, written to a directory put on ``sys.path``, which is exactly how
``importlib.metadata`` finds installed packages.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rune_sync import errors
from rune_sync.drivers import do_volume
from rune_sync.drivers.base import Driver
from rune_sync.drivers.do_volume.driver import DoVolumeDriver
from rune_sync.drivers.local import LocalDriver
from rune_sync.drivers.local_host import LocalHostDriver
from rune_sync.drivers.registry import DriverRegistry
from rune_sync.spec.model import StorageSettings

Install = Callable[[str, dict[str, str], dict[str, str]], None]

WORKING_PLUGIN = """
from rune_sync.drivers.local import LocalDriver

class EchoDriver(LocalDriver):
    NAME = "echo"
"""


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    site = tmp_path / "site"
    site.mkdir()
    modules: list[str] = []

    def install(dist: str, entry_points: dict[str, str], files: dict[str, str]) -> None:
        info = site / f"{dist}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[rune_sync.drivers]\n{lines}")
        for module, source in files.items():
            (site / f"{module}.py").write_text(source)
            modules.append(module)
        monkeypatch.syspath_prepend(str(site))

    yield install
    for module in modules:
        sys.modules.pop(module, None)


def settings(tmp_path: Path) -> StorageSettings:
    return StorageSettings(local_volume_root=tmp_path / "volumes")


def test_built_ins_come_from_the_entry_point_group(tmp_path):
    registry = DriverRegistry.from_entry_points(settings(tmp_path))
    rows = {info.name: info for info in registry.drivers()}
    assert rows["local"].source.startswith("entry point local = rune_sync.drivers.local:")
    assert rows["local-host"].implemented and rows["local"].implemented
    assert isinstance(registry.get("local"), LocalDriver)
    assert isinstance(registry.get("local-host"), LocalHostDriver)


def test_get_builds_once_with_the_settings(tmp_path):
    registry = DriverRegistry.from_entry_points(settings(tmp_path))
    driver = registry.get("local")
    assert registry.get("local") is driver
    from rune_sync.drivers.base import OpContext, ProvisionRequest
    from rune_sync.spec.model import AccessMode
    from rune_sync.spec.quantity import Quantity

    request = ProvisionRequest(
        name="v", namespace="ns", size=Quantity(1), access_mode=AccessMode.READ_WRITE_ONCE
    )
    assert driver.provision(OpContext(), request) == str(tmp_path / "volumes" / "ns" / "v")


def test_capabilities_are_declared_without_building_any_driver(tmp_path):
    built: list[str] = []

    class Counting(LocalDriver):
        def __init__(self, *, settings: StorageSettings) -> None:
            built.append("counting")
            super().__init__(settings=settings)

    registry = DriverRegistry.from_factories({"local": Counting}, settings(tmp_path))
    caps = registry.capabilities()
    assert caps["local"] == LocalDriver.CAPABILITIES
    assert caps["do-volume"] == do_volume.CAPABILITIES
    assert built == []
    registry.get("local")
    assert built == ["counting"]


def test_do_volume_is_installed_through_its_entry_point(tmp_path):
    registry = DriverRegistry.from_entry_points(settings(tmp_path))
    row = {info.name: info for info in registry.drivers()}["do-volume"]
    assert (row.implemented, row.capabilities) == (True, do_volume.CAPABILITIES)
    assert isinstance(registry.get("do-volume"), DoVolumeDriver)


def test_a_declared_driver_without_an_implementation_refuses_to_be_built(tmp_path):
    # A registry without the do-volume entry point still knows its declaration, so specs
    # naming it validate, but using it is refused.
    registry = DriverRegistry.from_factories({"local": LocalDriver}, settings(tmp_path))
    row = {info.name: info for info in registry.drivers()}["do-volume"]
    assert (row.implemented, row.capabilities) == (False, do_volume.CAPABILITIES)
    with pytest.raises(errors.UnsupportedOperation) as info:
        registry.get("do-volume")
    assert str(info.value).startswith("driver do-volume is not available in this version")


def test_unknown_driver_names_the_known_ones(tmp_path):
    registry = DriverRegistry.from_entry_points(settings(tmp_path))
    with pytest.raises(errors.DriverConfigError, match=r"no driver named 'nfs' \(known: do-volume"):
        registry.get("nfs")


def test_drivers_listing_is_a_plain_json_view(tmp_path):
    registry = DriverRegistry.from_entry_points(settings(tmp_path))
    rows = [info.to_json() for info in registry.drivers()]
    assert [row["name"] for row in rows][:3] == ["do-volume", "local", "local-host"]
    assert rows[1]["capabilities"] == LocalDriver.CAPABILITIES.to_json()
    assert rows[0]["implemented"] is True and rows[1]["problem"] is None


def test_explicit_drivers_must_match_their_key_and_have_names(tmp_path):
    driver: Driver = LocalDriver(settings=settings(tmp_path))
    assert DriverRegistry({"local": driver}).get("local") is driver
    with pytest.raises(errors.DriverConfigError, match="calls itself 'local'"):
        DriverRegistry({"other": driver})
    with pytest.raises(errors.DriverConfigError, match="empty"):
        DriverRegistry({"": driver})
    with pytest.raises(errors.DriverConfigError, match="registered twice"):
        DriverRegistry({"local": driver}, declared={"local": LocalDriver.CAPABILITIES})


def test_a_third_party_driver_is_found_like_the_built_ins(tmp_path, install_plugin):
    install_plugin(
        "rs-echo", {"echo": "rs_echo_plugin:EchoDriver"}, {"rs_echo_plugin": WORKING_PLUGIN}
    )
    registry = DriverRegistry.from_entry_points(settings(tmp_path))
    assert registry.get("echo").name == "echo"
    assert "from rs-echo" in {i.name: i for i in registry.drivers()}["echo"].source


@pytest.mark.parametrize(
    ("target", "source", "problem"),
    [
        (
            "rs_bad_import:Driver",
            "import nonexistent_module_xyz\n",
            "cannot be loaded: ModuleNotFoundError",
        ),
        ("rs_bad_attr:Missing", "X = 1\n", "cannot be loaded: AttributeError"),
        ("rs_no_caps:Driver", "class Driver:\n    pass\n", "has no CAPABILITIES"),
        (
            "rs_not_callable:Driver",
            WORKING_PLUGIN + "Driver = EchoDriver.CAPABILITIES\n",
            "not a class or callable",
        ),
    ],
)
def test_a_broken_plugin_is_listed_with_its_problem_and_refused_by_name(
    tmp_path, install_plugin, target, source, problem
):
    module = target.split(":")[0]
    install_plugin("rs-broken", {"broken": target}, {module: source})
    registry = DriverRegistry.from_entry_points(settings(tmp_path))
    row = {info.name: info for info in registry.drivers()}["broken"]
    assert row.problem is not None and problem in row.problem
    assert "broken" not in registry.capabilities()
    with pytest.raises(errors.DriverConfigError) as info:
        registry.get("broken")
    assert f"entry point broken = {target} from rs-broken" in str(info.value)
    assert isinstance(registry.get("local"), LocalDriver)


def test_a_plugin_claiming_a_built_in_name_makes_that_name_unusable(tmp_path, install_plugin):
    install_plugin("rs-thief", {"local": "rs_thief:EchoDriver"}, {"rs_thief": WORKING_PLUGIN})
    registry = DriverRegistry.from_entry_points(settings(tmp_path))
    with pytest.raises(errors.DriverConfigError, match="register it; uninstall one") as info:
        registry.get("local")
    assert "rune_sync.drivers.local:LocalDriver" in str(info.value)
    assert "rs_thief:EchoDriver" in str(info.value)
    assert "local" not in registry.capabilities()


def test_a_plugin_failing_to_build_is_named_in_a_driver_error(tmp_path):
    class Exploding(LocalDriver):
        def __init__(self, *, settings: StorageSettings) -> None:
            raise RuntimeError("boom")

    registry = DriverRegistry.from_factories({"local": Exploding}, settings(tmp_path))
    with pytest.raises(
        errors.DriverConfigError,
        match=r"factory local failed to build the driver: RuntimeError: boom",
    ):
        registry.get("local")


def test_a_plugin_whose_driver_disagrees_with_its_declaration_is_refused(tmp_path):
    class Misnamed(LocalDriver):
        @property
        def name(self) -> str:
            return "something-else"

    class Overpromising(LocalDriver):
        NAME = "local-host"
        CAPABILITIES = LocalHostDriver.CAPABILITIES

        @property
        def capabilities(self):
            return LocalDriver.CAPABILITIES

    registry = DriverRegistry.from_factories(
        {"local": Misnamed, "local-host": Overpromising}, settings(tmp_path)
    )
    with pytest.raises(errors.DriverConfigError, match="calls itself 'something-else'"):
        registry.get("local")
    with pytest.raises(errors.DriverConfigError, match="differ from CAPABILITIES"):
        registry.get("local-host")
