"""The drain's ingest door against a hostile sender, over real HTTP: a real meta, a recorder in
front of it (what the drain asked meta), a real drain. Requests go over a plain socket with
the path byte for byte (httpx would resolve `..` before sending; `%2F` would survive it)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from gun.logs.access import INVALID_INGEST, NO_INGEST
from gun.logs.frames import frame
from tests.drain import ADMIN, DRAIN, Site, drain_env, drain_running, send_raw, site_running
from tests.meta import free_port
from tests.test_drain_access import basic

FORBIDDEN = {"id": "forbidden", "message": INVALID_INGEST}
ASKED = re.compile(
    r"GET (/v1/drain/ingest-tokens/gdi_[A-Za-z0-9_-]{32}|/v1/apps/[a-z][a-z0-9-]+/log-session)\Z"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with site_running(
        tmp_path_factory.mktemp("tokens"), ("shop", "beta"), GUN_METRICS_RESOLUTION="1"
    ) as s:
        yield s
        # whatever the tests did, the drain asked meta nothing but its two questions
        assert [f"{m} {p}" for m, p in s.recorder.seen if not ASKED.match(f"{m} {p}")] == []


def forged(text: str) -> bytes:
    return frame(190, time.time(), "app", "web.1", f"{text} count#forged=1")


def the_family(token: str) -> list[bytes]:
    """Every way a path under /logs/ can smuggle `/`, `..` or `%2F`, or be almost a token."""
    t = token.encode()
    return [
        b"/logs/..%2F..%2Fapps%2Fbeta%2Fstatus",
        b"/logs/../../apps/beta/status",
        b"/logs/%2e%2e/%2e%2e/apps/beta/status",
        b"/logs/%2E%2E%2F%2E%2E%2Fv1%2Fapps%2Fbeta%2Fstatus",
        b"/logs/..%2F..%2Fdrain%2Fingest-tokens%2F" + t,
        b"/logs/",
        b"/logs//" + t,
        b"/logs/" + t + b"/",
        b"/logs/" + t + b"/..",
        b"/logs/" + t + b"/../../apps/beta/status",
        b"/logs/" + t + b";x=1",
        b"/logs/" + t + b"%00",
        b"/logs/" + t + b"%2F",
        b"/logs/" + t + b"%2F..%2F..%2Fapps%2Fbeta",
        b"/logs/" + t + b"A",
        b"/logs/" + t[:-1],
        b"/logs/%67" + t[1:],  # beta's own token with its "g" percent-encoded
        b"/logs/gdi_" + b"\\" * 32,
        b"/logs/gdi_%5C" + t[7:],
        b"/logs/gdi_" + b"%C3%A9" * 8,
        b"/logs/" + b"a" * 40_000,
    ]


def test_the_issues_forgeries_are_refused_and_write_nothing_into_beta(site: Site) -> None:
    asked = site.recorder.count()
    for target in (b"/logs/..%2F..%2Fapps%2Fbeta%2Fstatus", b"/logs/../../apps/beta/status"):
        r = site.post(target, forged(f"forged via {target!r}"))
        assert (r.status, r.json()) == (403, FORBIDDEN), target
    assert site.recorder.count() == asked  # meta was not asked anything
    # beta's own token still works, and shows what beta has: its line, never the forged ones
    r = site.post(f"/logs/{site.tokens['beta']}", frame(190, time.time(), "app", "web.1", "hi"))
    assert (r.status, r.json()["lines"]) == (200, 1)
    r = site.post(
        f"/logs/{site.tokens['beta']}", frame(190, time.time(), "app", "web.1", "count#real=1")
    )
    assert r.status == 200
    deadline = time.monotonic() + 10
    while "real" not in site.metric_names("beta"):
        assert time.monotonic() < deadline, "beta's own count never showed"
        time.sleep(0.2)
    assert "forged" not in site.metric_names("beta")
    assert site.lines("beta") == ["hi", "count#real=1"]


def test_every_invalid_token_gets_one_answer_and_a_malformed_one_no_lookup(site: Site) -> None:
    # a well-formed token no app has: one lookup, then the answer every invalid token gets
    unknown = "gdi_" + "x" * 32
    asked = site.recorder.count()
    r = site.post(f"/logs/{unknown}", forged("unknown"))
    assert (r.status, r.json()) == (403, FORBIDDEN)
    assert site.recorder.seen[asked:] == [("GET", f"/v1/drain/ingest-tokens/{unknown}")]
    for target in the_family(site.tokens["beta"]):
        asked = site.recorder.count()
        r = site.post(target, forged("family"))
        assert (r.status, r.json()) == (403, FORBIDDEN), target[:80]
        assert site.recorder.count() == asked, target[:80]
    for password in ("../../apps/beta/status", "gdi_" + "a" * 40_000, site.tokens["beta"] + "/"):
        asked = site.recorder.count()
        r = site.post(b"/logs", forged("basic"), Authorization=basic("", password).decode())
        assert (r.status, r.json()) == (403, FORBIDDEN), password[:80]
        assert site.recorder.count() == asked
    assert "forged" not in "".join(site.lines("beta")) + "".join(site.lines("shop"))


def test_only_a_request_without_any_token_is_401(site: Site) -> None:
    for authorization in ({}, {"Authorization": basic("heroku", "").decode()}):
        r = site.post(b"/logs", forged("none"), **authorization)
        assert (r.status, r.json()) == (401, {"id": "unauthorized", "message": NO_INGEST})
    r = site.post(b"/logs", b"", Authorization=basic("", site.tokens["shop"]).decode())
    assert r.status == 400  # the token is good: the (empty) body is what is wrong


def test_the_token_of_a_deleted_app_gets_the_same_answer_within_a_second(site: Site) -> None:
    token = site.create_app("gone")
    r = site.post(f"/logs/{token}", frame(190, time.time(), "app", "web.1", "before"))
    assert r.status == 200
    site.destroy_app("gone")
    destroyed = time.monotonic()
    while True:
        r = site.post(f"/logs/{token}", frame(190, time.time(), "app", "web.1", "after"))
        if r.status != 200:
            break
        time.sleep(0.02)
    assert time.monotonic() - destroyed < 1.0
    assert (r.status, r.json()) == (403, FORBIDDEN)


@pytest.mark.parametrize(
    "target",
    [
        b"/logs/gdi_a\x00b",
        b"/logs/gdi_a\tb",
        b"/logs/gdi_\xc3\xa9",
        b"/logs/gdi_\xff",
    ],
)
def test_bytes_no_url_may_hold_are_refused_before_the_drain(site: Site, target: bytes) -> None:
    asked = site.recorder.count()
    assert site.post(target, forged("raw bytes")).status == 400
    assert site.recorder.count() == asked


def test_a_path_beside_the_ingest_door_is_no_way_in(site: Site) -> None:
    token = site.tokens["beta"].encode()
    asked = site.recorder.count()
    for target in (b"//logs/" + token, b"/logs%2F" + token, b"/./logs/" + token, b"/x/../logs"):
        r = site.post(target, forged("beside"))
        assert r.status == 405, target
    assert site.recorder.count() == asked


def test_metas_route_gives_a_token_not_of_the_form_the_unknown_tokens_404(site: Site) -> None:
    drain = {"Authorization": f"Bearer {DRAIN}"}  # the only token meta's route takes
    with httpx.Client(base_url=site.meta.url, headers=drain, timeout=10) as meta:

        def ask(target: bytes) -> httpx.Response:
            request = meta.build_request("GET", "/", extensions={"target": target})
            return meta.send(request)

        unknown = ask(b"/v1/drain/ingest-tokens/gdi_" + b"x" * 32)
        assert unknown.status_code == 404
        prefix = b"/v1/drain/ingest-tokens/"
        for rest in [
            b"..%2F..%2Fapps%2Fbeta%2Fstatus",
            b"../../apps/beta/status",
            b"%2e%2e/%2e%2e/apps/beta",
            b"",
            b"gdi_" + b"x" * 31,
            b"gdi_" + b"x" * 33,
            b"gdi_" + b"x" * 31 + b"%00",
            b"gdi_" + b"x" * 31 + b"%2F",
            b"gdi_" + b"x" * 32 + b"/extra",
            b"a" * 40_000,
        ]:
            r = ask(prefix + rest)
            assert (r.status_code, r.json()) == (404, unknown.json()), rest[:60]
        good = ask(prefix + site.tokens["beta"].encode())
        assert (good.status_code, good.json()) == (200, {"app": "beta"})


class FakeMeta:
    """A server at the drain's GUN_META_URL that answers every request with one answer: what a
    wrong URL, a proxy or a broken meta would say."""

    def __init__(self) -> None:
        self.status, self.body, self.asked = 200, b"", 0
        fake = self

        class Answer(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.asked += 1
                self.send_response(fake.status)
                self.send_header("Content-Length", str(len(fake.body)))
                self.end_headers()
                self.wfile.write(fake.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def test_a_drain_trusts_no_answer_but_metas_own(tmp_path: Path) -> None:
    fake = FakeMeta()
    port = free_port()
    token = "gdi_" + "y" * 32
    try:
        env = drain_env(fake.url, tmp_path / "drain")
        with httpx.Client(timeout=10) as http, drain_running(env, port, http, tmp_path) as drain:
            for status, body in [
                (200, b'{"app": "beta", "release": 3, "formation": {}}'),
                (200, b'{"app": "../beta"}'),
                (200, b'{"name": "beta"}'),
                (200, b"<html>beta</html>"),
                (404, b"Not Found"),
                (401, b'{"id": "unauthorized", "message": "the API token is unknown"}'),
                (500, b"Internal Server Error"),
            ]:
                fake.status, fake.body = status, body
                for _ in range(2):  # never believed, so never kept: asked each time
                    asked = fake.asked
                    r = send_raw(drain.url, b"POST", f"/logs/{token}".encode(), {}, forged("x"))
                    assert r.status == 503, body
                    assert r.json()["message"].startswith(f"meta answered wrongly (HTTP {status})")
                    assert fake.asked == asked + 1
            assert not (tmp_path / "drain" / "logs" / "beta").exists()
            fake.status, fake.body = 200, b'{"app": "beta"}'
            r = send_raw(drain.url, b"POST", f"/logs/{token}".encode(), {}, forged("believed"))
            assert (r.status, r.json()["lines"]) == (200, 1)
    finally:
        fake.close()


def test_a_drain_that_cannot_reach_meta_answers_503(tmp_path: Path) -> None:
    port = free_port()
    env = drain_env(f"http://127.0.0.1:{free_port()}", tmp_path / "drain")
    with httpx.Client(timeout=10) as http, drain_running(env, port, http, tmp_path) as drain:
        r = send_raw(drain.url, b"POST", b"/logs/gdi_" + b"z" * 32, {}, forged("x"))
        assert r.status == 503
        assert r.json()["message"].startswith("cannot reach meta at http://127.0.0.1:")
        r = http.get(f"{drain.url}/v1/apps/shop/logs", headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 503
