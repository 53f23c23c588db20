"""The Heroku subset over real HTTP to `gun server meta`: the transport the stock clients use
(Accept variants, Bearer and Basic, Request-Id, RateLimit-Remaining), the shapes they read,
Heroku's error ids, paging, and gun's rules through this API too (a viewer cannot write; an
app-scoped token sees only its app)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.meta import MetaServer

ADMIN = "gun_test_admin_token"
APP_KEYS = {
    "id", "name", "owner", "region", "stack", "build_stack", "git_url", "web_url", "repo_size",
    "slug_size", "create_status", "space", "created_at", "updated_at",
}  # fmt: skip
RELEASE_KEYS = {
    "id", "version", "description", "status", "current", "eligible_for_rollback", "user",
    "created_at", "output_stream_url",
}  # fmt: skip


@pytest.fixture(scope="module")
def meta(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("heroku-api")
    server = MetaServer(home / "home", f"sqlite:///{home / 'meta.db'}", admin_token=ADMIN)
    server.start()
    try:
        tokens = {"admin": ADMIN}
        with server.http() as c:
            for name in ("demo", "other"):
                assert c.post("/apps", json={"name": name}).status_code == 201
            for who, role, app in [("viewer", "viewer", None), ("other-dev", "developer", "other")]:
                made = c.post("/v1/tokens", json={"name": who, "role": role, "app": app})
                assert made.status_code == 201, made.text
                tokens[who] = made.json()["token"]
        yield {"server": server, "tokens": tokens}
    finally:
        server.stop()


def client(meta: dict[str, Any], who: str = "admin", **headers: str) -> httpx.Client:
    server: MetaServer = meta["server"]
    auth = {"Authorization": f"Bearer {meta['tokens'][who]}"} if who else {}
    return httpx.Client(base_url=server.url, headers={**auth, **headers}, timeout=10)


@pytest.mark.parametrize(
    "accept",
    [
        "application/vnd.heroku+json; version=3",
        "application/vnd.heroku+json; version=3.sdk",
        "application/vnd.heroku+json; version=3.cedar-acm",
        "application/vnd.heroku+json; version=3.run-inside",
        "application/json",
        "*/*",
    ],
)
def test_every_accept_the_clients_send_is_served(meta: dict[str, Any], accept: str) -> None:
    with client(meta, Accept=accept) as c:
        r = c.get("/apps/demo")
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "demo"


def test_bearer_basic_and_the_headers_every_answer_carries(meta: dict[str, Any]) -> None:
    basic = base64.b64encode(f":{ADMIN}".encode()).decode()
    with client(meta, who="", Authorization=f"Basic {basic}") as c:
        r = c.get("/account/rate-limits")
    assert r.status_code == 200
    assert r.json() == {"remaining": 4500}
    assert int(r.headers["ratelimit-remaining"]) == 4500  # heroku3 int()s it at once
    assert len(r.headers["request-id"]) >= 20
    with client(meta, **{"Request-Id": "b1d7ad9e-6c0b-4d4c-9f57-0d1f4a8d4a11"}) as c:
        r = c.get("/account")
    assert r.headers["request-id"] == "b1d7ad9e-6c0b-4d4c-9f57-0d1f4a8d4a11"
    assert {"id", "email"} <= set(r.json()) and r.json()["email"] == "admin@gun"


@pytest.mark.parametrize("authorization", ["Bearer undefined", "Bearer gun_no_such", None])
def test_no_token_or_a_wrong_one_is_401_unauthorized(
    meta: dict[str, Any], authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    with client(meta, who="", **headers) as c:
        r = c.get("/apps")
    assert r.status_code == 401
    assert r.json()["id"] == "unauthorized" and r.json()["message"]


def test_the_shapes_the_clients_read(meta: dict[str, Any]) -> None:
    with client(meta) as c:
        app = c.get("/apps/demo").json()
        assert set(app) >= APP_KEYS
        assert (app["create_status"], app["space"]) == ("complete", None)
        assert set(app["owner"]) >= {"id", "email"}
        assert c.get(f"/apps/{app['id']}").json()["name"] == "demo"  # by UUID
        assert c.patch("/apps/demo/config-vars", json={"A": "1"}).json() == {"A": "1"}
        releases = c.get("/apps/demo/releases").json()
        assert all(set(r) >= RELEASE_KEYS for r in releases)
        last = releases[-1]
        assert last["current"] and last["description"] == "Set A config vars"
        assert c.get(f"/apps/demo/releases/{last['id']}").json()["version"] == last["version"]
        assert c.get(f"/apps/demo/releases/{last['version']}/config-vars").json() == {"A": "1"}
        assert c.get("/apps/demo/collaborators").json() == []


def test_errors_are_heroku_s_ids_with_gun_s_messages(meta: dict[str, Any]) -> None:
    with client(meta) as c:
        r = c.get("/apps/nosuchapp")
        assert (r.status_code, r.json()["id"]) == (404, "not_found")
        assert r.json()["message"] == "app 'nosuchapp' does not exist"
        r = c.post("/apps", json={"name": "demo"})
        assert (r.status_code, r.json()["id"]) == (422, "invalid_params")
        assert "Name is already taken" in r.json()["message"]
        r = c.patch("/apps/demo/formation/web", json={"quantity": "lots"})
        assert (r.status_code, r.json()["id"]) == (422, "invalid_params")
        assert r.json()["message"] == "quantity 'lots' of web is not a whole number, +N or -N"


def test_a_create_from_heroku3_with_stack_cedar_is_made_and_destroyed(meta: dict[str, Any]) -> None:
    with client(meta) as c:
        r = c.post("/apps", json={"name": "cedar-app", "stack": "cedar"})
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["stack"]["name"] == "gun"
        gone = c.delete(f"/apps/{made['id']}")
        assert (gone.status_code, gone.json()["name"]) == (200, "cedar-app")
        assert c.get("/apps/cedar-app").status_code == 404


def test_scale_takes_numbers_strings_and_relative_quantities(meta: dict[str, Any]) -> None:
    with client(meta) as c:
        r = c.patch("/apps/demo/formation", json={"updates": [{"type": "web", "quantity": "2"}]})
        assert [(f["type"], f["quantity"]) for f in r.json()] == [("web", 2)]
        assert c.patch("/apps/demo/formation/web", json={"quantity": "+1"}).json()["quantity"] == 3
        assert c.patch("/apps/demo/formation/web", json={"quantity": "-2"}).json()["quantity"] == 1
        assert c.patch("/apps/demo/formation/web", json={"quantity": 0}).json()["quantity"] == 0


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/apps/demo/config-vars", {"A": "2"}),
        ("POST", "/apps", {"name": "by-a-viewer"}),
        ("PATCH", "/apps/demo/formation", {"updates": [{"type": "web", "quantity": 1}]}),
        ("PATCH", "/apps/demo/formation/web", {"quantity": 1}),
        ("POST", "/apps/demo/releases", {"release": 1}),
        ("DELETE", "/apps/demo", None),
    ],
)
def test_a_viewer_cannot_write_through_this_api(
    meta: dict[str, Any], method: str, path: str, body: Any
) -> None:
    with client(meta, "admin") as admin:
        before = admin.get("/apps/demo/config-vars").json(), admin.get("/apps").json()
    with client(meta, "viewer") as c:
        assert c.get("/apps/demo").status_code == 200  # reading is fine
        r = c.request(method, path, json=body)
    assert r.status_code == 403, r.text
    assert r.json()["id"] == "forbidden" and r.json()["message"]
    with client(meta, "admin") as admin:
        assert (admin.get("/apps/demo/config-vars").json(), admin.get("/apps").json()) == before


def test_an_app_scoped_token_sees_only_its_app(meta: dict[str, Any]) -> None:
    with client(meta, "other-dev") as c:
        for path in ("/apps", "/users/~/apps"):
            assert [a["name"] for a in c.get(path).json()] == ["other"]
        assert c.get("/apps/demo").status_code in (403, 404)
    with client(meta, "admin") as c:
        assert sorted(a["name"] for a in c.get("/apps").json()) == ["demo", "other"]


def test_releases_page_with_next_range_until_the_last(meta: dict[str, Any]) -> None:
    with client(meta) as c:
        for n in range(3):
            c.patch("/apps/other/config-vars", json={"N": str(n)})
        everything = [r["version"] for r in c.get("/apps/other/releases").json()]
        assert everything == sorted(everything) and len(everything) == 4
        got, header = [], "version ..; max=3, order=desc"
        for _ in range(5):
            r = c.get("/apps/other/releases", headers={"Range": header})
            got += [x["version"] for x in r.json()]
            if "next-range" not in r.headers:
                assert r.status_code == 200
                break
            assert r.status_code == 206
            header = r.headers["next-range"]
        assert got == everything[::-1]
