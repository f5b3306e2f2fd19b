"""A fake DigitalOcean API v2 for the ``do-volume`` driver's tests.

``FakeDigitalOcean`` is a real HTTP server on 127.0.0.1 (an ephemeral port, one background
thread, one thread per connection) that keeps volumes, snapshots, droplets and actions in
memory. It answers exactly the endpoints the driver is allowed to call; every other method
and path gets a 404 JSON error and is recorded, so a test can assert the driver stayed
inside its scope table.

Quick use::

    with FakeDigitalOcean() as do:
        droplet = do.add_droplet("node-1", "nyc3")
        client = httpx.Client(base_url=do.url, headers={"Authorization": f"Bearer {do.token}"})
        ...
        assert do.endpoints_called() <= {"POST /v2/volumes", "GET /v2/actions/{id}"}

Tokens are kept only as SHA-256 digests; the request log records a label, a short digest
and whether the token was accepted, never the token. Bodies that look like they carry a
token are not kept. Error messages never repeat anything the client sent.

Where DigitalOcean's public reference does not settle a behaviour, the choice made here
is marked "guess" where it is decided.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import re
import secrets
import socket
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

# --------------------------------------------------------------------------- scopes

FULL_ACCESS = "full-access"
"""Pass as ``scopes`` to :meth:`FakeDigitalOcean.add_token` for a token that may do anything."""

BLOCK_STORAGE_CREATE = "block_storage:create"
BLOCK_STORAGE_READ = "block_storage:read"
BLOCK_STORAGE_DELETE = "block_storage:delete"
BLOCK_STORAGE_ACTION_CREATE = "block_storage_action:create"
ACTIONS_READ = "actions:read"
DROPLET_READ = "droplet:read"
BLOCK_STORAGE_SNAPSHOT_CREATE = "block_storage_snapshot:create"
BLOCK_STORAGE_SNAPSHOT_READ = "block_storage_snapshot:read"
BLOCK_STORAGE_SNAPSHOT_DELETE = "block_storage_snapshot:delete"
SNAPSHOT_READ = "snapshot:read"
SNAPSHOT_DELETE = "snapshot:delete"

DRIVER_SCOPES = frozenset(
    {
        BLOCK_STORAGE_CREATE,
        BLOCK_STORAGE_READ,
        BLOCK_STORAGE_DELETE,
        BLOCK_STORAGE_ACTION_CREATE,
        ACTIONS_READ,
        DROPLET_READ,
        BLOCK_STORAGE_SNAPSHOT_CREATE,
        BLOCK_STORAGE_SNAPSHOT_READ,
        BLOCK_STORAGE_SNAPSHOT_DELETE,
    }
)
"""The custom scopes of seed 000's table: everything the driver needs, nothing more."""

# --------------------------------------------------------------------------- limits

MAX_VOLUME_GIB = 16 * 1024
MAX_VOLUMES_PER_DROPLET = 15
MAX_VOLUME_NAME = 64
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 200
DEFAULT_RATE_LIMIT = 5000
_RATE_WINDOW = 3600.0
_MAX_BODY = 1 << 20
"""Bodies beyond this many bytes are cut short (they are still read off the socket)."""

_VOLUME_NAME = re.compile(r"[a-z][a-z0-9-]*\Z")
_TOKEN_SHAPE = re.compile(r"do[opr]_v1_[0-9a-fA-F]{8,}")
_FS_LABEL_LIMITS = {"ext4": 16, "xfs": 12}

# --------------------------------------------------------------------------- regions

_DROPLET_SIZES = ("s-1vcpu-1gb", "s-1vcpu-2gb", "s-2vcpu-2gb", "s-2vcpu-4gb", "s-4vcpu-8gb")

# slug -> (display name, offers block storage). Which legacy datacentres lack block
# storage is a guess; everything else offers it.
REGIONS: Mapping[str, tuple[str, bool]] = {
    "nyc1": ("New York 1", True),
    "nyc2": ("New York 2", False),
    "nyc3": ("New York 3", True),
    "ams2": ("Amsterdam 2", False),
    "ams3": ("Amsterdam 3", True),
    "sfo1": ("San Francisco 1", False),
    "sfo2": ("San Francisco 2", True),
    "sfo3": ("San Francisco 3", True),
    "sgp1": ("Singapore 1", True),
    "lon1": ("London 1", True),
    "fra1": ("Frankfurt 1", True),
    "tor1": ("Toronto 1", True),
    "blr1": ("Bangalore 1", True),
    "syd1": ("Sydney 1", True),
    "atl1": ("Atlanta 1", True),
}


def region_object(slug: str) -> dict[str, Any]:
    """The region as DigitalOcean embeds it in volumes, droplets and actions."""
    name, storage = REGIONS[slug]
    features = ["backups", "ipv6", "metadata", "install_agent", "image_transfer"]
    if storage:
        features.append("storage")
    return {
        "name": name,
        "slug": slug,
        "sizes": list(_DROPLET_SIZES),
        "features": features,
        "available": True,
    }


