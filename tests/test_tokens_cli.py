"""Tokens as a user manages them: the real `gun` CLI against a real meta, on both stores.
`gun tokens`, `tokens.create ... expires=`, `tokens.revoke:NAME`, drain tokens, and
`drains.ingest rotate=true`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.meta import MetaServer

ADMIN = "gun_test_admin_token"
DRAIN = "gun_test_drain_token_0123456789"
FIELDS = {"name", "role", "app", "kind", "created_by", "created_at", "expires_at"}


@pytest.fixture
def meta(database_url: str, tmp_path: Path) -> Iterator[MetaServer]:
    """A meta that knows a drain (for ingest URLs) and keeps a drain token (GUN_DRAIN_TOKEN)."""
    server = MetaServer(tmp_path / "home", database_url, admin_token=ADMIN)
    server.extra_env = {"GUN_DRAIN_URL": "http://127.0.0.1:9", "GUN_DRAIN_TOKEN": DRAIN}
    try:
        server.start()
        yield server
    finally:
        server.stop()


def test_a_token_from_creation_to_revocation(meta: MetaServer) -> None:
    gun = meta.gun
    assert gun("apps.create", "shop").code == 0

    r = gun("tokens.create", "ci", "role=developer", "app=shop", "expires=30d")
    assert r.code == 0, r.err
    ci = r.out.strip()
    assert ci.startswith("gun_") and "\n" not in ci
    until = datetime.now(UTC) + timedelta(days=30)
    assert r.err.startswith("Created token ci (role developer for app shop, expires ")
    assert r.err.endswith(" UTC); it is shown only once:\n")
    shown = datetime.strptime(r.err.split("expires ")[1][:19], "%Y-%m-%d %H:%M:%S")
    assert abs(shown.replace(tzinfo=UTC) - until) < timedelta(seconds=10)

    r = gun("tokens.create", "ci", "role=viewer")
    assert (r.code, r.out, r.err) == (
        1,
        "",
        "gun: a live token is already named 'ci': revoke it first (`gun tokens.revoke:ci`) "
        "or pick another name\n",
    )

    r = gun("tokens")
    lines = r.out.splitlines()
    assert lines[0].split() == [
        "NAME",
        "ROLE",
        "APP",
        "KIND",
        "CREATED",
        "BY",
        "CREATED",
        "EXPIRES",
    ]
    rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
    assert set(rows) == {"admin", "drain", "ci"}
    assert rows["ci"][1:4] == ["developer", "shop", "user"]
    assert rows["drain"][1:3] == ["drain", "drain"] and rows["admin"][-1] == "never"
    assert ci not in r.out

    listed = json.loads(gun("--json", "tokens").out)
    assert all(set(t) == FIELDS for t in listed)
    (mine,) = [t for t in listed if t["name"] == "ci"]
    assert (mine["role"], mine["app"], mine["kind"], mine["created_by"]) == (
        "developer",
        "shop",
        "user",
        "admin",
    )
    assert mine["expires_at"].startswith(until.strftime("%Y-%m-%d"))
    assert ci not in json.dumps(listed)

    assert json.loads(gun("--json", "whoami", token=ci).out)["name"] == "ci"
    r = gun("tokens.revoke:ci")
    assert (r.code, r.out) == (0, "Revoked token ci\n")
    r = gun("whoami", token=ci)
    assert (r.code, r.err) == (1, "gun: the API token is unknown or revoked\n")
    r = gun("tokens.revoke:ci")
    assert (r.code, r.err) == (1, "gun: no live token is named 'ci': `gun tokens` lists them\n")

    r = gun("tokens.revoke:admin")
    assert (r.code, r.err) == (
        1,
        "gun: token 'admin' is the last live admin token: create another admin token first, "
        "or nobody could manage this meta\n",
    )
    second = gun("tokens.create", "second", "role=admin").out.strip()
    r = gun("--json", "tokens.revoke:admin", token=second)
    assert r.code == 0 and json.loads(r.out)["name"] == "admin"
    assert set(json.loads(r.out)) == FIELDS
    assert gun("apps", token=ADMIN).code == 1
    assert gun("apps", token=second).code == 0


def test_a_bad_token_name_is_the_command_lines_fault(meta: MetaServer) -> None:
    for name in ("a/b", "..", " ci"):
        r = meta.gun("tokens.create", name)
        assert (r.code, r.err) == (
            2,
            f"gun: token name {name!r} is invalid: use 1 to 100 letters, digits, spaces and "
            ". _ @ : + -, starting and ending with a letter or digit\n",
        )
        with meta.http() as http:
            got = http.post("/v1/tokens", json={"name": name})
        assert (got.status_code, got.json()["message"]) == (422, r.err[5:-1])


@pytest.mark.parametrize(
    ("words", "err"),
    [
        (["expires=soon"], "gun: expires='soon' is not a duration like 30d, 12h or 90m, "
         "nor an ISO date like 2031-01-31\n"),
        (["expires=2001-01-01"], "gun: expires='2001-01-01' is in the past: give a later date "
         "or a duration like 30d\n"),
        (["expires=0h"], "gun: expires='0h' is no time at all: give one like 30d, 12h or 90m\n"),
    ],
)  # fmt: skip
def test_a_bad_expiry_is_the_command_lines_fault(
    meta: MetaServer, words: list[str], err: str
) -> None:
    r = meta.gun("tokens.create", "ci", *words)
    assert (r.code, r.out, r.err) == (2, "", err)
    # the same refusal from meta itself, for API clients
    with meta.http() as http:
        got = http.post("/v1/tokens", json={"name": "ci", "expires": words[0][8:]})
    assert (got.status_code, got.json()["message"]) == (422, err[5:-1])
    assert [t["name"] for t in json.loads(meta.gun("--json", "tokens").out)] == ["admin", "drain"]


def test_an_expired_token_says_when_it_expired(meta: MetaServer) -> None:
    brief = meta.gun("tokens.create", "brief", "role=viewer", "expires=2s").out.strip()
    assert meta.gun("whoami", token=brief).code == 0
    time.sleep(2.2)
    r = meta.gun("whoami", token=brief)
    assert r.code == 1
    assert r.err.startswith("gun: the API token 'brief' expired at ")
    assert r.err.endswith(" UTC: ask an admin for a new one\n")
    r = meta.gun("tokens")
    (row,) = [ln for ln in r.out.splitlines() if ln.startswith("brief ")]
    assert " expired " in row


ROUTES_A_DRAIN_TOKEN_TRIES = [
    ("GET", "/v1/whoami"),
    ("GET", "/v1/apps"),
    ("GET", "/v1/apps/shop/config-vars"),
    ("GET", "/config_vars/show/shop"),
    ("GET", "/apps/show/shop"),
    ("GET", "/v1/tokens"),
    ("POST", "/v1/tokens"),
    ("DELETE", "/v1/tokens/admin"),
    ("GET", "/v1/apps/shop/drains/ingest"),
    ("POST", "/v1/apps/shop/drains/ingest"),
    ("GET", "/v1/apps/shop/log-session"),
    ("GET", "/v1/agent/instances/i-0a1b2c3d/desired"),
]


def test_a_drain_token_only_resolves_ingest_tokens_and_nothing_else_does(
    meta: MetaServer,
) -> None:
    assert meta.gun("apps.create", "shop").code == 0
    url = meta.gun("app:shop", "drains.ingest").out.strip()
    ingest = url.rsplit("/", 1)[1]
    r = meta.gun("tokens.create", "relay", "role=drain")
    assert r.code == 0 and r.err.startswith("Created token relay (role drain);")
    relay = r.out.strip()
    viewer = meta.gun("tokens.create", "eyes", "role=viewer").out.strip()
    for name, token in (("drain", DRAIN), ("relay", relay)):
        with meta.http(token) as http:
            got = http.get(f"/v1/drain/ingest-tokens/{ingest}")
            assert (got.status_code, got.json()) == (200, {"app": "shop"})
            for method, path in ROUTES_A_DRAIN_TOKEN_TRIES:
                body = {"name": "x", "role": "admin"} if method == "POST" else None
                got = http.request(method, path, json=body)
                assert (got.status_code, got.json()["message"]) == (
                    403,
                    f"token {name!r} is a drain token: it may only look up ingest tokens "
                    "(GET /v1/drain/ingest-tokens/TOKEN)",
                ), (method, path)
    for name, token in (("admin", ADMIN), ("eyes", viewer)):
        with meta.http(token) as http:
            got = http.get(f"/v1/drain/ingest-tokens/{ingest}")
        assert (got.status_code, got.json()["message"]) == (
            403,
            f"token {name!r} is not a drain token: only a drain token "
            "(`gun tokens.create NAME role=drain`) may look up ingest tokens",
        )
    r = meta.gun("whoami", token=DRAIN)
    assert r.code == 1 and r.err.startswith("gun: token 'drain' is a drain token:")
    r = meta.gun("tokens.create", "relay2", "role=drain", "app=shop")
    assert (r.code, r.err) == (1, "gun: a drain token serves every app: create it without app\n")


def test_rotating_the_ingest_url_refuses_the_old_token_at_once(meta: MetaServer) -> None:
    assert meta.gun("apps.create", "shop").code == 0
    old = meta.gun("app:shop", "drains.ingest").out.strip()
    r = meta.gun("app:shop", "drains.ingest", "rotate=true")
    assert r.code == 0
    assert r.err == "Rotated the ingest URL of shop: the old one is refused from now on\n"
    new = r.out.strip()
    assert new != old and new.startswith("http://127.0.0.1:9/logs/gdi_")
    assert meta.gun("app:shop", "drains.ingest").out.strip() == new  # stable again
    assert meta.gun("app:shop", "drains.ingest", "rotate=false").out.strip() == new
    with meta.http(DRAIN) as http:
        gone = http.get(f"/v1/drain/ingest-tokens/{old.rsplit('/', 1)[1]}")
        assert (gone.status_code, gone.json()["message"]) == (404, "no app has this ingest token")
        assert http.get(f"/v1/drain/ingest-tokens/{new.rsplit('/', 1)[1]}").json() == {
            "app": "shop"
        }
    r = meta.gun("--json", "app:shop", "drains.ingest", "rotate=true", "resolution=10")
    assert json.loads(r.out)["url"].endswith("?resolution=10")
    with meta.http() as http:
        events = http.get("/v1/apps/shop/events").json()
    assert [e["action"] for e in events[:2]] == ["drain.ingest.rotate", "drain.ingest.rotate"]
    assert all(e["detail"] == {} for e in events[:2])
    viewer = meta.gun("tokens.create", "eyes", "role=viewer", "app=shop").out.strip()
    r = meta.gun("app:shop", "drains.ingest", "rotate=true", token=viewer)
    assert (r.code, r.err) == (1, "gun: token 'eyes' has role viewer; this needs role developer\n")


def test_meta_refuses_to_start_with_a_drain_token_that_is_another_tokens(
    database_url: str, tmp_path: Path
) -> None:
    server = MetaServer(tmp_path / "home", database_url, admin_token=ADMIN)
    server.extra_env = {"GUN_DRAIN_TOKEN": ADMIN}
    with pytest.raises(RuntimeError) as e:
        server.start()
    assert (
        "gun: GUN_DRAIN_TOKEN is the value of token 'admin': give the drain a value of its own"
        in str(e.value)
    )
    assert "Traceback" not in str(e.value)
    server.stop()
