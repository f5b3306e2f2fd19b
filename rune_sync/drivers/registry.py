"""The driver registry: which drivers exist, what they can do, and building them.

Owned here: :class:`DriverRegistry`, an ordinary object the caller creates and passes
on (no module-level state). :meth:`DriverRegistry.from_entry_points` finds every
driver, built-ins included, through the entry-point group ``rune_sync.drivers``; each
entry point names a class (or factory) with a ``CAPABILITIES`` attribute, called as
``factory(settings=...)``. Drivers that rune-sync declares but does not ship yet
(``do-volume``) are listed with their capabilities and refuse to be built.

Capabilities are read without constructing any driver, so validation and planning
stay free of driver side effects. A broken third-party entry point never raises a
traceback here: it is listed with its problem, and using it raises a
``DriverConfigError`` naming it. This module must not import a concrete driver.
"""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, cast

from rune_sync import errors
from rune_sync.drivers import do_volume
from rune_sync.drivers.base import Driver
from rune_sync.spec.model import Capabilities, ParameterRules, StorageSettings

ENTRY_POINT_GROUP = "rune_sync.drivers"

DECLARED: Mapping[str, Capabilities] = MappingProxyType({do_volume.NAME: do_volume.CAPABILITIES})
"""Drivers rune-sync knows about but does not implement in this version."""

DECLARED_PARAMETERS: Mapping[str, ParameterRules] = MappingProxyType(
    {do_volume.NAME: do_volume.PARAMETERS}
)
"""The parameter declarations of those drivers."""


class DriverFactory(Protocol):
    """What an entry point loads: a driver class, or a callable with the same shape."""

    CAPABILITIES: Capabilities

    def __call__(self, *, settings: StorageSettings) -> Driver: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverInfo:
    """One row of ``rune-sync drivers``: a driver and whether it can be used."""

    name: str
    capabilities: Capabilities | None
    implemented: bool
    source: str
    problem: str | None = None
    parameters: ParameterRules | None = None
    """What the driver accepts in ``parameters`` (a ``PARAMETERS`` class attribute)."""

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "implemented": self.implemented,
            "capabilities": None if self.capabilities is None else self.capabilities.to_json(),
            "source": self.source,
            "problem": self.problem,
        }


