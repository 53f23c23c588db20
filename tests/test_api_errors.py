"""Bad requests over real HTTP to `gun server meta`: the status, gun's `{"id", "message"}` body
with a message naming the bad part, and no change in the store afterwards.

One real meta server per store serves the whole table (a server per case would cost a second
each); every case snapshots what the admin can see before and after its request.
"""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.conftest import STORES, PgDatabases
from tests.meta import MetaServer

ADMIN = "gun_test_admin_token"
CONFIG_MAX = 32 * 1024
SEEDED = {"RAILS_ENV": "production"}  # demo's config: 19 bytes of the 32 kB
NOT_JSON = "request body is not valid JSON"
INVALID_NAME = "is invalid: use 2-30 lowercase letters, digits and dashes, starting with a letter"
INVALID_KEY = "is invalid: use letters, digits and underscores, not starting with a digit"
INVALID_TYPE = "is invalid: use up to 64 letters, digits, dashes and underscores"
INVALID_LAYER = (
    "is invalid: use up to 30 lowercase letters, digits and dashes, starting with a letter"
)
LONG = "x" * 300


@dataclass
class World:
    """A running meta with apps demo and other, and tokens of each kind."""

    server: MetaServer
    tokens: dict[str, str | None] = field(default_factory=dict)

    def client(self, who: str = "admin") -> httpx.Client:
        token = self.tokens[who]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=10)

    def snapshot(self) -> dict[str, Any]:
        """Everything an admin can read: apps, and each app's config, releases, formation,
        layers and events."""
        with self.client() as c:
            apps = c.get("/v1/apps").json()
            out: dict[str, Any] = {"apps": apps}
            for app in apps:
                for part in ("config-vars", "releases", "formation", "layers", "events"):
                    r = c.get(f"/v1/apps/{app['name']}/{part}")
                    assert r.status_code == 200, r.text
                    out[f"{app['name']}/{part}"] = r.json()
        return out


