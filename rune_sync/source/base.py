"""The values a source hands to the rest of the pipeline.

Owned here: :class:`SourceSnapshot` (what to load, and where it came from),
:class:`CommitInfo` (provenance of a git commit), :class:`SourceRequest` (what the user
asked for) and :class:`TrustPolicy` (rollback and signature rules for git sources).
Built by :mod:`rune_sync.source.opener`; read by the CLI pipeline, the renderers and
watch. Must not: hold a credential in anything that is printed (``remote`` is the only
field that may carry one, and it is left out of ``repr``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path


class SourceKind(enum.StrEnum):
    DIRECTORY = "directory"
    GIT = "git"


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitInfo:
    """A resolved commit: full SHA, ``Name <email>``, ISO 8601 author date, subject line."""

    sha: str
    author: str
    date: str
    subject: str

    def to_json(self) -> dict[str, str]:
        return {
            "commit": self.sha,
            "author": self.author,
            "date": self.date,
            "subject": self.subject,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TrustPolicy:
    """What a git source must satisfy before it is planned (DESIGN §10).

    ``allow_rollback``: accept a commit that does not descend from the last applied one.
    ``require_signed``: every commit since the last applied one (all of them on a first
    apply, the target alone with ``verify_tip_only``) carries a good signature from a key
    in ``trusted_keys`` (armored OpenPGP public keys) or ``allowed_signers`` (git's
    ``gpg.ssh.allowedSignersFile`` format).
    """

    allow_rollback: bool = False
    require_signed: bool = False
    trusted_keys: Path | None = None
    allowed_signers: Path | None = None
    verify_tip_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceRequest:
    """SOURCE as typed, with ``--ref`` and ``--path`` (``None`` when not given)."""

    source: str = "."
    ref: str | None = None
    path: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceSnapshot:
    """A source ready to load.

    ``root`` is the directory to load (for git, an exported tree of ``commit`` below
    ``path``; it must not be written to). ``url`` is for display: an absolute directory
    path, or a git URL without credentials. ``shown_from`` is the directory diagnostics
    name files relative to (``None``: the working directory). ``git_dir`` is the cache's
    git directory, for history checks; ``remote`` the URL git is given, which may carry
    credentials and is never printed. ``notes`` are things the user should hear about
    (a damaged cache that was cloned again).
    """

    root: Path
    kind: SourceKind
    url: str
    commit: CommitInfo | None = None
    ref: str | None = None
    path: str | None = None
    shown_from: Path | None = None
    git_dir: Path | None = None
    remote: str = field(default="", repr=False)
    notes: tuple[str, ...] = ()

    def provenance(self) -> dict[str, str | None]:
        """The JSON form kept in plans (``source``) beside the digest: kind, url, commit,
        and for git the ref, path, author, date and subject."""
        data: dict[str, str | None] = {
            "kind": self.kind.value,
            "url": self.url,
            "commit": self.commit.sha if self.commit else None,
        }
        if self.kind is SourceKind.GIT and self.commit is not None:
            data.update(self.commit.to_json())
            data["ref"] = self.ref
            data["path"] = self.path
        return data
