"""The router as a user meets it under `gun up`: every app at http://APP.localhost:PORT/ and its
domains, Heroku's request headers, no request lost through restarts, scales and deploys, and one
router line per request, whose metrics match what the client counted."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import statistics
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests import tlsmaker
from tests.load import Load
from tests.up import Up, running

ROUTER_APP = Path(__file__).parent / "apps" / "router_app"


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    tmp = tmp_path_factory.mktemp("router")
    with running(tmp, instances=2, GUN_ROUTER_TIMEOUT="3") as platform:
        yield platform


SENT: Counter[str] = Counter()  # requests get() sent, by Host


def get(up: Up, host: str, path: str = "/", **headers: str) -> httpx.Response:
    SENT[host] += 1
    return httpx.get(f"{up.router_url}{path}", headers={"Host": host, **headers}, timeout=30)


def seen(r: httpx.Response) -> dict[str, str]:
    """The headers the web process got (HAProxy sends their names in lowercase)."""
    return {k.lower(): v for k, v in r.json()["headers"].items()}


def deployed(up: Up, app: str, web: int) -> None:
    up.ok("apps.create", app)
    up.ok(f"app:{app}", "deploy", f"dir={ROUTER_APP}")
    up.ok(f"app:{app}", "scale", f"web={web}")
    serving(up, app, web)


def serving(up: Up, app: str, n: int) -> set[str]:
    """Wait until the router sends requests to exactly the app's n web processes; their names."""

    def dynos() -> set[str] | None:
        seen = set()
        for _ in range(4 * n + 4):
            r = get(up, f"{app}.localhost")
            if r.status_code != 200:
                return None
            seen.add(r.json()["dyno"])
        return seen if len(seen) == n else None

    found: set[str] = up.until(dynos, 60, f"the router to serve {n} web processes of {app}")
    return found


def router_lines(up: Up, app: str, *grep: str) -> list[str]:
    args = [f"app:{app}", "logs", "-n", "1000", "source=heroku", "ps=router", *grep]
    return [line.split(": ", 1)[1] for line in up.ok(*args).splitlines()]


def test_every_app_answers_at_its_name_with_herokus_headers(up: Up) -> None:
    deployed(up, "shop", 3)
    assert serving(up, "shop", 3) == {"web.1", "web.2", "web.3"}  # each in turn

    r = get(up, "shop.localhost", "/?q=1")
    headers = seen(r)
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-port"] == str(up.router_port)
    assert headers["via"] == "1.1 gun"
    generated = headers["x-request-id"]
    assert len(generated) == 36  # a UUID
    kept = get(up, "SHOP.localhost:80", **{"X-Request-Id": "client-chosen-id-0123456789"})
    assert seen(kept)["x-request-id"] == "client-chosen-id-0123456789"
    bad = get(up, "shop.localhost", **{"X-Request-Id": "short"})
    assert len(seen(bad)["x-request-id"]) == 36

    nowhere = get(up, "nosuch.localhost")
    assert (nowhere.status_code, "No such app" in nowhere.text) == (404, True)

    up.ok("app:shop", "domains.add:www.shop.test")
    www = up.until(lambda: get(up, "www.shop.test").status_code == 200, 10, "www.shop.test")
    assert www
    up.ok("app:shop", "domains.remove:www.shop.test")
    up.until(lambda: get(up, "www.shop.test").status_code == 404, 10, "www.shop.test to go")

    lines = up.until(
        lambda: [ln for ln in router_lines(up, "shop") if generated in ln], 15, "its router line"
    )
    assert len(lines) == 1
    assert lines[0].startswith('at=info method=GET path="/?q=1" host=shop.localhost ')
    assert f"request_id={generated} " in lines[0] and " status=200 " in lines[0]


