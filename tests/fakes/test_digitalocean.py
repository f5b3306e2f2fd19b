"""The fake DigitalOcean API itself, driven over HTTP with httpx: endpoints, scopes,
actions, snapshots, pagination, region rules, fault switches and the request log."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.digitalocean import (
    ACTIONS_READ,
    BLOCK_STORAGE_ACTION_CREATE,
    BLOCK_STORAGE_CREATE,
    BLOCK_STORAGE_DELETE,
    BLOCK_STORAGE_READ,
    BLOCK_STORAGE_SNAPSHOT_CREATE,
    BLOCK_STORAGE_SNAPSHOT_DELETE,
    BLOCK_STORAGE_SNAPSHOT_READ,
    DRIVER_SCOPES,
    DROPLET_READ,
    ENDPOINTS,
    FakeDigitalOcean,
    scopes_except,
    token_hash,
)

RATE_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")

# The fake speaks plain HTTP; sharing one TLS context just spares every client the cost
# of loading the CA bundle.
_TLS = ssl.create_default_context()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def client(do_api: FakeDigitalOcean, token: str | None = None) -> httpx.Client:
    headers = bearer(token) if token else {}
    return httpx.Client(base_url=do_api.url, headers=headers, timeout=5, verify=_TLS)


@pytest.fixture
def api(do_api: FakeDigitalOcean) -> Iterator[httpx.Client]:
    with client(do_api, do_api.token) as api_client:
        yield api_client


def make_volume(
    api: httpx.Client, name: str = "vol-a", region: str = "nyc3", size: int = 10, **extra: Any
) -> dict[str, Any]:
    body = {"name": name, "region": region, "size_gigabytes": size, **extra}
    answer = api.post("/v2/volumes", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["volume"]


def start_action(api: httpx.Client, volume_id: str, **body: Any) -> dict[str, Any]:
    answer = api.post(f"/v2/volumes/{volume_id}/actions", json=body)
    assert answer.status_code == 202, answer.text
    return answer.json()["action"]


def poll(api: httpx.Client, action_id: int) -> dict[str, Any]:
    answer = api.get(f"/v2/actions/{action_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()["action"]


def run_action(api: httpx.Client, volume_id: str, **body: Any) -> dict[str, Any]:
    action = start_action(api, volume_id, **body)
    for _ in range(50):
        action = poll(api, action["id"])
        if action["status"] != "in-progress":
            return action
    raise AssertionError(f"action {action['id']} never finished")


def assert_error(answer: httpx.Response, status: int, ident: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["id"] == ident
    assert isinstance(body["message"], str) and body["message"]
    return body


# ------------------------------------------------------------------ server and fixture


def test_fixture_serves_on_loopback_with_an_ephemeral_port(do_api: FakeDigitalOcean) -> None:
    assert do_api.url.startswith("http://127.0.0.1:")
    assert int(do_api.url.rsplit(":", 1)[1]) > 0
    assert do_api.token not in repr(do_api)


def test_start_and_stop_are_cheap_and_stop_closes_the_port() -> None:
    began = time.monotonic()
    for _ in range(5):
        fake = FakeDigitalOcean().start()
        url = fake.url
        with client(fake, fake.token) as api:
            assert api.get(url + "/v2/volumes").status_code == 200
            fake.stop()
            with pytest.raises(httpx.TransportError):
                api.get(url + "/v2/volumes")
    assert time.monotonic() - began < 3


# ------------------------------------------------------------------ authentication and scopes


def test_missing_bad_or_malformed_token_is_401_and_never_echoed(
    do_api: FakeDigitalOcean,
) -> None:
    secret = "dop_v1_" + "ab" * 32
    with client(do_api) as anonymous:
        answers = [
            anonymous.get("/v2/volumes"),
            anonymous.get("/v2/volumes", headers=bearer(secret)),
            anonymous.get("/v2/volumes", headers={"Authorization": f"Basic {secret}"}),
        ]
    for answer in answers:
        body = assert_error(answer, 401, "unauthorized")
        assert body["message"] == "Unable to authenticate you"
        assert secret not in answer.text
    missing, unknown, basic = do_api.requests
    assert (missing.token, missing.token_hash, missing.authenticated) == (None, None, False)
    assert (unknown.token, unknown.authenticated) == (None, False)
    assert unknown.token_hash == token_hash(secret)
    assert basic.token_hash is None
    assert secret not in repr(do_api.requests)


@pytest.fixture
def seeded(do_api: FakeDigitalOcean, api: httpx.Client) -> dict[str, Any]:
    do_api.add_droplet("node-1", "nyc3")
    volume = do_api.add_volume("vol-a", "nyc3", 10)
    snapshot = do_api.add_snapshot("snap-a", volume_id=volume["id"])
    do_api.action_polls = 1000
    action = start_action(api, volume["id"], type="resize", size_gigabytes=11, region="nyc3")
    do_api.clear_requests()
    return {"volume": volume["id"], "snapshot": snapshot["id"], "action": action["id"]}


SCOPE_CASES = [
    ("POST", "/v2/volumes", {"name": "vol-new", "region": "nyc3", "size_gigabytes": 5},
     BLOCK_STORAGE_CREATE, 201),
    ("GET", "/v2/volumes?name=vol-a&region=nyc3", None, BLOCK_STORAGE_READ, 200),
    ("GET", "/v2/volumes/{volume}", None, BLOCK_STORAGE_READ, 200),
    ("DELETE", "/v2/volumes/{volume}", None, BLOCK_STORAGE_DELETE, 204),
    ("POST", "/v2/volumes/{volume}/actions",
     {"type": "resize", "size_gigabytes": 30, "region": "nyc3"}, BLOCK_STORAGE_ACTION_CREATE, 202),
    ("GET", "/v2/actions/{action}", None, ACTIONS_READ, 200),
    ("GET", "/v2/droplets?name=node-1", None, DROPLET_READ, 200),
    ("POST", "/v2/volumes/{volume}/snapshots", {"name": "snap-new"},
     BLOCK_STORAGE_SNAPSHOT_CREATE, 201),
    ("GET", "/v2/snapshots/{snapshot}", None, BLOCK_STORAGE_SNAPSHOT_READ, 200),
    ("GET", "/v2/volumes/{volume}/snapshots", None, BLOCK_STORAGE_SNAPSHOT_READ, 200),
    ("DELETE", "/v2/snapshots/{snapshot}", None, BLOCK_STORAGE_SNAPSHOT_DELETE, 204),
]  # fmt: skip


def test_scope_cases_cover_every_endpoint_and_every_driver_scope() -> None:
    served = {f"{m} {p.split('?')[0].replace('{volume}', '{id}')}" for m, p, *_ in SCOPE_CASES}
    served = {s.replace("{action}", "{id}").replace("{snapshot}", "{id}") for s in served}
    assert served == ENDPOINTS
    assert {case[3] for case in SCOPE_CASES} == DRIVER_SCOPES


@pytest.mark.parametrize(
    ("method", "path", "body", "scope", "success"),
    SCOPE_CASES,
    ids=[f"{c[0]} {c[1]}" for c in SCOPE_CASES],
)
def test_each_endpoint_needs_its_scope(
    do_api: FakeDigitalOcean,
    seeded: dict[str, Any],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    scope: str,
    success: int,
) -> None:
    url = path.format(**seeded)
    without = "dop_v1_" + "01" * 32
    only = "dop_v1_" + "02" * 32
    do_api.add_token(without, scopes_except(scope), name="without")
    do_api.add_token(only, {scope}, name="only")
    with client(do_api) as anonymous:
        refused = anonymous.request(method, url, json=body, headers=bearer(without))
        body_403 = assert_error(refused, 403, "forbidden")
        assert without not in refused.text
        assert body_403["message"] == do_api.forbidden_message

        bad = anonymous.request(method, url, json=body, headers=bearer("dop_v1_" + "ff" * 32))
        assert_error(bad, 401, "unauthorized")

        allowed = anonymous.request(method, url, json=body, headers=bearer(only))
        assert allowed.status_code == success, allowed.text
    tokens = [r.token for r in do_api.requests]
    assert tokens == ["without", None, "only"]
    assert all(r.endpoint is not None for r in do_api.requests)


def test_read_only_scopes_cannot_write(do_api: FakeDigitalOcean) -> None:
    reader = "dop_v1_" + "03" * 32
    do_api.add_token(reader, [BLOCK_STORAGE_READ, ACTIONS_READ, DROPLET_READ])
    with client(do_api, reader) as api:
        assert api.get("/v2/volumes").status_code == 200
        created = api.post("/v2/volumes", json={"name": "v", "region": "nyc3", "size_gigabytes": 1})
        assert_error(created, 403, "forbidden")
    assert do_api.volumes == []


def test_a_removed_token_stops_working(do_api: FakeDigitalOcean) -> None:
    token = "dop_v1_" + "04" * 32
    do_api.add_token(token)
    with client(do_api, token) as api:
        assert api.get("/v2/droplets").status_code == 200
        do_api.remove_token(token)
        assert_error(api.get("/v2/droplets"), 401, "unauthorized")


# ------------------------------------------------------------------ volumes


def test_create_get_list_and_delete_a_volume(do_api: FakeDigitalOcean, api: httpx.Client) -> None:
    volume = make_volume(
        api, "rune-prod-db", "fra1", 25, filesystem_type="xfs", description="db", tags=["rune"]
    )
    assert set(volume) >= {
        "id", "region", "droplet_ids", "name", "description", "size_gigabytes",
        "created_at", "filesystem_type", "filesystem_label", "tags",
    }  # fmt: skip
    assert len(volume["id"]) == 36 and volume["id"].count("-") == 4
    assert volume["region"]["slug"] == "fra1"
    assert set(volume["region"]) == {"slug", "name", "sizes", "features", "available"}
    assert volume["droplet_ids"] == []
    assert (volume["size_gigabytes"], volume["filesystem_type"]) == (25, "xfs")
    assert volume["created_at"].endswith("Z")

    got = api.get(f"/v2/volumes/{volume['id']}")
    assert got.status_code == 200 and got.json() == {"volume": volume}

    make_volume(api, "rune-prod-db", "nyc3")
    listed = api.get("/v2/volumes", params={"name": "rune-prod-db", "region": "fra1"}).json()
    assert [v["id"] for v in listed["volumes"]] == [volume["id"]]
    assert listed["meta"] == {"total": 1} and listed["links"] == {}
    assert api.get("/v2/volumes", params={"name": "rune-prod-db"}).json()["meta"]["total"] == 2
    assert api.get("/v2/volumes", params={"name": "nothing"}).json()["volumes"] == []

    deleted = api.delete(f"/v2/volumes/{volume['id']}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(api.get(f"/v2/volumes/{volume['id']}"), 404, "not_found")
    assert_error(api.delete(f"/v2/volumes/{volume['id']}"), 404, "not_found")
    assert do_api.find_volumes("rune-prod-db", "fra1") == []


def test_same_name_in_the_same_region_is_409_elsewhere_fine(api: httpx.Client) -> None:
    make_volume(api, "vol-a", "nyc3")
    again = api.post("/v2/volumes", json={"name": "vol-a", "region": "nyc3", "size_gigabytes": 1})
    assert_error(again, 409, "conflict")
    make_volume(api, "vol-a", "ams3")


@pytest.mark.parametrize(
    "body",
    [
        {"region": "nyc3", "size_gigabytes": 1},
        {"name": "Upper", "region": "nyc3", "size_gigabytes": 1},
        {"name": "1starts-with-digit", "region": "nyc3", "size_gigabytes": 1},
        {"name": "under_score", "region": "nyc3", "size_gigabytes": 1},
        {"name": "a" * 65, "region": "nyc3", "size_gigabytes": 1},
        {"name": "vol", "size_gigabytes": 1},
        {"name": "vol", "region": "xyz9", "size_gigabytes": 1},
        {"name": "vol", "region": "nyc2", "size_gigabytes": 1},
        {"name": "vol", "region": "nyc3"},
        {"name": "vol", "region": "nyc3", "size_gigabytes": 0},
        {"name": "vol", "region": "nyc3", "size_gigabytes": 16385},
        {"name": "vol", "region": "nyc3", "size_gigabytes": "10"},
        {"name": "vol", "region": "nyc3", "size_gigabytes": 1, "filesystem_type": "btrfs"},
        {"name": "vol", "region": "nyc3", "size_gigabytes": 1, "filesystem_label": "x"},
        {"name": "vol", "region": "nyc3", "size_gigabytes": 1, "filesystem_type": "xfs",
         "filesystem_label": "thirteen-char"},
        {"name": "vol", "region": "nyc3", "size_gigabytes": 1, "tags": "not-a-list"},
    ],
)  # fmt: skip
def test_invalid_volume_requests_are_422(api: httpx.Client, body: dict[str, Any]) -> None:
    assert_error(api.post("/v2/volumes", json=body), 422, "unprocessable_entity")


def test_unparseable_body_is_400_and_longest_name_is_accepted(api: httpx.Client) -> None:
    garbled = api.post("/v2/volumes", content=b"{not json", headers={"Content-Type": "x"})
    assert_error(garbled, 400, "bad_request")
    assert_error(api.post("/v2/volumes", json=["a"]), 400, "bad_request")
    make_volume(api, "a" + "b" * 63)


def test_a_chunked_body_is_read_whole_and_the_connection_stays_usable(
    api: httpx.Client,
) -> None:
    def pieces() -> Iterator[bytes]:
        yield b'{"name": "chunky", "region": "nyc3", '
        yield b'"size_gigabytes": 3}'

    answer = api.post("/v2/volumes", content=pieces(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 201, answer.text
    assert api.get("/v2/volumes", params={"name": "chunky"}).json()["meta"]["total"] == 1


def test_listing_paginates_with_links_and_meta(do_api: FakeDigitalOcean, api: httpx.Client) -> None:
    ids = [make_volume(api, f"vol-{n}")["id"] for n in range(5)]
    first = api.get("/v2/volumes", params={"per_page": 2, "region": "nyc3"}).json()
    assert [v["id"] for v in first["volumes"]] == ids[:2]
    assert first["meta"] == {"total": 5}
    pages = first["links"]["pages"]
    assert set(pages) == {"next", "last"}
    assert pages["next"].startswith(do_api.url + "/v2/volumes?")
    assert "page=2" in pages["next"] and "page=3" in pages["last"]
    assert "region=nyc3" in pages["next"] and "per_page=2" in pages["next"]

    seen = [v["id"] for v in first["volumes"]]
    url = pages.get("next")
    while url:
        page = api.get(url).json()
        seen += [v["id"] for v in page["volumes"]]
        url = page["links"].get("pages", {}).get("next")
    assert seen == ids
    last = api.get(pages["last"]).json()
    assert set(last["links"]["pages"]) == {"first", "prev"}
    assert api.get("/v2/volumes").json()["links"] == {}
    assert api.get("/v2/volumes", params={"page": 9}).json()["volumes"] == []


def test_droplets_are_listed_and_filtered_by_exact_name(
    do_api: FakeDigitalOcean, api: httpx.Client
) -> None:
    node1 = do_api.add_droplet("node-1", "nyc3")
    do_api.add_droplet("node-10", "fra1")
    found = api.get("/v2/droplets", params={"name": "NODE-1"}).json()
    assert [d["id"] for d in found["droplets"]] == [node1["id"]]
    assert found["meta"] == {"total": 1} and "links" in found
    droplet = found["droplets"][0]
    assert droplet["name"] == "node-1" and isinstance(droplet["id"], int)
    assert droplet["region"]["slug"] == "nyc3" and droplet["region"]["name"] == "New York 3"
    assert api.get("/v2/droplets").json()["meta"]["total"] == 2
    assert api.get("/v2/droplets", params={"name": "node"}).json()["droplets"] == []


# ------------------------------------------------------------------ actions


def test_attach_detach_and_delete_follow_the_action_lifecycle(
    do_api: FakeDigitalOcean, api: httpx.Client
) -> None:
    droplet = do_api.add_droplet("node-1", "nyc3")
    volume = make_volume(api)
    action = start_action(api, volume["id"], type="attach", droplet_id=droplet["id"], region="nyc3")
    assert action["status"] == "in-progress" and action["completed_at"] is None
    assert action["type"] == "attach_volume" and isinstance(action["id"], int)
    assert action["resource_type"] == "volume" and action["region_slug"] == "nyc3"
    assert set(action) >= {"id", "status", "type", "started_at", "completed_at", "resource_id"}
    assert api.get(f"/v2/volumes/{volume['id']}").json()["volume"]["droplet_ids"] == []

    done = poll(api, action["id"])
    assert done["status"] == "completed" and done["completed_at"] is not None
    assert api.get(f"/v2/volumes/{volume['id']}").json()["volume"]["droplet_ids"] == [droplet["id"]]
    assert do_api.droplet(droplet["id"])["volume_ids"] == [volume["id"]]

    assert_error(api.delete(f"/v2/volumes/{volume['id']}"), 409, "conflict")
    again = api.post(
        f"/v2/volumes/{volume['id']}/actions", json={"type": "attach", "droplet_id": droplet["id"]}
    )
    assert_error(again, 422, "unprocessable_entity")

    detached = run_action(api, volume["id"], type="detach", droplet_id=droplet["id"], region="nyc3")
    assert (detached["status"], detached["type"]) == ("completed", "detach_volume")
    assert do_api.volume(volume["id"])["droplet_ids"] == []
    assert do_api.droplet(droplet["id"])["volume_ids"] == []
    assert api.delete(f"/v2/volumes/{volume['id']}").status_code == 204


def test_actions_finish_after_the_configured_number_of_polls(
    do_api: FakeDigitalOcean, api: httpx.Client
) -> None:
    do_api.action_polls = 3
    volume = make_volume(api)
    action = start_action(api, volume["id"], type="resize", size_gigabytes=20)
    api.get(f"/v2/volumes/{volume['id']}")  # other requests do not count as polls
    assert [poll(api, action["id"])["status"] for _ in range(4)] == [
        "in-progress", "in-progress", "completed", "completed",
    ]  # fmt: skip
    assert do_api.volume(volume["id"])["size_gigabytes"] == 20


def test_actions_can_finish_by_time_alone(do_api: FakeDigitalOcean, api: httpx.Client) -> None:
    do_api.action_polls, do_api.action_seconds = 0, 0.2
    volume = make_volume(api)
    action = start_action(api, volume["id"], type="resize", size_gigabytes=20)
    assert poll(api, action["id"])["status"] == "in-progress"
    time.sleep(0.25)
    assert api.get(f"/v2/volumes/{volume['id']}").json()["volume"]["size_gigabytes"] == 20
    assert do_api.action(action["id"])["status"] == "completed"


def test_unknown_action_is_404(api: httpx.Client) -> None:
    assert_error(api.get("/v2/actions/999"), 404, "not_found")
    assert_error(api.get("/v2/actions/not-a-number"), 404, "not_found")


def test_attach_to_a_droplet_in_another_region_is_refused(
    do_api: FakeDigitalOcean, api: httpx.Client
) -> None:
    far = do_api.add_droplet("far", "fra1")
    volume = make_volume(api, region="nyc3")
    refused = api.post(
        f"/v2/volumes/{volume['id']}/actions", json={"type": "attach", "droplet_id": far["id"]}
    )
    assert_error(refused, 422, "unprocessable_entity")
    assert do_api.actions == []

    do_api.cross_region_attach = "errored"
    action = run_action(api, volume["id"], type="attach", droplet_id=far["id"])
    assert action["status"] == "errored"
    assert do_api.volume(volume["id"])["droplet_ids"] == []


def test_attach_and_detach_refusals(do_api: FakeDigitalOcean, api: httpx.Client) -> None:
    one = do_api.add_droplet("one", "nyc3")
    two = do_api.add_droplet("two", "nyc3")
    volume = make_volume(api)
    other = make_volume(api, "vol-b")
    actions = f"/v2/volumes/{volume['id']}/actions"

    assert_error(api.post(actions, json={"type": "attach", "droplet_id": 1}), 404, "not_found")
    assert_error(api.post(actions, json={"type": "attach"}), 422, "unprocessable_entity")
    assert_error(api.post(actions, json={"type": "format"}), 422, "unprocessable_entity")
    wrong_region = {"type": "attach", "droplet_id": one["id"], "region": "ams3"}
    assert_error(api.post(actions, json=wrong_region), 422, "unprocessable_entity")
    detach = {"type": "detach", "droplet_id": one["id"]}
    assert api.post(actions, json=detach).json()["message"] == "Attachment not found"
    assert_error(api.post("/v2/volumes/nope/actions", json=detach), 404, "not_found")

    do_api.action_polls = 1000
    start_action(api, volume["id"], type="attach", droplet_id=one["id"])
    busy = api.post(
        f"/v2/volumes/{other['id']}/actions", json={"type": "attach", "droplet_id": one["id"]}
    )
    assert "pending event" in assert_error(busy, 422, "unprocessable_entity")["message"]
    do_api.settle_actions()
    taken = api.post(actions, json={"type": "attach", "droplet_id": two["id"]})
    assert "already attached" in assert_error(taken, 422, "unprocessable_entity")["message"]


def test_resize_only_grows_and_is_applied_when_done(
    do_api: FakeDigitalOcean, api: httpx.Client
) -> None:
    droplet = do_api.add_droplet("node-1", "nyc3")
    volume = make_volume(api, size=10)
    actions = f"/v2/volumes/{volume['id']}/actions"
    for size in (5, 10, 16385):
        shrink = api.post(actions, json={"type": "resize", "size_gigabytes": size})
        assert_error(shrink, 422, "unprocessable_entity")
    run_action(api, volume["id"], type="attach", droplet_id=droplet["id"])

    action = start_action(api, volume["id"], type="resize", size_gigabytes=40, region="nyc3")
    assert action["type"] == "resize_volume"
    assert do_api.volume(volume["id"])["size_gigabytes"] == 10
    assert poll(api, action["id"])["status"] == "completed"
    resized = do_api.volume(volume["id"])
    assert resized["size_gigabytes"] == 40 and resized["droplet_ids"] == [droplet["id"]]


def test_fail_actions_makes_actions_end_errored_without_effect(
    do_api: FakeDigitalOcean, api: httpx.Client
) -> None:
    droplet = do_api.add_droplet("node-1", "nyc3")
    volume = make_volume(api)
    fault = do_api.fail_actions(action_type="attach")
    resized = run_action(api, volume["id"], type="resize", size_gigabytes=11)
    assert resized["status"] == "completed"
    failed = run_action(api, volume["id"], type="attach", droplet_id=droplet["id"])
    assert failed["status"] == "errored" and failed["completed_at"] is not None
    assert do_api.volume(volume["id"])["droplet_ids"] == []
    assert (fault.hits, fault.spent) == (1, True)
    assert run_action(api, volume["id"], type="attach", droplet_id=droplet["id"])["status"] == (
        "completed"
    )


# ------------------------------------------------------------------ snapshots


def test_snapshot_create_restore_and_delete(do_api: FakeDigitalOcean, api: httpx.Client) -> None:
    volume = make_volume(api, "vol-a", "nyc3", 20, filesystem_type="ext4")
    other = make_volume(api, "vol-b", "nyc3", 5)
    taken = api.post(
        f"/v2/volumes/{volume['id']}/snapshots", json={"name": "nightly", "tags": ["rune"]}
    )
    assert taken.status_code == 201, taken.text
    snapshot = taken.json()["snapshot"]
    assert isinstance(snapshot["id"], str) and len(snapshot["id"]) == 36
    assert snapshot["name"] == "nightly" and snapshot["tags"] == ["rune"]
    assert snapshot["regions"] == ["nyc3"] and snapshot["min_disk_size"] == 20
    assert snapshot["resource_id"] == volume["id"] and snapshot["resource_type"] == "volume"
    assert "size_gigabytes" in snapshot and snapshot["created_at"].endswith("Z")

    duplicate = api.post(f"/v2/volumes/{volume['id']}/snapshots", json={"name": "nightly"})
    assert_error(duplicate, 409, "conflict")
    same_name = api.post(f"/v2/volumes/{other['id']}/snapshots", json={"name": "nightly"})
    assert same_name.status_code == 201
    nameless = api.post(f"/v2/volumes/{volume['id']}/snapshots", json={})
    assert_error(nameless, 422, "unprocessable_entity")
    assert_error(api.post("/v2/volumes/nope/snapshots", json={"name": "x"}), 404, "not_found")

    got = api.get(f"/v2/snapshots/{snapshot['id']}")
    assert got.status_code == 200 and got.json() == {"snapshot": snapshot}

    def restore(**body: Any) -> httpx.Response:
        return api.post("/v2/volumes", json={"name": "restored", **body})

    too_small = restore(region="nyc3", size_gigabytes=19, snapshot_id=snapshot["id"])
    assert_error(too_small, 422, "unprocessable_entity")
    elsewhere = restore(region="fra1", size_gigabytes=20, snapshot_id=snapshot["id"])
    assert_error(elsewhere, 422, "unprocessable_entity")
    missing = restore(region="nyc3", size_gigabytes=20, snapshot_id="0" * 36)
    assert_error(missing, 404, "not_found")
    made = restore(region="nyc3", size_gigabytes=30, snapshot_id=snapshot["id"])
    assert made.status_code == 201, made.text
    restored = made.json()["volume"]
    assert (restored["size_gigabytes"], restored["filesystem_type"]) == (30, "ext4")

    assert api.delete(f"/v2/snapshots/{snapshot['id']}").status_code == 204
    assert_error(api.get(f"/v2/snapshots/{snapshot['id']}"), 404, "not_found")
    assert_error(api.delete(f"/v2/snapshots/{snapshot['id']}"), 404, "not_found")
    assert do_api.snapshot(snapshot["id"]) is None
    assert do_api.volume(restored["id"]) is not None


def test_a_snapshot_outlives_its_volume_and_seeding_helpers_work(
    do_api: FakeDigitalOcean, api: httpx.Client
) -> None:
    droplet = do_api.add_droplet("node-1", "ams3")
    volume = do_api.add_volume("seeded", "ams3", 8, droplet_id=droplet["id"])
    assert do_api.droplet(droplet["id"])["volume_ids"] == [volume["id"]]
    snap = do_api.add_snapshot("base", volume_id=volume["id"])
    assert (snap["regions"], snap["min_disk_size"]) == (["ams3"], 8)
    do_api.remove_droplet(droplet["id"])
    assert do_api.volume(volume["id"])["droplet_ids"] == []
    assert api.delete(f"/v2/volumes/{volume['id']}").status_code == 204
    assert api.get(f"/v2/snapshots/{snap['id']}").status_code == 200
    elsewhere = do_api.add_snapshot("multi", regions=["nyc3", "sfo3"], min_disk_size=3)
    restored = make_volume(api, "from-multi", "sfo3", 3, snapshot_id=elsewhere["id"])
    assert restored["region"]["slug"] == "sfo3"


# ------------------------------------------------------------------ faults


def test_rate_limit_fault_sends_retry_after_and_reset(
    do_api: FakeDigitalOcean, api: httpx.Client
) -> None:
    fault = do_api.throttle(times=2, retry_after=3)
    now = time.time()
    for _ in range(2):
        limited = api.get("/v2/volumes")
        assert_error(limited, 429, "too_many_requests")
        assert limited.headers["retry-after"] == "3"
        assert limited.headers["ratelimit-remaining"] == "0"
        assert now + 2 <= int(limited.headers["ratelimit-reset"]) <= now + 5
    assert api.get("/v2/volumes").status_code == 200
    assert (fault.hits, fault.spent) == (2, True)
    assert [r.fault for r in do_api.requests] == ["rate_limit", "rate_limit", None]

    do_api.throttle(retry_after=None, reset_in=7)
    limited = api.get("/v2/volumes")
    assert limited.status_code == 429 and "retry-after" not in limited.headers
    assert now + 6 <= int(limited.headers["ratelimit-reset"]) <= now + 9


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_faults(do_api: FakeDigitalOcean, api: httpx.Client, status: int) -> None:
    do_api.fail(status, times=2)
    for _ in range(2):
        failed = api.post("/v2/volumes", json={"name": "v", "region": "nyc3", "size_gigabytes": 1})
        assert failed.status_code == status
        assert set(failed.json()) >= {"id", "message"}
        assert all(h in failed.headers for h in RATE_HEADERS)
    assert do_api.volumes == []
    make_volume(api, "v")


def test_faults_can_target_a_method_and_path(do_api: FakeDigitalOcean, api: httpx.Client) -> None:
    volume = make_volume(api)
    fault = do_api.fail(503, times=None, method="POST", path="/v2/volumes/{id}/actions")
    body = {"type": "resize", "size_gigabytes": 20}
    for _ in range(3):
        assert api.post(f"/v2/volumes/{volume['id']}/actions", json=body).status_code == 503
    assert api.get(f"/v2/volumes/{volume['id']}").status_code == 200
    assert api.post(f"/v2/volumes/{volume['id']}/snapshots", json={"name": "s"}).status_code == 201
    assert fault.hits == 3 and not fault.spent
    do_api.clear_faults()
    assert api.post(f"/v2/volumes/{volume['id']}/actions", json=body).status_code == 202

    do_api.fail(500, path="/v2/volumes/*")
    assert api.get("/v2/volumes").status_code == 200
    assert api.get(f"/v2/volumes/{volume['id']}").status_code == 500


def test_a_fault_can_answer_with_a_non_json_page(
    api: httpx.Client, do_api: FakeDigitalOcean
) -> None:
    do_api.fail(502, body="<html><body>502 Bad Gateway</body></html>")
    page = api.get("/v2/volumes")
    assert page.status_code == 502 and page.headers["content-type"].startswith("text/html")
    assert page.text.startswith("<html>")


def test_slow_fault_delays_and_the_request_still_takes_effect(
    do_api: FakeDigitalOcean, api: httpx.Client
) -> None:
    do_api.slow(0.2, method="GET")
    began = time.monotonic()
    assert api.get("/v2/volumes").status_code == 200
    assert time.monotonic() - began >= 0.2

    do_api.slow(0.2, method="POST", path="/v2/volumes")
    body = {"name": "late", "region": "nyc3", "size_gigabytes": 1}
    with pytest.raises(httpx.ReadTimeout):
        api.post("/v2/volumes", json=body, timeout=0.05)
    deadline = time.monotonic() + 3
    while not do_api.find_volumes("late") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(do_api.find_volumes("late", "nyc3")) == 1


def test_drop_closes_the_connection_without_an_answer(
    do_api: FakeDigitalOcean, api: httpx.Client
) -> None:
    do_api.drop(method="POST")
    with pytest.raises(httpx.RemoteProtocolError):
        api.post("/v2/volumes", json={"name": "v", "region": "nyc3", "size_gigabytes": 1})
    assert do_api.volumes == []
    dropped = do_api.requests[-1]
    assert (dropped.status, dropped.fault, dropped.endpoint) == (None, "drop", "POST /v2/volumes")
    make_volume(api, "v")


# ------------------------------------------------------------------ rate-limit headers


def test_every_answer_carries_rate_limit_headers(
    do_api: FakeDigitalOcean, api: httpx.Client
) -> None:
    volume = make_volume(api)
    answers = [
        api.get("/v2/volumes"),
        api.get("/v2/regions"),
        api.delete(f"/v2/volumes/{volume['id']}"),
        api.get("/v2/volumes", headers=bearer("nope")),
    ]
    assert [a.status_code for a in answers] == [200, 404, 204, 401]
    for answer in answers:
        assert all(h in answer.headers for h in RATE_HEADERS), answer.headers
        assert answer.headers["ratelimit-limit"] == "5000"
    remaining = [int(a.headers["ratelimit-remaining"]) for a in answers]
    assert remaining == sorted(remaining, reverse=True) and remaining[0] < 5000
    assert int(answers[0].headers["ratelimit-reset"]) >= int(time.time()) + 3500


def test_an_exhausted_budget_answers_429_until_reset(
    do_api: FakeDigitalOcean, api: httpx.Client
) -> None:
    do_api.set_rate_limit(10, remaining=0)
    exhausted = api.get("/v2/volumes")
    assert_error(exhausted, 429, "too_many_requests")
    assert exhausted.headers["ratelimit-remaining"] == "0"
    assert exhausted.headers["ratelimit-limit"] == "10"
    do_api.set_rate_limit(10, remaining=5)
    fine = api.get("/v2/volumes")
    assert fine.status_code == 200 and fine.headers["ratelimit-remaining"] == "4"


# ------------------------------------------------------------------ the request log


def test_unknown_endpoints_are_404_and_recorded(
    do_api: FakeDigitalOcean, api: httpx.Client
) -> None:
    volume = make_volume(api)
    strays = [
        ("GET", "/v2/regions"),
        ("POST", "/v2/volumes/actions"),
        ("PUT", f"/v2/volumes/{volume['id']}"),
        ("GET", "/v2/volumes/snapshots/abc"),
        ("GET", "/v2/account"),
    ]
    for method, path in strays:
        answer = api.request(method, path, json={} if method != "GET" else None)
        assert_error(answer, 404, "not_found")
    unknown = do_api.unknown_requests()
    assert [(r.method, r.path) for r in unknown] == strays
    assert all(r.status == 404 and r.token == "full-access" for r in unknown)
    assert "GET /v2/regions" in do_api.endpoints_called()
    assert "POST /v2/volumes" in do_api.endpoints_called()
    assert [r.path for r in do_api.calls("GET", "/v2/volumes/**")] == [strays[3][1]]


def test_calls_filter_by_method_path_and_endpoint(
    do_api: FakeDigitalOcean, api: httpx.Client
) -> None:
    droplet = do_api.add_droplet("node-1", "nyc3")
    volume = make_volume(api)
    run_action(api, volume["id"], type="attach", droplet_id=droplet["id"])
    polls = do_api.calls(endpoint="GET /v2/actions/{id}")
    assert len(polls) == 1 and polls[0].status == 200
    assert do_api.calls("get", "/v2/actions/*") == polls
    created = do_api.calls("POST", "/v2/volumes")
    assert created[0].body == {"name": "vol-a", "region": "nyc3", "size_gigabytes": 10}
    assert do_api.endpoints_called() == {
        "POST /v2/volumes", "POST /v2/volumes/{id}/actions", "GET /v2/actions/{id}",
    }  # fmt: skip
    do_api.clear_requests()
    assert do_api.requests == []


def test_the_log_never_holds_a_token(do_api: FakeDigitalOcean, api: httpx.Client) -> None:
    other = "dop_v1_" + "5a" * 32
    do_api.add_token(other, name="ci")
    leaky = {"name": "vol", "region": "nyc3", "size_gigabytes": 1, "description": do_api.token}
    api.post("/v2/volumes", json=leaky)
    api.post("/v2/volumes", json={"name": "x", "region": "nyc3", "size_gigabytes": 1,
                                  "description": other})  # fmt: skip
    answer = api.get("/v2/volumes", params={"name": other})
    assert other not in answer.text
    weird = api.get(f"/v2/volumes/{do_api.token}")
    assert do_api.token not in weird.text
    log = do_api.requests
    assert log[0].body is None and log[0].body_redacted
    assert log[1].body is None and log[1].body_redacted
    assert log[2].query["name"] == "<redacted>"
    assert log[3].path == "/v2/volumes/<redacted>"
    dump = repr(log)
    assert do_api.token not in dump and other not in dump
    assert {r.token_hash for r in log} == {token_hash(do_api.token)}


def test_concurrent_creates_of_one_name_let_exactly_one_win(
    do_api: FakeDigitalOcean, api: httpx.Client
) -> None:
    statuses: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        body = {"name": "race", "region": "nyc3", "size_gigabytes": 1}
        code = api.post("/v2/volumes", json=body).status_code
        with lock:
            statuses.append(code)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(statuses) == [201] + [409] * 7
    assert len(do_api.find_volumes("race")) == 1
