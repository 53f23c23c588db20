"""The rendered config and plan's commands on a real HAProxy: requests reach the processes the
runtime API adds, carry Heroku's request headers, and each gives one router line."""

from __future__ import annotations

import asyncio
import http.server
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gun import atomic
from gun.router import lines
from gun.router.haproxy import Settings, files, plan
from gun.router.runner import Haproxy, admin, binary, refused
from gun.router.table import Backend, Route, Table
from tests.meta import free_port

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")


class App(http.server.ThreadingHTTPServer):
    """A web process: answers its name, and keeps the headers of each request."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[dict[str, str]] = []
        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: App

    def do_GET(self) -> None:
        self.server.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def quiet(self: App, request: object, address: object) -> None:
    pass  # HAProxy's health checks connect and close: nothing to report


App.handle_error = quiet  # type: ignore[method-assign,assignment]


def route(*backends: Backend) -> Table:
    return Table((Route("shop", ("shop.localhost",), backends, ()),))


@pytest.fixture
def router() -> Iterator[tuple[Haproxy, socket.socket, int]]:
    home = Path(tempfile.mkdtemp(prefix="gunrh", dir="/tmp"))
    syslog = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    syslog.bind(("127.0.0.1", 0))
    port = free_port()
    s = Settings(
        listen=f"127.0.0.1:{port}",
        home=home,
        syslog=f"127.0.0.1:{syslog.getsockname()[1]}",
        check_interval=0.1,
    )
    proxy = Haproxy(s, binary())
    try:
        for path, (text, mode) in files(route(), s).items():
            atomic.write(path, text, mode)
        proxy.check()
        proxy.start()
        deadline = time.monotonic() + 10
        while not s.socket.exists() or not asyncio.run(admin(s.socket, "show info")):
            assert proxy.alive() and time.monotonic() < deadline, "HAProxy did not start"
            time.sleep(0.02)
        yield proxy, syslog, port
    finally:
        proxy.stop()
        syslog.close()
        shutil.rmtree(home)


def datagrams(syslog: socket.socket, wait: float = 0.5) -> list[bytes]:
    out = []
    syslog.settimeout(wait)
    while True:
        try:
            out.append(syslog.recv(65536))
        except TimeoutError:
            return out


def test_requests_reach_the_processes_of_the_table(
    router: tuple[Haproxy, socket.socket, int],
) -> None:
    proxy, syslog, port = router
    s = proxy.settings
    web1, web2 = App("web.1"), App("web.2")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            nobody = client.get("/", headers={"Host": "shop.localhost"})
            assert nobody.status_code == 503  # H14: no web process
            assert client.get("/", headers={"Host": "nope.localhost"}).status_code == 404

            new = route(Backend("web.1", "127.0.0.1", web1.port))
            assert plan(route(), new, s) is None  # a new process: a reload
            for path, (text, mode) in files(new, s).items():
                atomic.write(path, text, mode)
            proxy.check()
            proxy.reload()
            deadline = time.monotonic() + 5
            while client.get("/", headers={"Host": "shop.localhost"}).status_code != 200:
                assert time.monotonic() < deadline, "web.1 never got a request"
                time.sleep(0.05)

            valid = "abcdefghij-KLMNOPQRST+/=0123"
            got = client.get("/a?b=1", headers={"Host": "Shop.LOCALHOST:80", "X-Request-Id": valid})
            assert (got.status_code, got.text) == (200, "web.1")
            seen = web1.seen[-1]
            assert seen["x-request-id"] == valid
            assert seen["x-forwarded-for"] == "127.0.0.1"
            assert seen["x-forwarded-proto"] == "http"
            assert seen["x-forwarded-port"] == str(port)
            assert seen["via"] == "1.1 gun"

            for bad in (
                "short",
                "a" * 201,
                "with space and twenty chars",
                "not valid at all!!,abcdefghijklmnopqrstuvwxyz",  # req.hdr splits on commas
            ):
                client.get("/", headers={"Host": "shop.localhost", "X-Request-Id": bad})
                assert UUID.match(web1.seen[-1]["x-request-id"]), bad
            two = [("Host", "shop.localhost"), ("X-Request-Id", "x"), ("X-Request-Id", valid)]
            client.get("/", headers=two)
            assert UUID.match(web1.seen[-1]["x-request-id"])

            # web.1 moves to another port (preboot: its new copy), by the runtime API alone
            newer = route(Backend("web.1", "127.0.0.1", web2.port))
            commands = plan(new, newer, s)
            assert commands == [f"set server app-shop/web.1 addr 127.0.0.1 port {web2.port}"]
            for command in commands:
                answer = asyncio.run(admin(s.socket, command))
                assert not refused(command, answer), (command, answer)
            deadline = time.monotonic() + 5
            while client.get("/", headers={"Host": "shop.localhost"}).text != "web.2":
                assert time.monotonic() < deadline, "the new copy never got a request"
                time.sleep(0.05)
            answers = {client.get("/", headers={"Host": "shop.localhost"}).text for _ in range(6)}
            assert answers == {"web.2"}

        got_lines = [lines.read(d) for d in datagrams(syslog)]
        router_lines = [g for g in got_lines if g is not None]
        # every request to shop gave one line (the unknown host's 404 none): those the
        # processes answered, and the 503s while it had none (the first, and any before the
        # reload was done)
        assert all(app == "shop" for app, _ in router_lines)
        answered = [line for _, line in router_lines if " status=200 " in line]
        h14 = [line for _, line in router_lines if " code=H14 " in line]
        assert len(answered) == len(web1.seen) + len(web2.seen)
        assert len(answered) + len(h14) == len(router_lines)
        assert router_lines[0][1].startswith('at=error code=H14 desc="No web processes running"')
        assert any(
            line.startswith('at=info method=GET path="/a?b=1" host=shop.localhost')
            and f"request_id={valid} " in line
            and " dyno=web.1 " in line
            and " status=200 bytes=" in line
            for _, line in router_lines
        ), "\n".join(line for _, line in router_lines)
        assert all(" dyno=web.1 " in line for line in answered)  # its new copy too
    finally:
        web1.stop()
        web2.stop()
