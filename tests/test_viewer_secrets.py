"""What a viewer may read: config var names, never their values (Heroku's read-only role).

Every door that shows config (the native config route, the seed route, release info), and
drains (whose URLs may hold credentials), for a viewer (names only), a developer and an admin
(values), and a token scoped to another app (403); then every GET route meta has, swept as a
viewer, for any secret value."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import STORES, module_meta
from tests.meta import MetaServer

SECRETS = {"DATABASE_URL": "postgres://u:hunter2@db/vault", "API_KEY": "sk_live_51Hx"}
DRAIN_URL = "https://user:drainpass@logs.example.com:8443/v1/tokenpath123?key=querysecret"
HIDDEN_WORDS = ("hunter2", "sk_live_51Hx", "drainpass", "tokenpath123", "querysecret")


@dataclass
class World:
    meta: MetaServer
    tokens: dict[str, str]

    def http(self, who: str) -> httpx.Client:
        return self.meta.http(self.tokens[who])


@pytest.fixture(scope="module", params=STORES)
def meta(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MetaServer]:
    """One meta per store for the module, with a drain it knows of (ingest URLs)."""
    yield from module_meta(request, tmp_path_factory, GUN_DRAIN_URL="http://127.0.0.1:9")


@pytest.fixture(scope="module")
def world(meta: MetaServer) -> Iterator[World]:
    shared_meta = meta
    gun = meta.gun
    for app in ("vault", "other"):
        assert gun("apps.create", app).code == 0
    assert gun("app:vault", "config.set", *(f"{k}={v}" for k, v in SECRETS.items())).code == 0
    with shared_meta.http() as http:
        assert http.post("/v1/apps/vault/drains", json={"url": DRAIN_URL}).status_code == 201
    tokens = {"admin": shared_meta.admin_token or ""}
    for who, role, app in [
        ("viewer", "viewer", None),
        ("app-viewer", "viewer", "vault"),
        ("developer", "developer", None),
        ("other-dev", "developer", "other"),
    ]:
        words = [f"role={role}"] + ([f"app={app}"] if app else [])
        r = gun("tokens.create", who, *words)
        assert r.code == 0, r.err
        tokens[who] = r.out.strip()
    yield World(shared_meta, tokens)


NAMES_ONLY = dict.fromkeys(SECRETS)


def config_of(door: str, body: Any) -> Any:
    """The config object in a door's answer."""
    return body["config"] if door.startswith("/v1/apps/vault/releases/") else body


CONFIG_DOORS = [
    "/v1/apps/vault/config-vars",
    "/config_vars/show/vault",
    "/v1/apps/vault/releases/2",
]


@pytest.mark.parametrize("door", CONFIG_DOORS)
@pytest.mark.parametrize(
    ("who", "status", "config"),
    [
        ("viewer", 200, NAMES_ONLY),
        ("app-viewer", 200, NAMES_ONLY),
        ("developer", 200, SECRETS),
        ("admin", 200, SECRETS),
        ("other-dev", 403, None),
    ],
)
def test_each_config_door_shows_a_viewer_names_only(
    world: World, door: str, who: str, status: int, config: dict[str, str | None] | None
) -> None:
    with world.http(who) as http:
        r = http.get(door)
    assert r.status_code == status, r.text
    if config is None:
        assert r.json()["message"] == (
            "token 'other-dev' is scoped to app 'other' and cannot reach app 'vault'"
        )
    else:
        assert config_of(door, r.json()) == config


@pytest.mark.parametrize(
    ("who", "url"),
    [
        ("viewer", "https://logs.example.com:8443"),
        ("app-viewer", "https://logs.example.com:8443"),
        ("developer", DRAIN_URL),
        ("admin", DRAIN_URL),
    ],
)
def test_a_viewer_sees_where_logs_go_but_not_the_drains_credentials(
    world: World, who: str, url: str
) -> None:
    with world.http(who) as http:
        (drain,) = http.get("/v1/apps/vault/drains").json()
    assert drain["url"] == url
    with world.http("other-dev") as http:
        assert http.get("/v1/apps/vault/drains").status_code == 403


def _filled(path: str, drain_id: int) -> str:
    values = {
        "app": "vault",
        "version": "2",
        "layer": "default",
        "drain_id": str(drain_id),
        "name": "viewer",
        "token": "gdi_" + "x" * 32,
        "sha256": "0" * 64,
        "id": "i-0a1b2c3d",
    }
    for key, value in values.items():
        path = path.replace("{" + key + "}", value).replace("{" + key + ":path}", value)
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + "1" + path[end + 1 :]
    return path


def test_no_get_route_shows_a_viewer_any_secret_value(world: World) -> None:
    """Every GET route meta serves (from its OpenAPI document), as a viewer of every app and
    as a viewer of this app only: no answer holds a config value, a drain credential or the
    app's ingest token."""
    with world.http("admin") as http:
        paths = http.get("/openapi.json").json()["paths"]
        drain_id = http.get("/v1/apps/vault/drains").json()[0]["id"]
        ingest = http.get("/v1/apps/vault/drains/ingest").json()["url"].rsplit("/", 1)[1]
    gets = sorted(p for p, ops in paths.items() if "get" in ops)
    assert len(gets) > 20
    answered = 0
    for who in ("viewer", "app-viewer"):
        with world.http(who) as http:
            for path in gets:
                r = http.get(_filled(path, drain_id), params={"after": 0}, timeout=10)
                text = r.text
                for word in (*HIDDEN_WORDS, ingest):
                    assert word not in text, f"{who} read {word!r} at GET {path}"
                answered += r.status_code == 200
    assert answered >= 20  # most doors opened: the sweep read real answers


def test_a_viewer_at_the_command_line(world: World) -> None:
    gun, viewer = world.meta.gun, world.tokens["viewer"]
    r = gun("app:vault", "config", token=viewer)
    assert (r.code, r.out, r.err) == (
        0,
        "API_KEY\nDATABASE_URL\n",
        "config var values are hidden from role viewer: a developer or admin token shows them\n",
    )
    r = gun("--json", "app:vault", "config", token=viewer)
    assert json.loads(r.out) == {"API_KEY": None, "DATABASE_URL": None}
    r = gun("app:vault", "config.get:API_KEY", token=viewer)
    assert (r.code, r.out, r.err) == (
        1,
        "",
        "gun: config var API_KEY is set on app 'vault', but its value is hidden from role "
        "viewer: a developer or admin token shows it\n",
    )
    r = gun("app:vault", "releases.info:v2", token=viewer)
    assert "config vars:   DATABASE_URL, API_KEY" in r.out and "sk_live" not in r.out
    r = gun("--json", "app:vault", "releases.info:v2", token=viewer)
    assert json.loads(r.out)["config"] == {"API_KEY": None, "DATABASE_URL": None}

    developer = world.tokens["developer"]
    r = gun("app:vault", "config", token=developer)
    assert (r.code, r.out, r.err) == (
        0,
        "API_KEY=sk_live_51Hx\nDATABASE_URL=postgres://u:hunter2@db/vault\n",
        "",
    )
    assert gun("app:vault", "config.get:API_KEY", token=developer).out == "sk_live_51Hx\n"
    r = gun("app:vault", "config", token=world.tokens["other-dev"])
    assert (r.code, r.err) == (
        1,
        "gun: token 'other-dev' is scoped to app 'other' and cannot reach app 'vault'\n",
    )