def test_no_request_fails_through_restart_scale_and_deploy(up: Up) -> None:
    deployed(up, "steady", 3)
    with Load(up.router_url + "/", "steady.localhost", rate=100, connections=4) as load:
        before = {p["name"]: p["since"] for p in up.processes("steady")}
        up.ok("app:steady", "ps.restart")
        up.until(lambda: all_replaced(up, "steady", before), 60, "the restart")
        up.ok("app:steady", "scale", "web=1")
        serving(up, "steady", 1)
        up.ok("app:steady", "scale", "web=4")
        serving(up, "steady", 4)
        up.ok("app:steady", "deploy", f"dir={ROUTER_APP}")  # preboot
        up.until(lambda: on_release(up, "steady", 3, 4), 60, "the deploy")
        serving(up, "steady", 4)
    print("restart, scale 3 -> 1 -> 4, deploy:", load.summary())
    assert load.sent > 1000
    assert load.failed == 0, load.summary()

    # one router line per request: the metrics count what the client counted, exactly
    sent = load.statuses[200] + SENT["steady.localhost"]  # the load's, and serving()'s

    def counted() -> dict[str, list[dict[str, Any]]] | None:
        series: dict[str, list[dict[str, Any]]] = {}
        for b in up.json("app:steady", "metrics", "since=10m"):
            series.setdefault(b["name"], []).append(b)
        ok = sum(b["sum"] for b in series.get("router.status.2xx", []))
        return series if ok >= sent else None

    series = up.until(counted, 30, "the router lines of every request")
    assert sum(b["sum"] for b in series["router.status.2xx"]) == sent
    assert "router.status.5xx" not in series and not any(
        n.startswith("router.error") for n in series
    )
    service = series["router.service"]
    assert sum(b["count"] for b in service) == sent
    client_ms = [1000 * s for s in load.latencies]
    assert max(b["max"] for b in service) <= max(client_ms) + 1  # service is part of the client's
    mean = sum(b["sum"] for b in service) / sent
    assert mean <= statistics.mean(client_ms) + 1


def test_a_killed_process_costs_at_most_the_requests_it_had(up: Up) -> None:
    deployed(up, "crashy", 2)
    with Load(up.router_url + "/", "crashy.localhost", rate=100, connections=4) as load:
        up.until(lambda: load.sent > 100, 10, "the load to start")
        web = next(p for p in up.processes("crashy") if p["name"] == "web.1")
        os.kill(listener(web["port"]), signal.SIGKILL)
        up.until(
            lambda: any(p["restarts"] for p in up.processes("crashy") if p["name"] == "web.1"),
            30,
            "web.1 to be started again",
        )
        serving(up, "crashy", 2)
    print("kill -9 of web.1:", load.summary())
    assert load.failed <= load.connections, load.summary()  # only requests under way in it


def test_router_errors_are_herokus(up: Up) -> None:
    deployed(up, "errors", 1)
    slow = get(up, "errors.localhost", "/sleep/5")  # GUN_ROUTER_TIMEOUT=3
    assert (slow.status_code, "did not answer in time" in slow.text) == (503, True)
    closed = get(up, "errors.localhost", "/close")
    assert closed.status_code == 503
    teapot = get(up, "errors.localhost", "/status/418")
    assert teapot.status_code == 418
    up.ok("app:errors", "scale", "web=0")
    up.until(lambda: get(up, "errors.localhost").status_code == 503, 30, "no web process")
    none = get(up, "errors.localhost")
    assert "No web processes are running" in none.text

    def said() -> list[str] | None:
        found = router_lines(up, "errors", "grep=at=error")
        codes = {ln.split(" code=")[1].split(" ")[0] for ln in found}
        return found if {"H12", "H13", "H14"} <= codes else None

    errors = up.until(said, 15, "the error lines")
    h12 = next(ln for ln in errors if "code=H12" in ln)
    assert h12.startswith('at=error code=H12 desc="Request timeout" method=GET path="/sleep/5"')
    assert " status=503 " in h12 and " dyno=web.1 " in h12
    h14 = next(ln for ln in errors if "code=H14" in ln)
    assert ' desc="No web processes running" ' in h14 and " dyno= connect= " in h14
    assert any(" status=418 " in ln for ln in router_lines(up, "errors", "grep=status=418"))


