"""Where a state lives: a location (file path or PostgreSQL URL) and a state name.

Owned here: :class:`StateTarget`, :data:`DEFAULT_STATE_NAME`, :func:`check_state_name`,
:func:`is_postgres_url` and :func:`mask_url`, which every message that shows a
PostgreSQL URL goes through, so a password in it is never printed. Used by
:func:`rune_sync.state.backend.open_backend`, the PostgreSQL backend and the CLI.

Must not: import psycopg (it is an optional dependency), or touch any storage.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

DEFAULT_STATE_NAME = "default"
"""The state a location holds when no ``--state-name`` is given."""

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
MASK = "***"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SECRET_QUERY_KEYS = frozenset({"password", "sslpassword"})


def is_postgres_url(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES)


def check_state_name(name: str) -> str:
    """``name`` if it is a valid state name (letters, digits, ``.``, ``_``, ``-``; up to
    128 characters, starting with a letter or digit); ``ValueError`` otherwise."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"state name {name!r} is not valid: use up to 128 letters, digits, '.', '_' or "
            "'-', starting with a letter or digit"
        )
    return name


def mask_url(location: str) -> str:
    """``location`` with any password replaced by ``***`` (in the user-info part and in
    ``password=``/``sslpassword=`` query parameters). Other text is returned as is."""
    if not is_postgres_url(location):
        return location
    try:
        parts = urllib.parse.urlsplit(location)
    except ValueError:
        return _mask_crudely(location)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hosts}" if colon else f"{user}@{hosts}"
    query = parts.query
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        query = "&".join(
            f"{key}={MASK if key in _SECRET_QUERY_KEYS else urllib.parse.quote(value, safe='/:,')}"
            for key, value in pairs
        )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _mask_crudely(location: str) -> str:
    scheme, _, rest = location.partition("://")
    if "@" in rest:
        return f"{scheme}://{MASK}@{rest.rpartition('@')[2]}"
    return location


def password_of(location: str) -> str | None:
    """The password written in ``location`` (to scrub it from library messages)."""
    if not is_postgres_url(location):
        return None
    try:
        parts = urllib.parse.urlsplit(location)
        for key, value in urllib.parse.parse_qsl(parts.query):
            if key == "password" and value:
                return value
        return urllib.parse.unquote(parts.password) if parts.password else None
    except ValueError:  # a malformed URL: the user-info part, as written
        userinfo = location.partition("://")[2].rpartition("@")[0]
        return userinfo.partition(":")[2] or None


@dataclass(frozen=True, slots=True, kw_only=True)
class StateTarget:
    """A state: its ``location`` (a file path or a ``postgresql://`` URL) and its ``name``
    within that location (PostgreSQL holds several; a SQLite file holds ``default`` only).

    ``str()`` gives the form for messages: the URL with its password masked, and the
    name when it is not the default.
    """

    location: str
    name: str = DEFAULT_STATE_NAME

    def __post_init__(self) -> None:
        check_state_name(self.name)

    @property
    def is_postgres(self) -> bool:
        return is_postgres_url(self.location)

    @property
    def display(self) -> str:
        shown = mask_url(self.location)
        return shown if self.name == DEFAULT_STATE_NAME else f"{shown} (state {self.name})"

    @property
    def flags(self) -> str:
        """The command-line options naming this state, for hints (password masked)."""
        shown = mask_url(self.location)
        if self.name == DEFAULT_STATE_NAME:
            return f"--state {shown}"
        return f"--state {shown} --state-name {self.name}"

    def __str__(self) -> str:
        return self.display
