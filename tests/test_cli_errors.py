"""Bad command lines exit 2, server refusals exit 1; each with one sentence and no change."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from tests.meta import MetaServer

CASES = [
    # (args, exit code, stderr)
    (
        ["apps.create", "Bad"],
        1,
        "gun: app name 'Bad' is invalid: use 2-30 lowercase letters, digits and dashes, "
        "starting with a letter\n",
    ),
    (["apps.create", "demo"], 1, "gun: app 'demo' already exists\n"),
    (
        ["apps.create", "a" * 300],
        1,
        f"gun: app name '{'a' * 57}...' is invalid: use 2-30 lowercase letters, digits and "
        "dashes, starting with a letter\n",
    ),
    (
        ["apps.create", "gun-drain"],
        1,
        "gun: app name 'gun-drain' is reserved: names starting with 'gun-' are the platform's "
        "own (the drain reports its figures as app gun-drain); pick another\n",
    ),
    (
        ["app:demo", "config.set", "K" * 300 + "=x"],
        2,
        f"gun: config key '{'K' * 57}...' is 300 characters long: use at most 255\n",
    ),
    (["app:demo", "scale", "web-5"], 1, "gun: web-5 would take web below 0: it has 0\n"),
    (
        ["app:demo", "config.set", "1A=x"],
        2,
        "gun: config key '1A' is invalid: use letters, digits and underscores, not starting "
        "with a digit\n",
    ),
    (
        ["app:demo", "config.set", "NOVALUE"],
        2,
        "gun: config.set takes KEY=value words; 'NOVALUE' has no '='\n",
    ),
    (
        ["app:demo", "config.set", "BIG=" + "x" * 33_000],
        1,
        "gun: config vars would total 33008 bytes, over the limit of 32768 bytes\n",
    ),
    (
        ["app:demo", "scale", "web=abc"],
        2,
        "gun: formation 'web=abc': quantity 'abc' is not a whole number\n",
    ),
    (
        ["app:demo", "scale", "web=-1"],
        2,
        "gun: formation 'web=-1': quantity must not be negative\n",
    ),
    (
        ["app:demo", "scale", "web"],
        2,
        "gun: formation 'web' has no quantity: write it as TYPE=N, e.g. web=2\n",
    ),
    (
        ["app:demo", "scale", "=3"],
        2,
        "gun: formation '=3' has no process type: write it as TYPE=N, e.g. web=2\n",
    ),
    (
        ["app:demo", "scale", "web=2=3"],
        2,
        "gun: formation 'web=2=3' has more than one '=': write it as TYPE=N, e.g. web=2\n",
    ),
    (["app:demo", "rollback:v99"], 1, "gun: release v99 of app 'demo' does not exist\n"),
    (
        ["app:demo", "rollback:vx"],
        2,
        "gun: release 'vx' is not a version: write it as vN or N, e.g. v3\n",
    ),
    (["app:nope", "config"], 1, "gun: app 'nope' does not exist\n"),
    (
        ["config"],
        2,
        "gun: no app given: write app:NAME before the command, -a NAME, or set GUN_APP\n",
    ),
    (["confg.set", "A=1"], 2, "gun: unknown command 'confg.set': did you mean 'config.set'?\n"),
    (
        ["apps.destroy", "demo"],
        2,
        "gun: destroying app 'demo' cannot be undone: add confirm=demo to go on\n",
    ),
]


@pytest.mark.parametrize(("args", "code", "err"), CASES, ids=[" ".join(c[0])[:40] for c in CASES])
def test_bad_input(shared_meta: MetaServer, args: list[str], code: int, err: str) -> None:
    meta = shared_meta
    app = f"demo-{uuid.uuid4().hex[:8]}"  # each case gets its own app on the shared server

    def mine(text: str) -> str:
        return text.replace("demo", app)

    with meta.http() as http:
        assert http.post("/v1/apps", json={"name": app}).status_code == 201
        assert http.patch(f"/v1/apps/{app}/config-vars", json={"KEEP": "1"}).status_code == 200
        before = state(http, app)
        r = meta.gun(*[mine(a) for a in args])
        assert (r.code, r.err, r.out) == (code, mine(err), "")
        assert state(http, app) == before


def state(http: httpx.Client, app: str) -> tuple[object, ...]:
    return tuple(
        http.get(path).json()
        for path in (
            "/v1/apps",
            f"/v1/apps/{app}/releases",
            f"/v1/apps/{app}/config-vars",
            f"/v1/apps/{app}/formation",
            f"/v1/apps/{app}/events",
        )
    )


def test_tokens_of_another_app_or_too_low_a_role_are_refused(meta: MetaServer) -> None:
    for name in ("mine", "theirs"):
        assert meta.gun("apps.create", name).code == 0
    scoped = meta.gun("tokens.create", "ci", "app=mine").out.strip()
    viewer = meta.gun("tokens.create", "dash", "role=viewer").out.strip()

    r = meta.gun("app:theirs", "config.set", "A=1", token=scoped)
    assert (r.code, r.err) == (
        1,
        "gun: token 'ci' is scoped to app 'mine' and cannot reach app 'theirs'\n",
    )
    r = meta.gun("app:mine", "config.set", "A=1", token=viewer)
    assert (r.code, r.err) == (1, "gun: token 'dash' has role viewer; this needs role developer\n")
    r = meta.gun("tokens.create", "x", "role=admin", token=scoped)
    assert (r.code, r.err) == (
        1,
        "gun: token 'ci' is scoped to app 'mine' and cannot reach resources outside its app\n",
    )
    r = meta.gun("tokens.create", "x", "role=admin", token=viewer)
    assert (r.code, r.err) == (1, "gun: token 'dash' has role viewer; this needs role admin\n")
    assert json.loads(meta.gun("--json", "app:theirs", "releases").out)[0]["version"] == 1


def test_missing_or_unknown_token(meta: MetaServer) -> None:
    r = meta.gun("apps", token="gun_wrong")
    assert (r.code, r.err) == (1, "gun: the API token is unknown or revoked\n")
    r = meta.gun("apps", env={"GUN_API_TOKEN": ""})
    assert (r.code, r.err) == (1, "gun: no API token given: run `gun login` or pass --token\n")


def test_meta_unreachable(tmp_path) -> None:  # noqa: ANN001
    from tests.meta import free_port

    server = MetaServer(tmp_path, "sqlite://", admin_token=None)
    r = server.gun(
        "apps", env={"GUN_API_URL": f"http://127.0.0.1:{free_port()}", "GUN_API_TOKEN": "x"}
    )
    assert r.code == 1
    assert r.err.startswith("gun: cannot reach meta at http://127.0.0.1:")
    assert r.err.endswith("is it running? (`gun up` starts it)\n")