def all_replaced(up: Up, app: str, before: dict[str, str]) -> bool:
    procs = [p for p in up.processes(app) if p["type"] == "web"]
    fresh = [p for p in procs if p["state"] == "up" and p["since"] != before.get(p["name"])]
    return len(fresh) == len(before)


def on_release(up: Up, app: str, release: int, n: int) -> bool:
    procs = [p for p in up.processes(app) if p["type"] == "web"]
    return len(procs) == n and all(p["state"] == "up" and p["release"] == release for p in procs)


def listener(port: int) -> int:
    """The pid of the process listening on 127.0.0.1:port."""
    for c in psutil.net_connections("tcp4"):
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid:
            return int(c.pid)
    raise AssertionError(f"nothing listens on port {port}")


def over_tls(up: Up, hostname: str, path: str, cafile: Path) -> tuple[str, bytes, bytes]:
    """GET over HTTPS to the router with SNI `hostname`, the certificate checked against
    `cafile`: (status line, the response's headers and body, the server's certificate DER)."""
    context = ssl.create_default_context(cafile=str(cafile))
    with (
        socket.create_connection(("127.0.0.1", up.router_tls_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=hostname) as tls,
    ):
        tls.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {hostname}\r\nConnection: close\r\n\r\n".encode()
        )
        got = b""
        while chunk := tls.recv(65536):
            got += chunk
        der = tls.getpeercert(binary_form=True)
    head, _, body = got.partition(b"\r\n\r\n")
    assert der is not None
    return head.split(b"\r\n")[0].decode(), head + b"\r\n\r\n" + body, der


def test_https_by_sni_with_each_apps_certificate(up: Up, tmp_path: Path) -> None:
    deployed(up, "secure", 1)
    local_ca = up.home / "router-ca" / "ca.pem"  # gun up's: it signed secure.localhost's
    status, response, _ = over_tls(up, "secure.localhost", "/", local_ca)
    assert status == "HTTP/1.1 200 OK"
    body = json.loads(response.split(b"\r\n\r\n", 1)[1])
    headers = {k.lower(): v for k, v in body["headers"].items()}
    assert (headers["x-forwarded-proto"], headers["x-forwarded-port"]) == (
        "https",
        str(up.router_tls_port),
    )

    up.ok("app:secure", "domains.add:www.secure.test")
    chain, key, root = tlsmaker.chained(["www.secure.test"])
    (tmp_path / "cert.pem").write_text(chain)
    (tmp_path / "key.pem").write_text(key)
    (tmp_path / "root.pem").write_text(tlsmaker.pem(root))
    up.ok("app:secure", "certs.add", str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    leaf = x509.load_pem_x509_certificate(chain.encode())

    def served() -> bool:
        try:
            status, _, der = over_tls(up, "www.secure.test", "/", tmp_path / "root.pem")
        except (ssl.SSLError, OSError):
            return False
        return status == "HTTP/1.1 200 OK" and der == leaf.public_bytes(Encoding.DER)

    assert up.until(served, 15, "the app's certificate served for www.secure.test")

    up.ok("app:secure", "config.set", "ROUTER_HTTPS_ONLY=true")
    https = f"https://secure.localhost:{up.router_tls_port}/a?b=1"

    def redirected() -> bool:
        r = get(up, "secure.localhost", "/a?b=1")
        return r.status_code == 308 and r.headers["location"] == https

    assert up.until(redirected, 30, "plain HTTP redirected to HTTPS")
    assert over_tls(up, "secure.localhost", "/", local_ca)[0] == "HTTP/1.1 200 OK"
    lines = up.until(
        lambda: [ln for ln in router_lines(up, "secure") if "protocol=https" in ln],
        15,
        "router lines of HTTPS requests",
    )
    assert all(" status=200 " in ln for ln in lines)
