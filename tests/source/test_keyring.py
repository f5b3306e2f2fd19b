"""The trusted keys live in a temporary keyring that is gone afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from rune_sync.errors import SourceError
from rune_sync.source import keyring


def test_keys_are_imported_into_a_keyring_of_their_own(gpg_key, ssh_key):
    with keyring.trusted(
        trusted_keys=gpg_key.public, allowed_signers=ssh_key.allowed_signers
    ) as trust:
        home = Path(trust.env["GNUPGHOME"])
        assert home != gpg_key.home and home.is_dir()
        assert f"gpg.ssh.allowedSignersFile={ssh_key.allowed_signers}" in trust.config
    assert not home.exists()


def test_without_ssh_keys_no_configured_signers_file_is_used():
    with keyring.trusted(trusted_keys=None, allowed_signers=None) as trust:
        setting = next(c for c in trust.config if c.startswith("gpg.ssh.allowedSignersFile="))
        assert Path(setting.split("=", 1)[1]).read_text() == ""


def test_a_missing_key_file_is_refused(tmp_path):
    with (
        pytest.raises(SourceError, match="not a readable file"),
        keyring.trusted(trusted_keys=tmp_path / "nope.asc", allowed_signers=None),
    ):
        pass
