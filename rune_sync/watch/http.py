"""The watcher's HTTP endpoints: ``/healthz``, ``/metrics`` and ``POST /webhook``.

``--listen`` serves health and metrics; ``--webhook-listen`` serves the webhook (the
same address may serve all three). Each server is a stdlib ``ThreadingHTTPServer`` in a
daemon thread; handlers only read the health and metrics objects or push a request into
the loop's inbox — never run a cycle.

The webhook follows GitHub's form: the body's HMAC-SHA256 under the shared secret, hex,
in ``X-Hub-Signature-256: sha256=…``, compared in constant time. A missing or wrong
signature gets 401, is logged (without the secret or the signature) and triggers
nothing; a body over :data:`MAX_BODY` gets 413 unread; a ``ping`` event is answered and
triggers nothing. Anything else signed is accepted (202) and queues one cycle.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rune_sync.watch.logs import Log
from rune_sync.watch.loop import Inbox, Request, Trigger
from rune_sync.watch.metrics import CONTENT_TYPE, Health, Metrics

MAX_BODY = 1024 * 1024
"""Largest webhook body read (bytes); a push event's payload is far smaller."""

SIGNATURE_HEADER = "X-Hub-Signature-256"


def signature(secret: bytes, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    status: HTTPStatus
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


class Webhook:
    """Checks a delivery and, when it is genuine, queues a cycle."""

    def __init__(
        self,
        *,
        secret: bytes,
        inbox: Inbox,
        log: Log,
        clock: Callable[[], float],
        metrics: Metrics | None = None,
    ) -> None:
        if not secret:
            raise ValueError("the webhook secret is empty")
        self._secret = secret
        self._inbox = inbox
        self._log = log
        self._clock = clock
        self._metrics = metrics

    def deliver(self, *, headers: dict[str, str], body: bytes, peer: str) -> Reply:
        given = headers.get(SIGNATURE_HEADER.lower(), "")
        expected = signature(self._secret, body)
        if not given or not hmac.compare_digest(given.encode(), expected.encode()):
            why = "missing signature" if not given else "bad signature"
            self._count("rejected")
            self._log.record("webhook", level="warning", result="rejected", reason=why, peer=peer)
            return Reply(status=HTTPStatus.UNAUTHORIZED, body=f"{why}\n".encode())
        event = headers.get("x-github-event", "")
        self._count("accepted")
        if event == "ping":
            self._log.record("webhook", result="ping", peer=peer)
            return Reply(status=HTTPStatus.OK, body=b"pong\n")
        self._log.record("webhook", result="accepted", github_event=event or None, peer=peer)
        self._inbox.push(Request(trigger=Trigger.WEBHOOK, at=self._clock(), detail=event))
        return Reply(status=HTTPStatus.ACCEPTED, body=b"queued\n")

    def _count(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.webhooks.labels(outcome=outcome).inc()


@dataclass(frozen=True, slots=True, kw_only=True)
class Routes:
    """What one server answers; None leaves that path unserved (404)."""

    health: Health | None = None
    metrics: Metrics | None = None
    webhook: Webhook | None = None


class Server:
    """A threading HTTP server on ``host:port`` (port 0 picks one) serving ``routes``."""

    def __init__(self, *, host: str, port: int, routes: Routes) -> None:
        self.serves = ",".join(
            path
            for path, part in (
                ("/healthz", routes.health),
                ("/metrics", routes.metrics),
                ("/webhook", routes.webhook),
            )
            if part is not None
        )
        handler = type("Handler", (_Handler,), {"routes": routes})
        server_class = _Server6 if ":" in host else ThreadingHTTPServer
        self._httpd = server_class((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"http-{port}", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)


class _Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    routes: Routes
    server_version = "rune-sync-watch"
    protocol_version = "HTTP/1.1"
    timeout = 10
    """Seconds a connection may sit idle (a client that never sends its body)."""

    def do_GET(self) -> None:
        if self.path == "/healthz" and self.routes.health is not None:
            view = self.routes.health.view()
            body = json.dumps(
                {"status": view.state, "failures": view.failures, "lastError": view.last_error}
            )
            status = HTTPStatus.OK if view.ok else HTTPStatus.SERVICE_UNAVAILABLE
            self._send(Reply(status=status, body=body.encode(), content_type="application/json"))
        elif self.path == "/metrics" and self.routes.metrics is not None:
            self._send(
                Reply(
                    status=HTTPStatus.OK,
                    body=self.routes.metrics.render(),
                    content_type=CONTENT_TYPE,
                )
            )
        else:
            self._send(Reply(status=HTTPStatus.NOT_FOUND, body=b"not found\n"))

    def do_POST(self) -> None:
        if self.path != "/webhook" or self.routes.webhook is None:
            self._send(Reply(status=HTTPStatus.NOT_FOUND, body=b"not found\n"), drain=True)
            return
        length_text = self.headers.get("Content-Length")
        try:
            length = int(length_text) if length_text is not None else -1
        except ValueError:
            length = -1
        if length < 0:
            self._send(Reply(status=HTTPStatus.LENGTH_REQUIRED, body=b"length required\n"))
            return
        if length > MAX_BODY:
            self._send(Reply(status=HTTPStatus.REQUEST_ENTITY_TOO_LARGE, body=b"too large\n"))
            return
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.routes.webhook.deliver(headers=headers, body=body, peer=self.client_address[0])
        self._send(reply)

    def _send(self, reply: Reply, *, drain: bool = False) -> None:
        if drain:
            self.close_connection = True
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        if reply.status >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: object) -> None:
        # Access lines would repeat what the watch log records (webhook decisions);
        # probes of /healthz every few seconds would drown it.
        return None
