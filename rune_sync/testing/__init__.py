"""Public testing helpers for driver authors: the driver conformance suite.

A driver package runs the suite by subclassing :class:`DriverConformance` in one of
its test modules::

    class TestMyDriverConformance(DriverConformance):
        def make_driver(self, tmp_path):
            return MyDriver(settings=StorageSettings(...))

Every built-in driver runs it too. Importing this package does not import pytest.
"""

from __future__ import annotations

from rune_sync.testing.conformance import DriverConformance

__all__ = ["DriverConformance"]