@dataclass(slots=True, kw_only=True)
class _Entry:
    info: DriverInfo
    factory: DriverFactory | None = None
    driver: Driver | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class DriverRegistry:
    """Driver name → driver, built on first use and then reused (thread-safe).

    ``DriverRegistry(drivers)`` takes ready drivers keyed by name (each key must equal
    the driver's ``name``); ``declared`` lists names known but not implemented.
    """

    def __init__(
        self,
        drivers: Mapping[str, Driver] | None = None,
        *,
        declared: Mapping[str, Capabilities] | None = None,
    ) -> None:
        self._entries: dict[str, _Entry] = {}
        self._settings = StorageSettings()
        for name, driver in (drivers or {}).items():
            _check_name(name, "explicit driver")
            if driver.name != name:
                raise _refusal(name, f"driver registered as {name!r} calls itself {driver.name!r}")
            info = DriverInfo(
                name=name, capabilities=driver.capabilities, implemented=True, source="explicit"
            )
            self._add(_Entry(info=info, driver=driver))
        for name, caps in (declared or {}).items():
            self._declare(name, caps)

    @classmethod
    def from_entry_points(cls, settings: StorageSettings) -> DriverRegistry:
        """Every driver of the entry-point group, plus the declared-only ones."""
        found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        return cls._from_sources(((ep.name, _describe(ep), ep.load) for ep in found), settings)

    @classmethod
    def from_factories(
        cls, factories: Mapping[str, object], settings: StorageSettings
    ) -> DriverRegistry:
        """Like :meth:`from_entry_points`, with the factories given directly."""
        return cls._from_sources(
            ((name, f"factory {name}", _const(obj)) for name, obj in factories.items()), settings
        )

    @classmethod
    def _from_sources(
        cls, sources: Iterable[tuple[str, str, _Loader]], settings: StorageSettings
    ) -> DriverRegistry:
        registry = cls()
        registry._settings = settings
        for name, source, load in sources:
            _check_name(name, source)
            entry = _load(name, source, load)
            previous = registry._entries.get(name)
            if previous is not None:
                problem = f"both {previous.info.source} and {source} register it; uninstall one"
                entry = _Entry(info=_broken(name, f"{previous.info.source}; {source}", problem))
                del registry._entries[name]
            registry._add(entry)
        for name, caps in DECLARED.items():
            if name not in registry._entries:  # an installed implementation wins
                registry._declare(name, caps)
        return registry

    def get(self, name: str) -> Driver:
        """The driver called ``name``, built with the settings on first use.

        Raises ``DriverConfigError`` for an unknown or broken driver and
        ``UnsupportedOperation`` for one declared but not available in this version.
        """
        entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(sorted(self._entries)) or "none"
            raise _refusal(
                name,
                f"no driver named {name!r} (known: {known}; drivers are found through "
                f"the entry-point group {ENTRY_POINT_GROUP})",
            )
        with entry.lock:
            if entry.driver is None:
                entry.driver = self._build(entry)
            return entry.driver

    def capabilities(self) -> Mapping[str, Capabilities]:
        """Declared capabilities of every usable or declared driver, built or not."""
        return MappingProxyType(
            {
                name: entry.info.capabilities
                for name, entry in sorted(self._entries.items())
                if entry.info.capabilities is not None and entry.info.problem is None
            }
        )

    def parameter_rules(self) -> Mapping[str, ParameterRules]:
        """Parameter declarations of the drivers that make one, for static validation."""
        return MappingProxyType(
            {
                name: entry.info.parameters
                for name, entry in sorted(self._entries.items())
                if entry.info.parameters is not None and entry.info.problem is None
            }
        )

    def drivers(self) -> tuple[DriverInfo, ...]:
        """Every known driver, sorted by name, for ``rune-sync drivers``."""
        return tuple(entry.info for _, entry in sorted(self._entries.items()))

    def _build(self, entry: _Entry) -> Driver:
        info = entry.info
        if info.problem is not None:
            raise _refusal(
                info.name, f"driver {info.name} is unusable: {info.source} {info.problem}"
            )
        if entry.factory is None:
            raise errors.UnsupportedOperation(
                f"driver {info.name} is not available in this version "
                "(its capabilities are declared so specs naming it can be validated)",
                driver=info.name,
                operation="load",
            )
        try:
            driver = entry.factory(settings=self._settings)
        except errors.DriverError:
            raise
        except Exception as exc:
            # Third-party code may raise anything; the CLI must show a message, not a traceback.
            raise _refusal(
                info.name, f"{info.source} failed to build the driver: {type(exc).__name__}: {exc}"
            ) from exc
        if driver.name != info.name:
            raise _refusal(
                info.name, f"{info.source} built a driver that calls itself {driver.name!r}"
            )
        if driver.capabilities != info.capabilities:
            raise _refusal(
                info.name, f"{info.source}: the driver's capabilities differ from CAPABILITIES"
            )
        return driver

    def _add(self, entry: _Entry) -> None:
        if entry.info.name in self._entries:
            raise _refusal(entry.info.name, f"driver {entry.info.name!r} is registered twice")
        self._entries[entry.info.name] = entry

    def _declare(self, name: str, caps: Capabilities) -> None:
        _check_name(name, "declared driver")
        info = DriverInfo(
            name=name,
            capabilities=caps,
            implemented=False,
            source="declared",
            parameters=DECLARED_PARAMETERS.get(name),
        )
        self._add(_Entry(info=info))


class _Loader(Protocol):
    def __call__(self) -> object: ...


def _const(obj: object) -> _Loader:
    return lambda: obj


def _load(name: str, source: str, load: _Loader) -> _Entry:
    """Import one factory; any failure becomes a listed problem instead of a traceback."""
    try:
        obj = load()
    except Exception as exc:
        # Importing third-party code may raise anything (ImportError, SyntaxError, ...).
        return _Entry(info=_broken(name, source, f"cannot be loaded: {type(exc).__name__}: {exc}"))
    caps = getattr(obj, "CAPABILITIES", None)
    if not callable(obj):
        return _Entry(info=_broken(name, source, "is not a class or callable"))
    if not isinstance(caps, Capabilities):
        return _Entry(info=_broken(name, source, "has no CAPABILITIES (a Capabilities value)"))
    factory = cast(DriverFactory, obj)  # its shape was checked just above
    params = getattr(obj, "PARAMETERS", None)
    info = DriverInfo(
        name=name,
        capabilities=caps,
        implemented=True,
        source=source,
        parameters=params if isinstance(params, ParameterRules) else None,
    )
    return _Entry(info=info, factory=factory)


def _broken(name: str, source: str, problem: str) -> DriverInfo:
    return DriverInfo(
        name=name, capabilities=None, implemented=False, source=source, problem=problem
    )


def _describe(ep: importlib.metadata.EntryPoint) -> str:
    dist = f" from {ep.dist.name}" if ep.dist is not None else ""
    return f"entry point {ep.name} = {ep.value}{dist}"


def _check_name(name: str, source: str) -> None:
    if not name or name != name.strip():
        raise _refusal(name, f"{source}: driver name {name!r} is empty or padded with spaces")


def _refusal(name: str, message: str) -> errors.DriverConfigError:
    return errors.DriverConfigError(message, driver=name, operation="load")