def token_hash(token: str) -> str:
    """The short digest the request log shows for ``token`` (12 hex characters)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- records


@dataclass
class _Token:
    label: str
    scopes: frozenset[str]
    full: bool


@dataclass
class _Volume:
    id: str
    name: str
    region: str
    size: int
    description: str
    filesystem_type: str
    filesystem_label: str
    tags: list[str]
    created_at: str
    droplet_ids: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "region": region_object(self.region),
            "droplet_ids": list(self.droplet_ids),
            "name": self.name,
            "description": self.description,
            "size_gigabytes": self.size,
            "created_at": self.created_at,
            "filesystem_type": self.filesystem_type,
            "filesystem_label": self.filesystem_label,
            "tags": list(self.tags),
        }


@dataclass
class _Snapshot:
    id: str
    name: str
    volume_id: str
    regions: list[str]
    min_disk_size: int
    size_gigabytes: float
    tags: list[str]
    created_at: str
    filesystem_type: str
    filesystem_label: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at,
            "regions": list(self.regions),
            "resource_id": self.volume_id,
            "resource_type": "volume",
            "min_disk_size": self.min_disk_size,
            "size_gigabytes": self.size_gigabytes,
            "tags": list(self.tags),
        }


@dataclass
class _Droplet:
    id: int
    name: str
    region: str
    size_slug: str
    status: str
    created_at: str
    tags: list[str]
    volume_ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "memory": 1024,
            "vcpus": 1,
            "disk": 25,
            "locked": False,
            "status": self.status,
            "created_at": self.created_at,
            "features": [],
            "backup_ids": [],
            "snapshot_ids": [],
            "image": {},
            "volume_ids": list(self.volume_ids),
            "size_slug": self.size_slug,
            "networks": {"v4": [], "v6": []},
            "region": region_object(self.region),
            "tags": list(self.tags),
        }


ActionKind = Literal["attach", "detach", "resize"]


@dataclass
class _Action:
    id: int
    kind: ActionKind
    volume_id: str
    region: str
    started: float
    started_at: str
    droplet_id: int | None = None
    size: int | None = None
    fail: bool = False
    status: str = "in-progress"
    completed_at: str | None = None
    polls: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            # attach_volume and detach_volume are documented; resize_volume is a guess.
            "type": f"{self.kind}_volume",
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            # Volume ids are UUIDs and this field is an integer in the public schema; the
            # published volume-action examples show it as null.
            "resource_id": None,
            "resource_type": "volume",
            "region": region_object(self.region),
            "region_slug": self.region,
        }


# --------------------------------------------------------------------------- faults and log


def _path_regex(pattern: str) -> re.Pattern[str]:
    """``*`` is one path segment or part of one, ``**`` anything, ``{name}`` one segment."""
    parts: list[str] = []
    for token in re.split(r"(\*\*|\*|\?|\{[^}/]*\})", pattern):
        if token == "**":
            parts.append(".*")
        elif token == "*":
            parts.append("[^/]*")
        elif token == "?":
            parts.append("[^/]")
        elif token.startswith("{") and token.endswith("}"):
            parts.append("[^/]+")
        elif token:
            parts.append(re.escape(token))
    return re.compile("".join(parts) + r"\Z")


FaultKind = Literal["status", "rate_limit", "slow", "drop", "errored_action"]


@dataclass
class Fault:
    """One armed fault. ``remaining`` counts down as it fires (``None``: forever)."""

    kind: FaultKind
    remaining: int | None
    method: str | None = None
    path: str | None = None
    status: int = 0
    retry_after: int | None = None
    reset_in: float | None = None
    delay: float = 0.0
    body: str | None = None
    message: str | None = None
    action_type: str | None = None
    hits: int = 0
    _regex: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.method is not None:
            self.method = self.method.upper()
        if self.path is not None:
            self._regex = _path_regex(self.path)

    @property
    def spent(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def matches(self, method: str, path: str) -> bool:
        if self.spent or self.kind == "errored_action":
            return False
        if self.method is not None and self.method != method.upper():
            return False
        return self._regex is None or self._regex.match(path) is not None

    def fire(self) -> None:
        self.hits += 1
        if self.remaining is not None:
            self.remaining -= 1


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the fake saw it. Never holds a token."""

    at: float
    """``time.monotonic()`` when the request arrived."""
    method: str
    path: str
    query: Mapping[str, str]
    endpoint: str | None
    """``"GET /v2/volumes/{id}"`` and the like; ``None`` for anything the fake does not serve."""
    token: str | None
    """The label given to :meth:`FakeDigitalOcean.add_token`; ``None`` if absent or unknown."""
    token_hash: str | None
    """:func:`token_hash` of the presented token; ``None`` when none was sent."""
    authenticated: bool
    status: int | None
    """The status answered; ``None`` when the connection was dropped."""
    fault: str | None
    body: Any
    body_redacted: bool

    @property
    def known(self) -> bool:
        return self.endpoint is not None


# --------------------------------------------------------------------------- routing


@dataclass(frozen=True)
class _Route:
    method: str
    template: str
    regex: re.Pattern[str]
    scopes: frozenset[str]
    handler: str

    @property
    def name(self) -> str:
        return f"{self.method} {self.template}"


_ID = r"(?P<id>(?!actions\Z|snapshots\Z)[^/]+)"
ROUTES: tuple[_Route, ...] = (
    _Route(
        "POST", "/v2/volumes", re.compile(r"/v2/volumes\Z"),
        frozenset({BLOCK_STORAGE_CREATE}), "_create_volume",
    ),
    _Route(
        "GET", "/v2/volumes", re.compile(r"/v2/volumes\Z"),
        frozenset({BLOCK_STORAGE_READ}), "_list_volumes",
    ),
    _Route(
        "GET", "/v2/volumes/{id}", re.compile(rf"/v2/volumes/{_ID}\Z"),
        frozenset({BLOCK_STORAGE_READ}), "_get_volume",
    ),
    _Route(
        "DELETE", "/v2/volumes/{id}", re.compile(rf"/v2/volumes/{_ID}\Z"),
        frozenset({BLOCK_STORAGE_DELETE}), "_delete_volume",
    ),
    _Route(
        "POST", "/v2/volumes/{id}/actions", re.compile(rf"/v2/volumes/{_ID}/actions\Z"),
        frozenset({BLOCK_STORAGE_ACTION_CREATE}), "_volume_action",
    ),
    _Route(
        "GET", "/v2/actions/{id}", re.compile(r"/v2/actions/(?P<id>[^/]+)\Z"),
        frozenset({ACTIONS_READ}), "_get_action",
    ),
    _Route(
        "GET", "/v2/droplets", re.compile(r"/v2/droplets\Z"),
        frozenset({DROPLET_READ}), "_list_droplets",
    ),
    _Route(
        "POST", "/v2/volumes/{id}/snapshots", re.compile(rf"/v2/volumes/{_ID}/snapshots\Z"),
        frozenset({BLOCK_STORAGE_SNAPSHOT_CREATE}), "_create_snapshot",
    ),
    _Route(
        "GET", "/v2/volumes/{id}/snapshots", re.compile(rf"/v2/volumes/{_ID}/snapshots\Z"),
        frozenset({BLOCK_STORAGE_SNAPSHOT_READ}), "_list_volume_snapshots",
    ),
    # The public reference also lets snapshot:* scopes through on the generic snapshot
    # endpoints; the seed names the block_storage_snapshot:* ones. Either is accepted.
    _Route(
        "GET", "/v2/snapshots/{id}", re.compile(r"/v2/snapshots/(?P<id>[^/]+)\Z"),
        frozenset({BLOCK_STORAGE_SNAPSHOT_READ, SNAPSHOT_READ}), "_get_snapshot",
    ),
    _Route(
        "DELETE", "/v2/snapshots/{id}", re.compile(r"/v2/snapshots/(?P<id>[^/]+)\Z"),
        frozenset({BLOCK_STORAGE_SNAPSHOT_DELETE, SNAPSHOT_DELETE}), "_delete_snapshot",
    ),
)  # fmt: skip