def _ok(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json() if r.content else None


@pytest.fixture(scope="module", params=STORES)
def world(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    home = tmp_path_factory.mktemp(f"meta-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'meta.db'}"
    else:
        dbs: PgDatabases = request.getfixturevalue("pg_databases")
        url = dbs.fresh()
    server = MetaServer(home / "home", url, admin_token=ADMIN)
    server.start()
    try:
        w = World(server, {"admin": ADMIN, "none": None, "unknown": "gun_no_such_token"})
        with w.client() as c:
            for name in ("demo", "other"):
                _ok(c.post("/v1/apps", json={"name": name}), 201)
            _ok(c.patch("/v1/apps/demo/config-vars", json=SEEDED))
            _ok(
                c.patch(
                    "/v1/apps/demo/formation", json={"updates": [{"type": "web", "quantity": 1}]}
                )
            )
            for who, role, app in [
                ("viewer", "viewer", None),
                ("dev", "developer", None),
                ("other-dev", "developer", "other"),
            ]:
                made = _ok(c.post("/v1/tokens", json={"name": who, "role": role, "app": app}), 201)
                w.tokens[who] = made["token"]
        yield w
    finally:
        server.stop()


@dataclass(frozen=True)
class Bad:
    method: str
    path: str
    status: int
    id: str
    message: str
    json: Any = None
    content: bytes | None = None
    who: str = "admin"


def bad(id_: str, *args: Any, **kwargs: Any) -> Any:
    return pytest.param(Bad(*args, **kwargs), id=id_)


def app_name(id_: str, name: str) -> Any:
    return bad(
        f"app-name-{id_}",
        "POST",
        "/v1/apps",
        422,
        "invalid_params",
        f"app name {name!r} {INVALID_NAME}",
        json={"name": name},
    )


def config_key(id_: str, key: str) -> Any:
    return bad(
        f"config-key-{id_}",
        "PATCH",
        "/v1/apps/demo/config-vars",
        422,
        "invalid_params",
        f"config key {key!r} {INVALID_KEY}",
        json={"GOOD": "set-too?", key: "x"},
    )


def scale(id_: str, updates: Any, status: int, message: str) -> Any:
    body = updates if isinstance(updates, dict) else {"updates": updates}
    return bad(
        f"formation-{id_}",
        "PATCH",
        "/v1/apps/demo/formation",
        status,
        {400: "bad_request", 422: "invalid_params"}[status],
        message,
        json=body,
    )


def slug_with_procfile(text: bytes) -> bytes:
    """A slug (gzipped tarball of ./app) holding only this Procfile."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("app/Procfile")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    return raw.getvalue()


OVER = CONFIG_MAX - len("RAILS_ENVproduction") - len("BIG") + 1  # one byte over in total

# fmt: off
CASES = [
    # app names outside ^[a-z][a-z0-9-]{1,29}$
    app_name("uppercase", "Bad"),
    app_name("one-char", "a"),
    app_name("leading-digit", "1app"),
    app_name("31-chars", "x" * 31),
    app_name("underscore", "has_underscore"),
    app_name("leading-dash", "-dash"),
    app_name("empty", ""),
    app_name("trailing-newline", "demo\n"),
    app_name("non-ascii", "dé"),
    bad("app-duplicate", "POST", "/v1/apps", 409, "conflict", "app 'demo' already exists",
        json={"name": "demo"}),
    bad("app-name-not-a-string", "POST", "/v1/apps", 422, "invalid_params",
        "body field 'name' is invalid: input should be a valid string", json={"name": 7}),
    bad("app-unknown-field", "POST", "/v1/apps", 422, "invalid_params",
        "body field 'region' is not allowed", json={"name": "fresh", "region": "eu"}),
    bad("app-repo-nul", "POST", "/v1/apps", 422, "invalid_params",
        "body field 'repo' is invalid: must not contain a NUL character",
        json={"name": "fresh", "repo": "git\x00x"}),
    bad("app-unknown", "GET", "/v1/apps/nope", 404, "not_found", "app 'nope' does not exist"),
    bad("app-nul-in-path", "GET", "/v1/apps/de%00mo/config-vars", 404, "not_found",
        "app 'de\\x00mo' does not exist"),
    bad("app-destroy-unknown", "DELETE", "/v1/apps/nope", 404, "not_found",
        "app 'nope' does not exist"),

    # config keys outside ^[A-Za-z_][A-Za-z0-9_]*$: nothing is set, not even GOOD
    config_key("leading-digit", "1A"),
    config_key("dash", "A-B"),
    config_key("empty", ""),
    config_key("space", "A B"),
    config_key("trailing-newline", "A\n"),
    bad("config-key-over-255-chars", "PATCH", "/v1/apps/demo/config-vars", 422,
        "invalid_params", f"config key '{'K' * 57}...' is 256 characters long: use at most 255",
        json={"K" * 256: "x"}),
    # config over 32 kB in total (demo already holds RAILS_ENV=production): nothing is set
    bad("config-over-32kB", "PATCH", "/v1/apps/demo/config-vars", 422, "invalid_params",
        f"config vars would total {CONFIG_MAX + 1} bytes, over the limit of {CONFIG_MAX} bytes",
        json={"BIG": "x" * OVER}),
    bad("config-over-32kB-multibyte", "PATCH", "/v1/apps/demo/config-vars", 422,
        "invalid_params",
        f"config vars would total {CONFIG_MAX + 1} bytes, over the limit of {CONFIG_MAX} bytes",
        json={"BIG": "é" * ((OVER - 1) // 2) + "x" * (1 + (OVER - 1) % 2)}),
    bad("config-empty", "PATCH", "/v1/apps/demo/config-vars", 422, "invalid_params",
        "no config vars given: pass KEY=value or KEY to unset", json={}),
    bad("config-value-not-string", "PATCH", "/v1/apps/demo/config-vars", 422,
        "invalid_params", "body field 'PORT' is invalid: input should be a valid string",
        json={"PORT": 5000}),
    bad("config-not-object", "PATCH", "/v1/apps/demo/config-vars", 422, "invalid_params",
        "body field 'body' is invalid: input should be a valid dictionary", json=["A=1"]),
    bad("config-lone-surrogate", "PATCH", "/v1/apps/demo/config-vars", 422, "invalid_params",
        "body field 'A' is invalid: must be valid UTF-8 text", content=b'{"A": "\\ud800"}'),
    bad("config-unknown-app", "PATCH", "/v1/apps/nope/config-vars", 404, "not_found",
        "app 'nope' does not exist", json={"A": "1"}),

    # formation updates: nothing is scaled
    scale("quantity-abc", [{"type": "web", "quantity": "abc"}], 422,
          "formation 'web=abc': quantity 'abc' is not a whole number"),
    scale("quantity-minus-1", [{"type": "web", "quantity": -1}], 422,
          "formation 'web=-1': quantity must not be negative"),
    scale("quantity-float", [{"type": "web", "quantity": 2.5}], 422,
          "body field 'updates.0.quantity' is invalid: input should be a valid integer"),
    scale("quantity-over-max", [{"type": "web", "quantity": 10_001}], 422,
          "formation 'web=10001': quantity must be at most 10000"),
    scale("type-with-equals", [{"type": "web=2", "quantity": 3}], 422,
          "formation 'web=2=3' has more than one '=': write it as TYPE=N, e.g. web=2"),
    scale("type-over-64-chars", [{"type": "w" * 65, "quantity": 1}], 422,
          f"process type '{'w' * 57}...' {INVALID_TYPE}"),
    scale("type-empty", [{"type": "", "quantity": 3}], 422,
          "formation '=3' has no process type: write it as TYPE=N, e.g. web=2"),
    scale("type-missing", [{"quantity": 2}], 422, "body field 'updates.0.type' is required"),
    scale("quantity-missing", [{"type": "web"}], 422,
          "body field 'updates.0.quantity' is required"),
    scale("updates-empty", [], 422,
          "body field 'updates' is invalid: list should have at least 1 item after validation, "
          "not 0"),
    scale("updates-missing", {}, 422, "body field 'updates' is required"),
    scale("type-release", [{"type": "release", "quantity": 1}], 422,
          "the release process type runs once per release and cannot be scaled"),

    # releases and rollback: no new release
    bad("rollback-v99", "POST", "/v1/apps/demo/rollback", 404, "not_found",
        "release v99 of app 'demo' does not exist", json={"version": "v99"}),
    bad("rollback-99", "POST", "/v1/apps/demo/rollback", 404, "not_found",
        "release v99 of app 'demo' does not exist", json={"version": 99}),
    bad("rollback-not-a-version", "POST", "/v1/apps/demo/rollback", 422, "invalid_params",
        "release 'vx' is not a version: write it as vN or N, e.g. v3", json={"version": "vx"}),
    bad("rollback-non-ascii-digit", "POST", "/v1/apps/demo/rollback", 422, "invalid_params",
        "release 'v\u0663' is not a version: write it as vN or N, e.g. v3",
        json={"version": "v\u0663"}),
    bad("rollback-v0", "POST", "/v1/apps/demo/rollback", 422, "invalid_params",
        "release '0' is not a version: write it as vN or N, e.g. v3", json={"version": 0}),
    bad("release-v99", "GET", "/v1/apps/demo/releases/v99", 404, "not_found",
        "release v99 of app 'demo' does not exist"),
    bad("release-superscript-two", "GET", "/v1/apps/demo/releases/%C2%B2", 422,
        "invalid_params", "release '\u00b2' is not a version: write it as vN or N, e.g. v3"),

    # roles and scoped tokens
    bad("other-apps-token-reads", "GET", "/v1/apps/demo/config-vars", 403, "forbidden",
        "token 'other-dev' is scoped to app 'other' and cannot reach app 'demo'",
        who="other-dev"),
    bad("other-apps-token-writes", "PATCH", "/v1/apps/demo/config-vars", 403, "forbidden",
        "token 'other-dev' is scoped to app 'other' and cannot reach app 'demo'",
        json={"A": "1"}, who="other-dev"),
    bad("other-apps-token-creates-app", "POST", "/v1/apps", 403, "forbidden",
        "token 'other-dev' is scoped to app 'other' and cannot reach resources outside its app",
        json={"name": "fresh"}, who="other-dev"),
    bad("viewer-sets-config", "PATCH", "/v1/apps/demo/config-vars", 403, "forbidden",
        "token 'viewer' has role viewer; this needs role developer", json={"A": "1"},
        who="viewer"),
    bad("viewer-scales", "PATCH", "/v1/apps/demo/formation", 403, "forbidden",
        "token 'viewer' has role viewer; this needs role developer",
        json={"updates": [{"type": "web", "quantity": 3}]}, who="viewer"),
    bad("viewer-rolls-back", "POST", "/v1/apps/demo/rollback", 403, "forbidden",
        "token 'viewer' has role viewer; this needs role developer", json={}, who="viewer"),
    bad("viewer-destroys", "DELETE", "/v1/apps/demo", 403, "forbidden",
        "token 'viewer' has role viewer; this needs role developer", who="viewer"),
    bad("developer-makes-token", "POST", "/v1/tokens", 403, "forbidden",
        "token 'dev' has role developer; this needs role admin",
        json={"name": "x", "role": "admin"}, who="dev"),
    bad("token-bad-role", "POST", "/v1/tokens", 422, "invalid_params",
        "role 'root' is invalid: use one of viewer, developer, admin, drain",
        json={"name": "x", "role": "root"}),
    bad("token-unknown-app", "POST", "/v1/tokens", 404, "not_found",
        "app 'nope' does not exist", json={"name": "x", "app": "nope"}),

    # authentication
    bad("no-token", "GET", "/v1/apps", 401, "unauthorized",
        "no API token given: run `gun login` or pass --token", who="none"),
    bad("no-token-writes", "PATCH", "/v1/apps/demo/config-vars", 401, "unauthorized",
        "no API token given: run `gun login` or pass --token", json={"A": "1"}, who="none"),
    bad("unknown-token", "GET", "/v1/apps/demo", 401, "unauthorized",
        "the API token is unknown or revoked", who="unknown"),
    bad("unknown-token-writes", "POST", "/v1/apps", 401, "unauthorized",
        "the API token is unknown or revoked", json={"name": "fresh"}, who="unknown"),
    bad("no-token-before-nul-path", "GET", "/v1/apps/a%00b", 401, "unauthorized",
        "no API token given: run `gun login` or pass --token", who="none"),

    # bodies that are not JSON (objects)
    bad("not-json", "PATCH", "/v1/apps/demo/config-vars", 400, "bad_request", NOT_JSON,
        content=b"{RAILS_ENV: staging"),
    bad("not-json-create", "POST", "/v1/apps", 400, "bad_request", NOT_JSON,
        content=b"name=fresh"),
    bad("not-json-scale", "PATCH", "/v1/apps/demo/formation", 400, "bad_request", NOT_JSON,
        content=b'{"updates": [}'),
    bad("no-body", "POST", "/v1/apps", 400, "bad_request",
        "request body is missing: send a JSON object", content=b""),

    # fields with a rule of gun's own, far too long: the rule's sentence, not pydantic's
    bad("long-app-name", "POST", "/v1/apps", 422, "invalid_params",
        f"app name '{'x' * 57}...' {INVALID_NAME}", json={"name": LONG}),
    bad("long-repo", "POST", "/v1/apps", 422, "invalid_params",
        f"repo 'https://{'x' * 49}...' is 3008 characters long: use at most 2000",
        json={"name": "fresh", "repo": "https://" + "x" * 3000}),
    bad("long-token-name", "POST", "/v1/tokens", 422, "invalid_params",
        f"token name '{'x' * 57}...' is invalid: use 1 to 100 letters, digits, spaces and "
        ". _ @ : + -, starting and ending with a letter or digit",
        json={"name": LONG, "role": "viewer"}),
    bad("long-token-app", "POST", "/v1/tokens", 422, "invalid_params",
        f"app name '{'x' * 57}...' {INVALID_NAME}", json={"name": "t", "app": LONG}),
    bad("long-config-key", "PATCH", "/v1/apps/demo/config-vars", 422, "invalid_params",
        f"config key '{'K' * 57}...' is 300 characters long: use at most 255",
        json={"K" * 300: "x"}),
    scale("long-type", [{"type": LONG, "quantity": 1}], 422, f"process type '{'x' * 57}...' "
          f"{INVALID_TYPE}"),
    bad("long-layer-type", "PUT", "/v1/apps/demo/layers/jobs", 422, "invalid_params",
        f"process type '{'x' * 57}...' {INVALID_TYPE}", json={"types": [LONG]}),
    bad("long-layer", "POST", "/v1/apps/demo/instances", 422, "invalid_params",
        f"layer name '{'x' * 57}...' {INVALID_LAYER}", json={"layer": LONG}),
    bad("long-instance-type", "POST", "/v1/apps/demo/instances", 422, "invalid_params",
        f"instance_type '{'x' * 57}...' must be 1 to 40 printable characters",
        json={"layer": "web", "instance_type": LONG}),
    bad("long-availability-zone", "POST", "/v1/apps/demo/instances", 422, "invalid_params",
        f"availability_zone '{'x' * 57}...' must be 1 to 40 printable characters",
        json={"layer": "web", "availability_zone": LONG}),
    bad("long-drain-url", "POST", "/v1/apps/demo/drains", 422, "invalid_params",
        f"drain URL 'https://{'x' * 49}...' is 3008 characters long: use at most 2000",
        json={"url": "https://" + "x" * 3000}),

    # NUL bytes, in what ends up in an instance's environment, argv or files, or in the store
    bad("nul-config-value", "PATCH", "/v1/apps/demo/config-vars", 422, "invalid_params",
        "config var 'A' contains a NUL byte, which no environment variable can hold: remove it",
        json={"OK": "fine", "A": "a\x00b"}),
    bad("nul-procfile-command", "POST", "/v1/apps/demo/slugs", 422, "invalid_params",
        "Procfile:2: has a NUL byte; remove it",
        content=slug_with_procfile(b"web: serve\nworker: work \x00 hard\n")),
    bad("nul-procfile-type", "POST", "/v1/apps/demo/slugs", 422, "invalid_params",
        "Procfile:1: has a NUL byte; remove it",
        content=slug_with_procfile(b"we\x00b: serve\n")),
    scale("nul-type", [{"type": "we\x00b", "quantity": 1}], 422,
          "formation 'we\\x00b=1': process type 'we\\x00b' may only use letters, digits, - "
          "and _"),
    bad("nul-layer-type", "PUT", "/v1/apps/demo/layers/jobs", 422, "invalid_params",
        f"process type 'we\\x00b' {INVALID_TYPE}", json={"types": ["we\x00b"]}),
    bad("nul-layer", "PUT", "/v1/apps/demo/layers/jo%00bs", 404, "not_found",
        "layer 'jo\\x00bs' does not exist", json={"types": ["web"]}),
    bad("nul-drain-url", "POST", "/v1/apps/demo/drains", 422, "invalid_params",
        "drain URL 'https://x/\\x00' has a space or control character; remove it",
        json={"url": "https://x/\x00"}),
    bad("nul-repo-url-scp", "POST", "/v1/apps", 422, "invalid_params",
        "body field 'repo' is invalid: must not contain a NUL character",
        json={"name": "fresh", "repo": "git@host:a\x00b"}),
    bad("nul-app-name", "POST", "/v1/apps", 422, "invalid_params",
        f"app name 'a\\x00b' {INVALID_NAME}", json={"name": "a\x00b"}),
    bad("nul-token-name", "POST", "/v1/tokens", 422, "invalid_params",
        "body field 'name' is invalid: must not contain a NUL character",
        json={"name": "a\x00b", "role": "viewer"}),
    bad("nul-instance-type", "POST", "/v1/apps/demo/instances", 422, "invalid_params",
        "instance_type 'c1\\x00' must be 1 to 40 printable characters",
        json={"layer": "web", "instance_type": "c1\x00"}),
    bad("nul-git-ref", "POST", "/v1/apps/demo/builds?strategy=git&ref=ma%00in", 422,
        "invalid_params", "ref has a NUL byte; remove it"),
    bad("nul-commit-description", "POST", "/v1/apps/demo/builds?commit_description=a%00b", 422,
        "invalid_params", "commit_description has a NUL byte; remove it", content=b"x"),
    bad("nul-release-description", "POST", "/v1/apps/demo/releases", 422, "invalid_params",
        "body field 'description' is invalid: must not contain a NUL character",
        json={"slug": 1, "description": "a\x00b"}),
    bad("nul-restart-target", "POST", "/v1/apps/demo/processes/restart", 422,
        "invalid_params", "body field 'target' is invalid: must not contain a NUL character",
        json={"target": "web\x00"}),

    # names of the platform's own
    bad("reserved-gun-drain", "POST", "/v1/apps", 422, "invalid_params",
        "app name 'gun-drain' is reserved: names starting with 'gun-' are the platform's own "
        "(the drain reports its figures as app gun-drain); pick another",
        json={"name": "gun-drain"}),
    bad("reserved-gun-prefix", "POST", "/v1/apps", 422, "invalid_params",
        "app name 'gun-x' is reserved: names starting with 'gun-' are the platform's own "
        "(the drain reports its figures as app gun-drain); pick another",
        json={"name": "gun-x"}),

    # scale: below zero, over the processes cap
    scale("relative-below-zero", [{"type": "web", "quantity": "-5"}], 422,
          "web-5 would take web below 0: it has 1"),
    scale("over-max-processes", [{"type": "web", "quantity": 80}, {"type": "worker",
          "quantity": 21}], 422, "web=80 worker=21 would run 101 processes of app 'demo', over "
          "the limit of 100 per app (GUN_MAX_PROCESSES on meta)"),

    # routes and methods
    bad("no-route", "GET", "/v1/nope", 404, "not_found", "no route GET /v1/nope"),
    bad("wrong-method", "PUT", "/v1/apps/demo", 405, "method_not_allowed",
        "method PUT is not allowed on /v1/apps/demo", json={}),
]
# fmt: on


@pytest.mark.parametrize("case", CASES)
def test_bad_request(world: World, case: Bad) -> None:
    before = world.snapshot()
    headers = {"Content-Type": "application/json"} if case.content is not None else {}
    with world.client(case.who) as c:
        r = c.request(case.method, case.path, json=case.json, content=case.content, headers=headers)
    assert (r.status_code, r.headers["content-type"]) == (case.status, "application/json"), r.text
    assert r.json() == {"id": case.id, "message": case.message}
    assert world.snapshot() == before


def test_health_needs_no_token(world: World) -> None:
    with world.client("none") as c:
        for path in ("/health", "/v1/health"):
            r = c.get(path)
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "ok"


def test_basic_auth_with_the_token_as_password(world: World) -> None:
    with httpx.Client(base_url=world.server.url, auth=("", ADMIN), timeout=10) as c:
        assert c.get("/v1/whoami").json() == {"name": "admin", "role": "admin", "app": None}
    with httpx.Client(base_url=world.server.url, auth=("", "wrong"), timeout=10) as c:
        r = c.get("/v1/whoami")
    assert (r.status_code, r.json()["id"]) == (401, "unauthorized")


def test_config_at_exactly_32kB_is_accepted(world: World) -> None:
    app = f"t-{uuid.uuid4().hex[:8]}"
    with world.client() as c:
        _ok(c.post("/v1/apps", json={"name": app}), 201)
        body = {"BIG": "x" * (CONFIG_MAX - len("BIG"))}
        assert _ok(c.patch(f"/v1/apps/{app}/config-vars", json=body))["config"] == body
        r = c.patch(f"/v1/apps/{app}/config-vars", json={"A": ""})
        assert (r.status_code, r.json()["id"]) == (422, "invalid_params"), r.text
        assert _ok(c.get(f"/v1/apps/{app}/config-vars")) == body
        _ok(c.delete(f"/v1/apps/{app}"), 204)


def test_seed_routes_show_formation_and_config(meta: MetaServer) -> None:
    with meta.http() as c:
        _ok(c.post("/v1/apps", json={"name": "shop"}), 201)
        assert _ok(c.get("/apps/show/shop")) == {"formation.default": ""}
        assert _ok(c.get("/config_vars/show/shop")) == {}
        _ok(c.patch("/v1/apps/shop/formation", json={"updates": [{"type": "web", "quantity": 1}]}))
        _ok(c.patch("/v1/apps/shop/config-vars", json={"RAILS_ENV": "production"}))
        assert _ok(c.get("/apps/show/shop")) == {"formation.default": "web=1"}
        assert _ok(c.get("/config_vars/show/shop")) == {"RAILS_ENV": "production"}
        r = c.get("/apps/show/nope")
        assert (r.status_code, r.json()) == (
            404,
            {"id": "not_found", "message": "app 'nope' does not exist"},
        )
    with meta.http("gun_no_such_token") as c:
        r = c.get("/config_vars/show/shop")
    assert (r.status_code, r.json()["id"]) == (401, "unauthorized")
