"""The HTTP endpoints on a real server on 127.0.0.1 (port 0)."""

from __future__ import annotations

import io
import json

import httpx
import pytest

from rune_sync.watch import http
from rune_sync.watch.logs import Log
from rune_sync.watch.loop import Inbox
from rune_sync.watch.metrics import Health, Metrics
from tests.watch.test_metrics import finished

SECRET = b"topsecret-value"


@pytest.fixture
def served():
    inbox = Inbox()
    out = io.StringIO()
    log = Log(out, fmt="json")
    metrics = Metrics()
    health = Health(unhealthy_after=2)
    hook = http.Webhook(secret=SECRET, inbox=inbox, log=log, clock=lambda: 5.0, metrics=metrics)
    server = http.Server(
        host="127.0.0.1",
        port=0,
        routes=http.Routes(health=health, metrics=metrics, webhook=hook),
    )
    server.start()
    host, port = server.address
    try:
        yield f"http://{host}:{port}", inbox, out, health, metrics
    finally:
        server.close()


def signed(body: bytes, **headers: str) -> dict[str, str]:
    return {"X-Hub-Signature-256": http.signature(SECRET, body), **headers}


def test_a_signed_push_is_accepted_and_queues_one_cycle(served):
    base, inbox, out, *_ = served
    body = b'{"ref": "refs/heads/main"}'
    reply = httpx.post(
        f"{base}/webhook", content=body, headers=signed(body, **{"X-GitHub-Event": "push"})
    )
    assert reply.status_code == 202
    [request] = inbox.take(timeout=0)
    assert (request.trigger.value, request.at, request.detail) == ("webhook", 5.0, "push")
    assert json.loads(out.getvalue().splitlines()[-1])["result"] == "accepted"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature-256": http.signature(b"other", b"{}")},
        {"X-Hub-Signature-256": "garbage"},
    ],
    ids=["missing", "zeros", "other-secret", "malformed"],
)
def test_a_missing_or_bad_signature_gets_401_and_triggers_nothing(served, headers):
    base, inbox, out, _, metrics = served
    reply = httpx.post(f"{base}/webhook", content=b"{}", headers=headers)
    assert reply.status_code == 401
    assert inbox.take(timeout=0) == []
    record = json.loads(out.getvalue().splitlines()[-1])
    assert record["result"] == "rejected" and record["level"] == "warning"
    assert SECRET.decode() not in out.getvalue()
    assert b'rune_sync_watch_webhook_requests_total{outcome="rejected"} 1.0' in metrics.render()


def test_a_ping_is_answered_and_triggers_nothing(served):
    base, inbox, *_ = served
    reply = httpx.post(
        f"{base}/webhook", content=b"{}", headers=signed(b"{}", **{"X-GitHub-Event": "ping"})
    )
    assert reply.status_code == 200
    assert inbox.take(timeout=0) == []


def test_an_oversized_body_is_refused_unread(served):
    base, inbox, *_ = served
    body = b"x" * (http.MAX_BODY + 1)
    reply = httpx.post(f"{base}/webhook", content=body, headers=signed(body))
    assert reply.status_code == 413
    assert inbox.take(timeout=0) == []


def test_healthz_answers_200_until_stalled_then_503(served):
    base, _, _, health, _ = served
    assert httpx.get(f"{base}/healthz").json()["status"] == "starting"
    health.observe(finished(failures=1, error="broken.yaml:1:1: bad"))
    reply = httpx.get(f"{base}/healthz")
    assert reply.status_code == 200
    assert reply.json() == {
        "status": "retrying",
        "failures": 1,
        "lastError": "broken.yaml:1:1: bad",
    }
    health.observe(finished(failures=2, error="again"))
    assert httpx.get(f"{base}/healthz").status_code == 503
    health.observe(finished(failures=0))
    assert httpx.get(f"{base}/healthz").json()["status"] == "ok"


def test_metrics_are_served_in_the_text_format(served):
    base, *_ = served
    reply = httpx.get(f"{base}/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "rune_sync_watch_cycles_total" in reply.text


def test_unknown_paths_and_methods_get_404(served):
    base, *_ = served
    assert httpx.get(f"{base}/webhook").status_code == 404
    assert httpx.post(f"{base}/metrics", content=b"").status_code == 404
    assert httpx.get(f"{base}/").status_code == 404


def test_a_server_without_a_route_does_not_serve_it():
    server = http.Server(
        host="127.0.0.1", port=0, routes=http.Routes(health=Health(unhealthy_after=1))
    )
    server.start()
    try:
        host, port = server.address
        assert server.serves == "/healthz"
        assert httpx.get(f"http://{host}:{port}/metrics").status_code == 404
        assert httpx.post(f"http://{host}:{port}/webhook", content=b"{}").status_code == 404
    finally:
        server.close()


def test_an_ipv6_address_is_served():
    try:
        server = http.Server(
            host="::1", port=0, routes=http.Routes(health=Health(unhealthy_after=1))
        )
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    server.start()
    try:
        _, port = server.address
        assert httpx.get(f"http://[::1]:{port}/healthz").status_code == 200
    finally:
        server.close()
