"""The trusted keys for ``git verify-commit``, isolated from the user's own keyrings.

Owned here: a temporary ``GNUPGHOME`` holding only the keys of ``--trusted-keys``
(imported, and marked trusted so that git counts their signatures as good), the
``gpg.ssh.allowedSignersFile`` of ``--allowed-signers`` (an empty one when not given, so
the user's configured file is never used), and the git settings that make ``git
verify-commit`` use exactly those. Called by :mod:`rune_sync.source.history`. Must not:
read or change the user's ``~/.gnupg``, or leave an agent running.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rune_sync.errors import SourceError

_GPG_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Trust:
    """``config``: git ``-c`` options; ``env``: variables for ``git verify-commit``."""

    config: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


def _gpg(home: Path, args: list[str], *, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(
            ["gpg", "--batch", "--no-tty", "--homedir", str(home), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=_GPG_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as exc:
        raise SourceError("gpg is not installed; it is needed for --trusted-keys") from exc
    except subprocess.TimeoutExpired as exc:
        raise SourceError(f"gpg did not finish within {_GPG_TIMEOUT:g}s") from exc
    # --import exits non-zero when part of the file is not a key; what counts is whether
    # any key arrived, which _import checks by listing the keyring afterwards
    if done.returncode != 0 and "--import" not in args:
        raise SourceError(f"gpg failed: {done.stderr.strip()[:300]}")
    return done.stdout


def _import(home: Path, keys: Path) -> None:
    if not keys.is_file():
        raise SourceError(f"--trusted-keys {keys}: not a readable file")
    _gpg(home, ["--import", str(keys.absolute())])
    listing = _gpg(home, ["--with-colons", "--list-keys"])
    fingerprints: list[str] = []
    primary = False
    for line in listing.splitlines():
        fields = line.split(":")
        if fields[0] in ("pub", "sub"):
            primary = fields[0] == "pub"
        elif fields[0] == "fpr" and primary and len(fields) > 9:
            fingerprints.append(fields[9])
            primary = False
    if not fingerprints:
        raise SourceError(
            f"--trusted-keys {keys} holds no OpenPGP public key "
            "(export one with `gpg --export --armor KEYID`)"
        )
    _gpg(home, ["--import-ownertrust"], stdin="".join(f"{fp}:6:\n" for fp in fingerprints))


@contextmanager
def trusted(*, trusted_keys: Path | None, allowed_signers: Path | None) -> Iterator[Trust]:
    """Set up the trusted keys for the duration of the block."""
    home = Path(tempfile.mkdtemp(prefix="rune-sync-gpg-"))
    try:
        if allowed_signers is not None:
            if not allowed_signers.is_file():
                raise SourceError(f"--allowed-signers {allowed_signers}: not a readable file")
            signers = allowed_signers.absolute()
        else:
            signers = home / "no-allowed-signers"
            signers.write_text("")
        if trusted_keys is not None:
            _import(home, trusted_keys)
        yield Trust(
            config=(
                "-c",
                "gpg.program=gpg",
                "-c",
                "gpg.openpgp.program=gpg",
                "-c",
                "gpg.ssh.program=ssh-keygen",
                "-c",
                f"gpg.ssh.allowedSignersFile={signers}",
                "-c",
                "gpg.minTrustLevel=undefined",
            ),
            env={"GNUPGHOME": str(home)},
        )
    finally:
        if trusted_keys is not None and shutil.which("gpgconf"):
            subprocess.run(
                ["gpgconf", "--homedir", str(home), "--kill", "all"],
                capture_output=True,
                timeout=_GPG_TIMEOUT,
                check=False,
            )
        shutil.rmtree(home, ignore_errors=True)


def reason(detail: str) -> str:
    """The telling part of ``git verify-commit``'s complaint, if any."""
    for part in detail.split("; "):
        text = part.strip()
        lowered = text.lower()
        if any(
            m in lowered
            for m in (
                "no public key",
                "bad signature",
                "no principal",
                "can't check",
                "could not verify",
                "expired",
                "revoked",
                "not allowed",
            )
        ):
            return text.removeprefix("gpg: ").strip()
    return ""
