"""The secrets package's public surface is explicit and pinned (STYLE §3.9)."""

from __future__ import annotations

import rune_sync.secrets

EXPECTED = ["GuardedDrivers", "Redactor", "Reference", "Resolver", "Unresolved", "check"]


def test_the_public_names_are_pinned_and_sorted():
    assert rune_sync.secrets.__all__ == EXPECTED
    assert sorted(EXPECTED) == EXPECTED
