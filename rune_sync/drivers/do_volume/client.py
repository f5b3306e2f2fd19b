"""The DigitalOcean API v2 as the do-volume driver uses it: these endpoints, nothing else.

Owned here: the HTTP calls (httpx), the scope each endpoint needs (seed 000's table, plus
the read forms its read scopes allow), and the translation of answers into the driver
error tree — 401/403 name the missing scope, 404 is ``ResourceNotFound``, 429 and 5xx
and network failures are transient (with the wait the API asked for), other 4xx are
configuration errors carrying DigitalOcean's message. The token travels only in the
``Authorization`` header of a request: it is never part of a message, a ``repr`` or an
exception chain.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rune_sync import errors
from rune_sync.drivers.base import ErrorScope

if TYPE_CHECKING:  # httpx is imported on first use: it costs 70 ms of every start-up
    import httpx

DEFAULT_URL = "https://api.digitalocean.com"
USER_AGENT = "rune-sync do-volume"


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    template: str
    scope: str

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


CREATE_VOLUME = Endpoint("POST", "/v2/volumes", "block_storage:create")
LIST_VOLUMES = Endpoint("GET", "/v2/volumes", "block_storage:read")
GET_VOLUME = Endpoint("GET", "/v2/volumes/{id}", "block_storage:read")
DELETE_VOLUME = Endpoint("DELETE", "/v2/volumes/{id}", "block_storage:delete")
VOLUME_ACTION = Endpoint("POST", "/v2/volumes/{id}/actions", "block_storage_action:create")
GET_ACTION = Endpoint("GET", "/v2/actions/{id}", "actions:read")
LIST_DROPLETS = Endpoint("GET", "/v2/droplets", "droplet:read")
CREATE_SNAPSHOT = Endpoint("POST", "/v2/volumes/{id}/snapshots", "block_storage_snapshot:create")
LIST_VOLUME_SNAPSHOTS = Endpoint("GET", "/v2/volumes/{id}/snapshots", "block_storage_snapshot:read")
GET_SNAPSHOT = Endpoint("GET", "/v2/snapshots/{id}", "block_storage_snapshot:read")
DELETE_SNAPSHOT = Endpoint("DELETE", "/v2/snapshots/{id}", "block_storage_snapshot:delete")

ENDPOINTS = (
    CREATE_VOLUME,
    LIST_VOLUMES,
    GET_VOLUME,
    DELETE_VOLUME,
    VOLUME_ACTION,
    GET_ACTION,
    LIST_DROPLETS,
    CREATE_SNAPSHOT,
    LIST_VOLUME_SNAPSHOTS,
    GET_SNAPSHOT,
    DELETE_SNAPSHOT,
)
"""Every call the driver can make; tests assert nothing else is ever requested."""


class Conflict(errors.DriverConfigError):
    """409/422: the API refused the request as it stands (a name taken, a volume attached)."""


class Client:
    """One API endpoint and token. Methods return the decoded JSON object of the answer."""

    __slots__ = ("_base", "_http", "_scope", "_token")

    def __init__(self, http: httpx.Client, *, base_url: str, token: str, scope: ErrorScope) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._token = token
        self._scope = scope

    def __repr__(self) -> str:
        return f"Client({self._base!r})"

    def call(
        self,
        endpoint: Endpoint,
        *,
        ids: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        import httpx

        path = endpoint.template.format(**(ids or {}))
        try:
            response = self._http.request(
                endpoint.method,
                self._base + path,
                params=dict(params) if params else None,
                json=dict(body) if body is not None else None,
                headers={
                    "Authorization": f"Bearer {self._token}",
                    "User-Agent": USER_AGENT,
                    "Accept": "application/json",
                },
            )
        except httpx.TimeoutException:
            raise self._error(
                errors.DriverTransientError, f"{endpoint} timed out ({self._base})"
            ) from None
        except httpx.TransportError as exc:
            reason = type(exc).__name__
            raise self._error(
                errors.DriverTransientError,
                f"{endpoint} failed: cannot reach {self._base} ({reason})",
            ) from None
        return self._answer(endpoint, response)

    def _error(
        self, kind: type[errors.DriverError], message: str, retry_after: float | None = None
    ) -> errors.DriverError:
        scope = self._scope
        where = {"driver": scope.driver, "operation": scope.operation, "address": scope.address}
        text = f"{scope.driver}: {message}"
        if kind is errors.DriverTransientError:
            return errors.DriverTransientError(text, retry_after=retry_after, **where)
        return kind(text, **where)

    def _answer(self, endpoint: Endpoint, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if status == 204:
            return {}
        data = _json(response)
        if 200 <= status < 300:
            return data
        said = _message(data)
        what = f"{endpoint} → {status}"
        if status == 401:
            raise self._error(
                errors.DriverAuthError,
                f"{what}: DigitalOcean rejected the API token ({said}); it must be valid and "
                f"carry the scope {endpoint.scope}",
            )
        if status == 403:
            raise self._error(
                errors.DriverAuthError,
                f"{what}: the API token lacks the scope {endpoint.scope} ({said})",
            )
        if status == 404:
            raise self._error(errors.ResourceNotFound, f"{what}: not found ({said})")
        if status == 429 or status >= 500:
            why = "rate limited" if status == 429 else "DigitalOcean failed"
            raise self._error(
                errors.DriverTransientError, f"{what}: {why} ({said})", _retry_after(response)
            )
        if status in (409, 422):
            raise self._error(Conflict, f"{what}: {said}")
        raise self._error(errors.DriverConfigError, f"{what}: {said}")


def _json(response: httpx.Response) -> dict[str, Any]:
    if not response.content:
        return {}
    try:
        data = response.json()
    except ValueError:
        return {"message": f"a non-JSON answer ({len(response.content)} bytes)"}
    return data if isinstance(data, dict) else {"message": "an unexpected answer"}


def _message(data: Mapping[str, Any]) -> str:
    ident, message = data.get("id"), data.get("message")
    parts = [str(p) for p in (ident, message) if isinstance(p, str) and p]
    return ": ".join(parts) or "no message"


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait: ``Retry-After`` (seconds or an HTTP date), else ``ratelimit-reset``
    (a Unix time) when nothing remains of the limit."""
    header = response.headers.get("retry-after")
    if header:
        header = header.strip()
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - time.time())
    # DigitalOcean sends ratelimit-reset on every answer; it only says when to come back
    # once nothing remains of the budget.
    remaining = response.headers.get("ratelimit-remaining", "").strip()
    reset = response.headers.get("ratelimit-reset", "").strip()
    if remaining == "0" and reset.isdigit():
        return max(0.0, float(reset) - time.time())
    return None