ENDPOINTS = frozenset(route.name for route in ROUTES)
"""Every endpoint the fake serves, as ``"METHOD /template"``."""

ENDPOINT_SCOPES: Mapping[str, frozenset[str]] = {route.name: route.scopes for route in ROUTES}
"""Which scopes open each endpoint (any one of them is enough)."""


def _route_for(method: str, path: str) -> tuple[_Route | None, dict[str, str]]:
    for route in ROUTES:
        if route.method != method:
            continue
        found = route.regex.match(path)
        if found:
            return route, found.groupdict()
    return None, {}


# --------------------------------------------------------------------------- replies

_ERROR_IDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}
_DEFAULT_MESSAGES = {
    500: "Unexpected server-side error",
    502: "Bad gateway",
    503: "Service unavailable, please try again later",
    504: "Gateway timeout",
}

NOT_FOUND_MESSAGE = "The resource you were accessing could not be found."
UNAUTHORIZED_MESSAGE = "Unable to authenticate you"
RATE_LIMITED_MESSAGE = "API Rate limit exceeded."


class _ApiError(Exception):
    def __init__(self, status: int, message: str, ident: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.ident = ident or _ERROR_IDS.get(status, "error")


@dataclass
class _Reply:
    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json; charset=utf-8"


def _error_reply(status: int, message: str, ident: str | None = None) -> _Reply:
    payload = {
        "id": ident or _ERROR_IDS.get(status, "error"),
        "message": message,
        "request_id": str(uuid.uuid4()),
    }
    return _Reply(status, payload)


# --------------------------------------------------------------------------- body checks


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _ApiError(400, "error parsing request body", "bad_request")
    return body


def _int_field(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _ApiError(422, f"{key} is required and must be an integer")
    return value


def _str_list(body: Mapping[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _ApiError(422, f"{key} must be a list of strings")
    return list(value)


def _int_param(query: Mapping[str, str], key: str, default: int, high: int | None) -> int:
    try:
        value = int(query.get(key, default))
    except ValueError:
        value = default
    value = max(1, value)
    return min(value, high) if high is not None else value


def _bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


# --------------------------------------------------------------------------- the server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle's algorithm and
    # delayed ACKs add ~40 ms to every keep-alive answer.
    disable_nagle_algorithm = True
    server_version = "fake-digitalocean"
    sys_version = ""

    def _dispatch(self) -> None:
        self.server.fake._serve(self)  # type: ignore[attr-defined]

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, fake: FakeDigitalOcean) -> None:
        self.fake = fake
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.open_connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients going away (timeouts, dropped pools) are expected; anything else is a
        # bug in the fake and is kept for the fixture to report.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        self.fake.internal_errors.append(traceback.format_exc())


class FakeDigitalOcean:
    """A stateful, thread-safe fake of the DigitalOcean API v2 (block storage subset).

    Knobs (constructor arguments, also plain attributes that may be changed at any time):

    ``action_polls``
        How many ``GET /v2/actions/{id}`` calls an action needs before it finishes
        (default 1: the POST answers ``in-progress`` and the first poll sees the result).
    ``action_seconds``
        Minimum age in seconds before an action may finish (default 0). Both conditions
        must hold; with ``action_polls=0`` an action finishes on the first request of any
        kind once it is old enough.
    ``cross_region_attach``
        ``"reject"`` (default): attaching to a droplet in another region is refused with
        422 at once. ``"errored"``: the request is accepted and the action ends errored.
    ``rate_limit``
        The hourly request budget shown in ``ratelimit-limit`` (default 5000).
    ``forbidden_message``
        The text of 403 answers for a token that lacks the scope.

    Order of checks for each request: an armed fault (before authentication, as a proxy
    or the rate limiter would answer), the hourly budget, the route (anything unknown is
    404 whatever the token), the token (401), its scopes (403), then the endpoint itself.
    The fault switches (:meth:`fail`, :meth:`throttle`, :meth:`slow`, :meth:`drop`,
    :meth:`fail_actions`) return the armed :class:`Fault`, whose ``hits`` and ``spent``
    show whether it fired; the first armed fault that matches a request is the one used.
    """

    # Guess: custom-scope refusals have been reported with this text and also with "You do
    # not have access for the attempted action."; only the status and id are certain.
    forbidden_message = "You are not authorized to perform this operation."

    def __init__(
        self,
        *,
        action_polls: int = 1,
        action_seconds: float = 0.0,
        cross_region_attach: Literal["reject", "errored"] = "reject",
        rate_limit: int = DEFAULT_RATE_LIMIT,
        token: str | None = None,
    ) -> None:
        self.action_polls = action_polls
        self.action_seconds = action_seconds
        self.cross_region_attach = cross_region_attach
        self.rate_limit = rate_limit
        self.internal_errors: list[str] = []

        self._lock = threading.RLock()
        self._tokens: dict[str, _Token] = {}
        self._volumes: dict[str, _Volume] = {}
        self._snapshots: dict[str, _Snapshot] = {}
        self._droplets: dict[int, _Droplet] = {}
        self._actions: dict[int, _Action] = {}
        self._faults: list[Fault] = []
        self._log: list[LoggedRequest] = []
        self._hits: deque[float] = deque()
        self._action_ids = itertools.count(1_000_001)
        self._droplet_ids = itertools.count(300_000_001)

        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

        self.token = token or "dop_v1_" + secrets.token_hex(32)
        """A full-access token registered under the label ``"full-access"``."""
        self.add_token(self.token, FULL_ACCESS, name="full-access")

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"FakeDigitalOcean({where})"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeDigitalOcean:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="fake-digitalocean",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with server.connections_lock:
            for conn in list(server.open_connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeDigitalOcean:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("the fake DigitalOcean API is not running")
        return f"http://127.0.0.1:{self._server.server_port}"

    # ------------------------------------------------------------------ tokens

    def add_token(
        self, token: str, scopes: str | Iterable[str] = FULL_ACCESS, *, name: str | None = None
    ) -> str:
        """Register ``token``; returns its label (``name``, else ``token-<hash>``).

        ``scopes`` is :data:`FULL_ACCESS`, one scope string, or an iterable of them.
        Registering a token again replaces its scopes.
        """
        if not token:
            raise ValueError("a token must be a non-empty string")
        full = scopes == FULL_ACCESS
        if isinstance(scopes, str):
            scope_set = frozenset() if full else frozenset({scopes})
        else:
            scope_set = frozenset(scopes)
        label = name or f"token-{token_hash(token)}"
        with self._lock:
            self._tokens[_digest(token)] = _Token(label, scope_set, full)
        return label

    def remove_token(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(_digest(token), None)

    # ------------------------------------------------------------------ seeding

    def add_droplet(
        self,
        name: str,
        region: str = "nyc3",
        *,
        droplet_id: int | None = None,
        size_slug: str = "s-1vcpu-1gb",
        status: str = "active",
        tags: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Create a droplet (the fake has no droplet endpoints); returns its JSON."""
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}")
        with self._lock:
            new_id = droplet_id if droplet_id is not None else next(self._droplet_ids)
            if new_id in self._droplets:
                raise ValueError(f"droplet {new_id} exists")
            droplet = _Droplet(new_id, name, region, size_slug, status, _iso(time.time()), [*tags])
            self._droplets[new_id] = droplet
            return droplet.to_json()

    def remove_droplet(self, droplet_id: int) -> None:
        """Destroy a droplet; volumes attached to it become detached, as on DigitalOcean."""
        with self._lock:
            droplet = self._droplets.pop(droplet_id, None)
            if droplet is None:
                return
            for volume in self._volumes.values():
                if droplet_id in volume.droplet_ids:
                    volume.droplet_ids.remove(droplet_id)

    def add_volume(
        self,
        name: str,
        region: str = "nyc3",
        size_gigabytes: int = 10,
        *,
        droplet_id: int | None = None,
        filesystem_type: str = "ext4",
        filesystem_label: str = "",
        description: str = "",
        tags: Iterable[str] = (),
        volume_id: str | None = None,
    ) -> dict[str, Any]:
        """Create a volume directly (optionally already attached); returns its JSON."""
        with self._lock:
            if region not in REGIONS:
                raise ValueError(f"unknown region {region!r}")
            if self._find_volume(name, region) is not None:
                raise ValueError(f"a volume {name!r} exists in {region}")
            volume = _Volume(
                id=volume_id or str(uuid.uuid4()),
                name=name,
                region=region,
                size=size_gigabytes,
                description=description,
                filesystem_type=filesystem_type,
                filesystem_label=filesystem_label,
                tags=[*tags],
                created_at=_iso(time.time()),
            )
            if droplet_id is not None:
                droplet = self._droplets.get(droplet_id)
                if droplet is None or droplet.region != region:
                    raise ValueError("attach to an existing droplet in the volume's region")
                volume.droplet_ids.append(droplet_id)
                droplet.volume_ids.append(volume.id)
            self._volumes[volume.id] = volume
            return volume.to_json()

    def add_snapshot(
        self,
        name: str,
        *,
        volume_id: str | None = None,
        regions: Iterable[str] | None = None,
        min_disk_size: int | None = None,
        size_gigabytes: float = 0.0,
        tags: Iterable[str] = (),
        snapshot_id: str | None = None,
        filesystem_type: str = "ext4",
    ) -> dict[str, Any]:
        """Create a volume snapshot directly; defaults come from ``volume_id`` if it exists."""
        with self._lock:
            source = self._volumes.get(volume_id) if volume_id else None
            snapshot = _Snapshot(
                id=snapshot_id or str(uuid.uuid4()),
                name=name,
                volume_id=volume_id or str(uuid.uuid4()),
                regions=(
                    list(regions) if regions is not None else [source.region if source else "nyc3"]
                ),
                min_disk_size=(
                    min_disk_size if min_disk_size is not None else (source.size if source else 10)
                ),
                size_gigabytes=size_gigabytes,
                tags=[*tags],
                created_at=_iso(time.time()),
                filesystem_type=source.filesystem_type if source else filesystem_type,
                filesystem_label=source.filesystem_label if source else "",
            )
            self._snapshots[snapshot.id] = snapshot
            return snapshot.to_json()

    # ------------------------------------------------------------------ state for assertions

    @property
    def volumes(self) -> list[dict[str, Any]]:
        with self._lock:
            self._advance(time.monotonic())
            return [v.to_json() for v in self._volumes.values()]

    def volume(self, volume_id: str) -> dict[str, Any] | None:
        with self._lock:
            self._advance(time.monotonic())
            found = self._volumes.get(volume_id)
            return found.to_json() if found else None

    def find_volumes(
        self, name: str | None = None, region: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            v
            for v in self.volumes
            if (name is None or v["name"] == name)
            and (region is None or v["region"]["slug"] == region)
        ]

    @property
    def snapshots(self) -> list[dict[str, Any]]:
        with self._lock:
            return [s.to_json() for s in self._snapshots.values()]

    def snapshot(self, snapshot_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._snapshots.get(snapshot_id)
            return found.to_json() if found else None

    @property
    def droplets(self) -> list[dict[str, Any]]:
        with self._lock:
            self._advance(time.monotonic())
            return [d.to_json() for d in self._droplets.values()]

    def droplet(self, droplet_id: int) -> dict[str, Any] | None:
        with self._lock:
            self._advance(time.monotonic())
            found = self._droplets.get(droplet_id)
            return found.to_json() if found else None

    @property
    def actions(self) -> list[dict[str, Any]]:
        with self._lock:
            self._advance(time.monotonic())
            return [a.to_json() for a in self._actions.values()]

    def action(self, action_id: int) -> dict[str, Any] | None:
        with self._lock:
            self._advance(time.monotonic())
            found = self._actions.get(action_id)
            return found.to_json() if found else None

    def settle_actions(self) -> None:
        """Finish every in-progress action now (errored ones still end errored)."""
        with self._lock:
            for action in self._actions.values():
                if action.status == "in-progress":
                    self._finish(action)

    # ------------------------------------------------------------------ request log

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def calls(
        self, method: str | None = None, path: str | None = None, *, endpoint: str | None = None
    ) -> list[LoggedRequest]:
        """Logged requests filtered by method, path pattern (see :meth:`fail`) or endpoint."""
        regex = _path_regex(path) if path is not None else None
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper())
            and (regex is None or regex.match(r.path))
            and (endpoint is None or r.endpoint == endpoint)
        ]

    def endpoints_called(self) -> set[str]:
        """Endpoints requested so far as ``"METHOD /template"``; unknown ones as
        ``"METHOD /path"``."""
        return {r.endpoint or f"{r.method} {r.path}" for r in self.requests}

    def unknown_requests(self) -> list[LoggedRequest]:
        return [r for r in self.requests if not r.known]

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    # ------------------------------------------------------------------ faults

    def _arm(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def fail(
        self,
        status: int = 500,
        *,
        times: int | None = 1,
        method: str | None = None,
        path: str | None = None,
        message: str | None = None,
        body: str | None = None,
    ) -> Fault:
        """Answer the next ``times`` matching requests with ``status`` (500/502/503/...).

        ``path`` is a pattern: ``*`` matches within one segment, ``**`` across segments and
        ``{id}`` one whole segment, e.g. ``"/v2/volumes/{id}/actions"``. ``body`` replaces
        the JSON error with raw text (an HTML error page from a proxy, say).
        """
        return self._arm(
            Fault("status", times, method, path, status=status, body=body, message=message)
        )

    def throttle(
        self,
        *,
        times: int | None = 1,
        method: str | None = None,
        path: str | None = None,
        retry_after: int | None = 1,
        reset_in: float | None = None,
    ) -> Fault:
        """Answer 429. ``retry_after`` sets ``Retry-After`` (whole seconds; ``None``: no
        header); ``ratelimit-reset`` is now + ``reset_in`` if given, else now +
        ``retry_after``, else the usual value. ``ratelimit-remaining`` is 0."""
        return self._arm(
            Fault("rate_limit", times, method, path, retry_after=retry_after, reset_in=reset_in)
        )

    def slow(
        self,
        delay: float,
        *,
        times: int | None = 1,
        method: str | None = None,
        path: str | None = None,
    ) -> Fault:
        """Sleep ``delay`` seconds before handling the request (which then takes effect,
        even if the client has given up by then)."""
        return self._arm(Fault("slow", times, method, path, delay=delay))

    def drop(
        self, *, times: int | None = 1, method: str | None = None, path: str | None = None
    ) -> Fault:
        """Close the connection without answering (the request has no effect)."""
        return self._arm(Fault("drop", times, method, path))

    def fail_actions(self, *, times: int | None = 1, action_type: str | None = None) -> Fault:
        """Make the next ``times`` volume actions (of ``action_type`` ``"attach"``,
        ``"detach"`` or ``"resize"``, else any) end ``errored`` without changing anything."""
        return self._arm(Fault("errored_action", times, action_type=action_type))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def set_rate_limit(self, limit: int, *, remaining: int | None = None) -> None:
        """Set the hourly budget and, optionally, how much of it is left right now.
        With nothing left every request is answered 429 until :meth:`set_rate_limit`
        is called again."""
        with self._lock:
            self.rate_limit = limit
            if remaining is not None:
                now = time.time()
                self._hits = deque([now] * max(0, limit - remaining))

    # ------------------------------------------------------------------ serving

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.fire()
                    return fault
        return None

    def _take_action_fault(self, kind: str) -> bool:
        for fault in self._faults:
            if fault.kind != "errored_action" or fault.spent:
                continue
            if fault.action_type is None or fault.action_type == kind:
                fault.fire()
                return True
        return False

    def _serve(self, h: _Handler) -> None:
        arrived = time.monotonic()
        method = h.command.upper()
        split = urlsplit(h.path)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        raw = self._read_body(h)
        presented = _bearer(h.headers.get("Authorization"))
        route, params = _route_for(method, path)

        with self._lock:
            token = self._tokens.get(_digest(presented)) if presented else None
        record = {
            "at": arrived,
            "method": method,
            "path": self._scrub(path, presented),
            "query": {k: self._scrub(v, presented) for k, v in query.items()},
            "endpoint": route.name if route else None,
            "token": token.label if token else None,
            "token_hash": token_hash(presented) if presented else None,
            "authenticated": token is not None,
        }
        body_text = raw.decode("utf-8", "replace")
        if raw and self._has_secret(body_text, presented):
            record["body"], record["body_redacted"] = None, True
        else:
            try:
                record["body"] = json.loads(body_text) if raw else None
            except ValueError:
                record["body"] = body_text
            record["body_redacted"] = False

        fault = self._take_fault(method, path)
        if fault is not None and fault.kind == "drop":
            self._record(record, None, "drop")
            h.close_connection = True
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault is not None and fault.kind == "slow":
            self._stopping.wait(fault.delay)

        with self._lock:
            try:
                reply = self._respond(method, path, query, raw, route, params, token, fault)
            except Exception:
                self.internal_errors.append(traceback.format_exc())
                reply = _error_reply(500, "the fake DigitalOcean API failed", "server_error")
            self._record(record, reply.status, fault.kind if fault else None)
        self._write(h, reply, head=method == "HEAD")

    def _record(self, record: dict[str, Any], status: int | None, fault: str | None) -> None:
        with self._lock:
            self._log.append(LoggedRequest(status=status, fault=fault, **record))

    def _scrub(self, text: str, presented: str | None) -> str:
        for secret in (presented, self.token):
            if secret:
                text = text.replace(secret, "<redacted>")
        return _TOKEN_SHAPE.sub("<redacted>", text)

    def _has_secret(self, text: str, presented: str | None) -> bool:
        if presented and presented in text:
            return True
        return self.token in text or _TOKEN_SHAPE.search(text) is not None

    @staticmethod
    def _read_body(h: _Handler) -> bytes:
        # The whole body is always consumed so that a keep-alive connection stays in step.
        if "chunked" in (h.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)[:_MAX_BODY]
                chunks.append(h.rfile.read(size))
                h.rfile.readline()
        try:
            length = int(h.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return h.rfile.read(length) if length > 0 else b""

    def _rate_headers(self, wall: float) -> dict[str, str]:
        while self._hits and self._hits[0] <= wall - _RATE_WINDOW:
            self._hits.popleft()
        remaining = max(0, self.rate_limit - len(self._hits))
        reset = int(self._hits[0] + _RATE_WINDOW) if self._hits else int(wall)
        return {
            "ratelimit-limit": str(self.rate_limit),
            "ratelimit-remaining": str(remaining),
            "ratelimit-reset": str(reset),
        }

    def _respond(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        raw: bytes,
        route: _Route | None,
        params: dict[str, str],
        token: _Token | None,
        fault: Fault | None,
    ) -> _Reply:
        wall = time.time()
        self._advance(time.monotonic())

        if fault is not None and fault.kind in ("status", "rate_limit"):
            reply = self._fault_reply(fault, wall)
            headers = self._rate_headers(wall)
            headers.update(reply.headers)
            reply.headers = headers
            return reply

        headers = self._rate_headers(wall)
        if int(headers["ratelimit-remaining"]) <= 0:
            reply = _error_reply(429, RATE_LIMITED_MESSAGE)
            reply.headers = headers
            return reply
        self._hits.append(wall)
        headers = self._rate_headers(wall)
        headers["x-request-id"] = str(uuid.uuid4())

        if route is None:
            reply = _error_reply(404, NOT_FOUND_MESSAGE)
        elif token is None:
            reply = _error_reply(401, UNAUTHORIZED_MESSAGE)
        elif not (token.full or token.scopes & route.scopes):
            reply = _error_reply(403, self.forbidden_message)
        else:
            try:
                body: Any = None
                if method == "POST":
                    try:
                        body = json.loads(raw) if raw else {}
                    except ValueError:
                        raise _ApiError(400, "error parsing request body", "bad_request") from None
                reply = getattr(self, route.handler)(path, params, query, body)
            except _ApiError as err:
                reply = _error_reply(err.status, err.message, err.ident)
        headers.update(reply.headers)
        reply.headers = headers
        return reply

    def _fault_reply(self, fault: Fault, wall: float) -> _Reply:
        if fault.kind == "rate_limit":
            reply = _error_reply(429, RATE_LIMITED_MESSAGE)
            reply.headers["ratelimit-remaining"] = "0"
            if fault.reset_in is not None:
                reply.headers["ratelimit-reset"] = str(math.ceil(wall + fault.reset_in))
            elif fault.retry_after is not None:
                reply.headers["ratelimit-reset"] = str(math.ceil(wall + fault.retry_after))
            if fault.retry_after is not None:
                reply.headers["Retry-After"] = str(int(fault.retry_after))
            return reply
        if fault.body is not None:
            return _Reply(
                fault.status,
                raw=fault.body.encode("utf-8"),
                content_type="text/html; charset=utf-8",
            )
        message = fault.message or _DEFAULT_MESSAGES.get(fault.status, "Injected failure")
        return _error_reply(fault.status, message)

    @staticmethod
    def _write(h: _Handler, reply: _Reply, *, head: bool) -> None:
        if reply.raw is not None:
            data = reply.raw
        elif reply.payload is None:
            data = b""
        else:
            data = json.dumps(reply.payload).encode("utf-8")
        try:
            h.send_response(reply.status)
            for key, value in reply.headers.items():
                h.send_header(key, value)
            if reply.status != 204:
                h.send_header("Content-Type", reply.content_type)
                h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            if data and reply.status != 204 and not head:
                h.wfile.write(data)
            h.wfile.flush()
        except OSError:
            h.close_connection = True

    # ------------------------------------------------------------------ actions

    def _advance(self, now: float) -> None:
        for action in self._actions.values():
            if (
                action.status == "in-progress"
                and action.polls >= self.action_polls
                and now - action.started >= self.action_seconds
            ):
                self._finish(action)

    def _finish(self, action: _Action) -> None:
        volume = self._volumes.get(action.volume_id)
        ok = not action.fail and volume is not None
        if ok and volume is not None:
            if action.kind == "attach":
                droplet = self._droplets.get(action.droplet_id or 0)
                if droplet is None or droplet.region != volume.region or volume.droplet_ids:
                    ok = False
                else:
                    volume.droplet_ids.append(droplet.id)
                    droplet.volume_ids.append(volume.id)
            elif action.kind == "detach":
                if action.droplet_id in volume.droplet_ids:
                    volume.droplet_ids.remove(action.droplet_id)
                droplet = self._droplets.get(action.droplet_id or 0)
                if droplet is not None and volume.id in droplet.volume_ids:
                    droplet.volume_ids.remove(volume.id)
            elif action.kind == "resize" and action.size is not None:
                volume.size = max(volume.size, action.size)
        action.status = "completed" if ok else "errored"
        action.completed_at = _iso(time.time())

    def _pending(self, *, volume_id: str | None = None, droplet_id: int | None = None) -> bool:
        for action in self._actions.values():
            if action.status != "in-progress" or action.kind == "resize":
                continue
            if volume_id is not None and action.volume_id == volume_id:
                return True
            if droplet_id is not None and action.droplet_id == droplet_id:
                return True
        return False

    # ------------------------------------------------------------------ handlers

    def _find_volume(self, name: str, region: str) -> _Volume | None:
        for volume in self._volumes.values():
            if volume.name == name and volume.region == region:
                return volume
        return None

    def _volume_or_404(self, volume_id: str) -> _Volume:
        volume = self._volumes.get(volume_id)
        if volume is None:
            raise _ApiError(404, NOT_FOUND_MESSAGE)
        return volume

    def _page(
        self, path: str, query: Mapping[str, str], key: str, items: list[dict[str, Any]]
    ) -> _Reply:
        per_page = _int_param(query, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
        page = _int_param(query, "page", 1, None)
        total = len(items)
        last = max(1, math.ceil(total / per_page))

        def link(number: int) -> str:
            params = {k: v for k, v in query.items() if k != "page"}
            params["page"] = str(number)
            return f"{self.url}{path}?{urlencode(params)}"

        pages: dict[str, str] = {}
        if page > 1:
            pages["first"] = link(1)
            pages["prev"] = link(min(page - 1, last))
        if page < last:
            pages["next"] = link(page + 1)
            pages["last"] = link(last)
        chunk = items[(page - 1) * per_page : page * per_page]
        links: dict[str, Any] = {"pages": pages} if pages else {}
        return _Reply(200, {key: chunk, "links": links, "meta": {"total": total}})

    def _create_volume(self, path: str, params: Any, query: Any, body: Any) -> _Reply:
        body = _object(body)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise _ApiError(422, "name is required")
        if len(name) > MAX_VOLUME_NAME or not _VOLUME_NAME.match(name):  # guess: 422
            raise _ApiError(
                422,
                "name must start with a lowercase letter and contain only lowercase letters, "
                f"digits and '-', at most {MAX_VOLUME_NAME} characters",
            )

        snapshot: _Snapshot | None = None
        snapshot_id = body.get("snapshot_id")
        if snapshot_id is not None:
            if not isinstance(snapshot_id, str):
                raise _ApiError(422, "snapshot_id must be a string")
            snapshot = self._snapshots.get(snapshot_id)
            if snapshot is None:  # guess: 404 (the only 4xx besides 400 the reference lists)
                raise _ApiError(404, NOT_FOUND_MESSAGE)

        region = body.get("region")
        if region is None and snapshot is not None:
            region = snapshot.regions[0]
        if not isinstance(region, str) or not region:
            raise _ApiError(422, "region is required")
        if region not in REGIONS:  # guess: status and text
            raise _ApiError(422, "invalid region")
        if not REGIONS[region][1]:
            raise _ApiError(422, "Storage is not supported for this region")

        size = body.get("size_gigabytes")
        if size is None and snapshot is not None:
            size = snapshot.min_disk_size
        if isinstance(size, bool) or not isinstance(size, int):
            raise _ApiError(422, "size_gigabytes is required and must be an integer")
        if not 1 <= size <= MAX_VOLUME_GIB:
            raise _ApiError(422, f"size_gigabytes must be between 1 and {MAX_VOLUME_GIB}")

        if snapshot is not None:
            if region not in snapshot.regions:
                raise _ApiError(422, "the snapshot is not available in this region")
            if size < snapshot.min_disk_size:
                raise _ApiError(422, "size_gigabytes is smaller than the snapshot's min_disk_size")

        fs_type = body.get("filesystem_type")
        if fs_type is None or fs_type == "":
            fs_type = snapshot.filesystem_type if snapshot else ""
        elif fs_type not in _FS_LABEL_LIMITS:
            raise _ApiError(422, "filesystem_type must be ext4 or xfs")
        fs_label = body.get("filesystem_label")
        if fs_label is None:
            fs_label = snapshot.filesystem_label if snapshot else ""
        elif not isinstance(fs_label, str):
            raise _ApiError(422, "filesystem_label must be a string")
        elif fs_label and not fs_type:
            raise _ApiError(422, "filesystem_label needs filesystem_type")
        elif fs_label and len(fs_label) > _FS_LABEL_LIMITS[fs_type]:
            raise _ApiError(422, "filesystem_label is too long for this filesystem type")

        description = body.get("description") or ""
        if not isinstance(description, str):
            raise _ApiError(422, "description must be a string")
        tags = _str_list(body, "tags")

        if self._find_volume(name, region) is not None:
            # Seen from DigitalOcean as 409 with id "conflict" or "already_exists".
            raise _ApiError(409, "a volume with this name already exists in this region")

        volume = _Volume(
            id=str(uuid.uuid4()),
            name=name,
            region=region,
            size=size,
            description=description,
            filesystem_type=fs_type,
            filesystem_label=fs_label,
            tags=tags,
            created_at=_iso(time.time()),
        )
        self._volumes[volume.id] = volume
        return _Reply(201, {"volume": volume.to_json()})

    def _list_volumes(self, path: str, params: Any, query: Mapping[str, str], body: Any) -> _Reply:
        name, region = query.get("name") or None, query.get("region") or None
        items = [
            v.to_json()
            for v in self._volumes.values()
            if (name is None or v.name == name) and (region is None or v.region == region)
        ]
        return self._page(path, query, "volumes", items)

    def _get_volume(self, path: str, params: Mapping[str, str], query: Any, body: Any) -> _Reply:
        return _Reply(200, {"volume": self._volume_or_404(params["id"]).to_json()})

    def _delete_volume(self, path: str, params: Mapping[str, str], query: Any, body: Any) -> _Reply:
        volume = self._volume_or_404(params["id"])
        if volume.droplet_ids:  # 409 and text as seen from DigitalOcean
            raise _ApiError(
                409,
                "A volume that's attached to a Droplet cannot be deleted. "
                "Please detach it first before deleting.",
            )
        # Guess: snapshots of the volume survive it, as DigitalOcean keeps them.
        del self._volumes[volume.id]
        return _Reply(204)

    def _volume_action(self, path: str, params: Mapping[str, str], query: Any, body: Any) -> _Reply:
        volume = self._volume_or_404(params["id"])
        body = _object(body)
        kind = body.get("type")
        if kind not in ("attach", "detach", "resize"):
            raise _ApiError(422, "type must be one of attach, detach, resize")
        region = body.get("region")
        if region is not None and region != volume.region:  # guess: refused, not ignored
            raise _ApiError(422, "region does not match the volume's region")

        droplet_id: int | None = None
        size: int | None = None
        if kind == "attach":
            droplet_id = _int_field(body, "droplet_id")
            droplet = self._droplets.get(droplet_id)
            if droplet is None:  # guess: 404 rather than 422
                raise _ApiError(404, NOT_FOUND_MESSAGE)
            # The texts below are those DigitalOcean clients match on ("This volume is
            # already attached", "Droplet already has a pending event", "cannot attach
            # more volumes"); the exact endings and the volume-level check are guesses.
            if droplet_id in volume.droplet_ids:
                raise _ApiError(422, "This volume is already attached to this Droplet.")
            if volume.droplet_ids:
                raise _ApiError(422, "This volume is already attached to another Droplet.")
            if self._pending(droplet_id=droplet_id):
                raise _ApiError(422, "Droplet already has a pending event.")
            if self._pending(volume_id=volume.id):
                raise _ApiError(422, "Volume already has a pending event.")
            attached = len(droplet.volume_ids) + sum(
                1
                for a in self._actions.values()
                if a.status == "in-progress" and a.kind == "attach" and a.droplet_id == droplet_id
            )
            if attached >= MAX_VOLUMES_PER_DROPLET:
                raise _ApiError(422, "cannot attach more volumes to the Droplet")
            # Guess: refused at once (422) rather than accepted and errored; see
            # ``cross_region_attach``.
            if droplet.region != volume.region and self.cross_region_attach == "reject":
                raise _ApiError(422, "Droplet and volume must be in the same region.")
        elif kind == "detach":
            droplet_id = _int_field(body, "droplet_id")
            if droplet_id not in volume.droplet_ids:  # 422 and text as seen from DigitalOcean
                raise _ApiError(422, "Attachment not found")
            if self._pending(droplet_id=droplet_id) or self._pending(volume_id=volume.id):
                raise _ApiError(422, "Droplet already has a pending event.")
        else:
            size = _int_field(body, "size_gigabytes")
            if size > MAX_VOLUME_GIB:
                raise _ApiError(422, f"size_gigabytes must be at most {MAX_VOLUME_GIB}")
            if size <= volume.size:  # guess: status and text; only "upwards" is documented
                raise _ApiError(422, "volumes can only be resized to a larger size")

        wall = time.time()
        action = _Action(
            id=next(self._action_ids),
            kind=kind,
            volume_id=volume.id,
            region=volume.region,
            started=time.monotonic(),
            started_at=_iso(wall),
            droplet_id=droplet_id,
            size=size,
            fail=self._take_action_fault(kind),
        )
        self._actions[action.id] = action
        return _Reply(202, {"action": action.to_json()})

    def _get_action(self, path: str, params: Mapping[str, str], query: Any, body: Any) -> _Reply:
        try:
            action = self._actions.get(int(params["id"]))
        except ValueError:
            action = None
        if action is None:
            raise _ApiError(404, NOT_FOUND_MESSAGE)
        action.polls += 1
        self._advance(time.monotonic())
        return _Reply(200, {"action": action.to_json()})

    def _list_droplets(self, path: str, params: Any, query: Mapping[str, str], body: Any) -> _Reply:
        name = query.get("name") or None
        items = [
            d.to_json()
            for d in self._droplets.values()
            if name is None or d.name.lower() == name.lower()
        ]
        return self._page(path, query, "droplets", items)

    def _create_snapshot(
        self, path: str, params: Mapping[str, str], query: Any, body: Any
    ) -> _Reply:
        volume = self._volume_or_404(params["id"])
        body = _object(body)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise _ApiError(422, "name is required")
        tags = _str_list(body, "tags")
        for existing in self._snapshots.values():
            # 409 as DigitalOcean's CSI driver expects; the text is a guess.
            if existing.volume_id == volume.id and existing.name == name:
                raise _ApiError(409, "a snapshot with this name already exists for this volume")
        snapshot = _Snapshot(
            id=str(uuid.uuid4()),
            name=name,
            volume_id=volume.id,
            regions=[volume.region],
            min_disk_size=volume.size,
            # The billable size: nothing is ever written through the fake, so 0. A driver
            # must size restores from min_disk_size, never from this.
            size_gigabytes=0.0,
            tags=tags,
            created_at=_iso(time.time()),
            filesystem_type=volume.filesystem_type,
            filesystem_label=volume.filesystem_label,
        )
        self._snapshots[snapshot.id] = snapshot
        return _Reply(201, {"snapshot": snapshot.to_json()})

    def _list_volume_snapshots(
        self, path: str, params: Mapping[str, str], query: Mapping[str, str], body: Any
    ) -> _Reply:
        volume = self._volume_or_404(params["id"])
        items = [s.to_json() for s in self._snapshots.values() if s.volume_id == volume.id]
        return self._page(path, query, "snapshots", items)

    def _get_snapshot(self, path: str, params: Mapping[str, str], query: Any, body: Any) -> _Reply:
        snapshot = self._snapshots.get(params["id"])
        if snapshot is None:
            raise _ApiError(404, NOT_FOUND_MESSAGE)
        return _Reply(200, {"snapshot": snapshot.to_json()})

    def _delete_snapshot(
        self, path: str, params: Mapping[str, str], query: Any, body: Any
    ) -> _Reply:
        if self._snapshots.pop(params["id"], None) is None:
            raise _ApiError(404, NOT_FOUND_MESSAGE)
        return _Reply(204)


def scopes_except(scope: str) -> frozenset[str]:
    """Every scope the driver may hold except ``scope`` (for 403 tests)."""
    return DRIVER_SCOPES - {scope}
