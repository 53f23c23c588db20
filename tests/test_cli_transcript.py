"""A user's session: the real `gun` CLI against a real meta server, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from tests.meta import MetaServer


def test_a_developer_session(meta: MetaServer) -> None:
    gun = meta.gun

    r = gun("apps.create", "groupme")
    assert (r.code, r.out) == (0, "Created app groupme (v1)\n")

    r = gun("app:groupme", "config.set", "RAILS_ENV=production")
    assert (r.code, r.out, r.err) == (0, "v2\n", "Set RAILS_ENV config vars on groupme\n")
    r = gun(
        "config.set", "DATABASE_URL=postgres://db/groupme", "REDIS_URL=redis://r", "-a", "groupme"
    )
    assert (r.code, r.out) == (0, "v3\n")
    r = gun("app:groupme", "config.set", "SECRET=s3cr3t with space")
    assert (r.code, r.out) == (0, "v4\n")

    r = gun("app:groupme", "config.unset", "REDIS_URL")
    assert (r.code, r.out, r.err) == (0, "v5\n", "Unset REDIS_URL config vars on groupme\n")

    r = gun("app:groupme", "config")
    assert r.out == (
        "DATABASE_URL=postgres://db/groupme\nRAILS_ENV=production\nSECRET='s3cr3t with space'\n"
    )
    assert gun("app:groupme", "config.get:SECRET").out == "s3cr3t with space\n"

    r = gun("app:groupme", "scale", "web=2", "worker=1")
    assert (r.code, r.out) == (0, "Scaled groupme to web=2 worker=1\n")
    r = gun("app:groupme", "ps.scale", "web+1")
    assert (r.code, r.out) == (0, "Scaled groupme to web=3 worker=1\n")
    r = gun("--json", "app:groupme", "formation")
    assert json.loads(r.out) == [
        {"type": "web", "quantity": 3, "layer": "default"},
        {"type": "worker", "quantity": 1, "layer": "default"},
    ]

    r = gun("app:groupme", "releases")
    lines = r.out.splitlines()
    assert lines[0].split() == ["VERSION", "DESCRIPTION", "STATUS", "BY", "CREATED"]
    assert [ln.split()[:2] for ln in lines[1:3]] == [["*", "v5"], ["v4", "Set"]]
    assert lines[1].split()[2:8] == ["Unset", "REDIS_URL", "config", "vars", "succeeded", "admin"]
    assert len(lines) == 6

    r = gun("app:groupme", "rollback:v3")
    assert (r.code, r.out, r.err) == (0, "v6\n", "Rollback to v3 on groupme\n")
    r = gun("--json", "app:groupme", "releases")
    top = json.loads(r.out)[0]
    assert set(top) == {"version", "description", "status", "current", "created_at", "commit"}
    assert (top["version"], top["description"], top["current"]) == (6, "Rollback to v3", True)
    assert json.loads(gun("--json", "app:groupme", "config").out) == {
        "DATABASE_URL": "postgres://db/groupme",
        "RAILS_ENV": "production",
        "REDIS_URL": "redis://r",
    }

    r = gun("--json", "app:groupme", "status")
    assert json.loads(r.out) == {
        "app": "groupme",
        "release": 6,
        "formation": {"web": 3, "worker": 1},
        "processes": {"starting": 0, "up": 0, "crashed": 0, "stopping": 0, "down": 0},
        "instances": 0,
        "last_deploy": None,
    }

    # The seed's two routes, as its curl calls them.
    with meta.http() as http:
        shown = http.get("/apps/show/groupme")
        assert (shown.status_code, shown.json()) == (200, {"formation.default": "web=3,worker=1"})
        config = http.get("/config_vars/show/groupme")
        assert config.status_code == 200
        assert config.json() == {
            "DATABASE_URL": "postgres://db/groupme",
            "RAILS_ENV": "production",
            "REDIS_URL": "redis://r",
        }

    r = gun("--json", "apps")
    (app,) = json.loads(r.out)
    assert (set(app), app["name"], app["release"]) == (
        {"name", "release", "created_at"},
        "groupme",
        6,
    )


def test_login_whoami_tokens_and_layers(meta: MetaServer) -> None:
    r = meta.gun(
        "login",
        "--api",
        meta.url,
        "--token",
        "gun_test_admin_token",
        env={"GUN_API_URL": "", "GUN_API_TOKEN": ""},
    )
    assert r.code == 0, r.err
    assert r.out == f"Logged in to {meta.url} as admin (role admin)\n"
    # without GUN_API_* the saved credentials are used
    r = meta.gun("whoami", env={"GUN_API_URL": "", "GUN_API_TOKEN": ""})
    assert r.out == f"admin (role admin) at {meta.url}\n"

    assert meta.gun("apps.create", "billing").code == 0
    r = meta.gun("tokens.create", "deployer", "role=developer", "app=billing")
    assert r.code == 0 and r.out.startswith("gun_")
    token = r.out.strip()
    r = meta.gun("--json", "whoami", token=token)
    assert json.loads(r.out) == {"name": "deployer", "role": "developer", "app": "billing"}

    r = meta.gun("app:billing", "layers.set:jobs", "types=worker,clock", token=token)
    assert (r.code, r.out) == (0, "Layer jobs runs worker, clock\n")
    r = meta.gun("app:billing", "layers")
    assert r.out == "LAYER    TYPES\ndefault  every type\njobs     worker,clock\n"

    r = meta.gun("apps.destroy", "billing", "confirm=billing", token=token)
    assert (r.code, r.out) == (0, "Destroyed app billing\n")
