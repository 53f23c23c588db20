"""The browser harness (tests/browser.py) itself: Debian's Chromium launches per REFERENCE.md
§8, renders a page of a local server, logs in through a form, and `layout_ok` catches a page
wider than the window and an element drawn over the header; a screenshot is a PNG; afterwards
no process of the browser is left."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import psutil
import pytest

from tests import browser

HEADER = "<header id=top style='height:60px;background:#222;color:#fff'>gun</header>"
PAGES = {
    "/": f"<!doctype html><body style='margin:0'>{HEADER}<main><p>fine</p></main></body>",
    "/wide": f"<!doctype html><body style='margin:0'>{HEADER}"
    "<main><div id=wide style='width:1600px;height:10px'></div></main></body>",
    "/over": f"<!doctype html><body style='margin:0'>{HEADER}"
    "<main><div class=badge data-x=1 style='position:absolute;top:30px;left:100px;"
    "width:50px;height:50px'>!</div><p style='visibility:hidden;position:absolute;top:0'>"
    "hidden</p></main></body>",
    "/beside": "<!doctype html><body style='margin:0'><nav style='position:absolute;left:0;"
    "top:0;width:200px;height:400px'>menu</nav><header id=top style='margin-left:200px;"
    "height:60px'>gun</header><main style='margin-left:200px'>fine</main></body>",
    "/login": "<!doctype html><body><form id=login method=post action=/login>"
    "<input name=token type=password><button type=submit>Log in</button></form></body>",
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGES.get(self.path)
        if body is None:
            self.send_error(404)
            return
        if self.path == "/":
            who = self.headers.get("Cookie", "")
            body = body.replace("fine", f"fine; cookie {who}")
        self.reply(200, body.encode())

    def do_POST(self) -> None:
        if self.path != "/login":
            self.reply(403, b"refused")
            return
        length = int(self.headers.get("Content-Length", "0"))
        token = parse_qs(self.rfile.read(length).decode()).get("token", [""])[0]
        self.send_response(303)
        self.send_header("Location", "/")
        self.send_header("Set-Cookie", f"s={token}; HttpOnly; SameSite=Strict; Path=/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_chromium_renders_logs_in_checks_layout_and_leaves_nothing(
    site: str, tmp_path: Path
) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with browser.chromium() as b:
        assert "--no-sandbox" in browser.ARGS
        launched = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
        assert any("chromium" in " ".join(p.cmdline()) for p in launched), launched
        with browser.page(b) as page:
            assert page.viewport_size == {"width": 1280, "height": 800}
            page.goto(f"{site}/")
            assert page.text_content("main") == "fine; cookie "
            assert browser.layout_ok(page) == []

            page.goto(f"{site}/login")
            assert browser.fields(page, "form#login") == {"token": ""}
            assert browser.post(page, "/login", {"token": "x"}) == 0  # a redirect
            assert browser.post(page, "/nowhere", {}) == 403
            page.context.clear_cookies()

            browser.login(page, site, "s3cret")
            assert page.url == f"{site}/"
            assert page.text_content("main") == "fine; cookie s=s3cret"

            page.goto(f"{site}/wide")
            assert browser.layout_ok(page) == [
                "horizontal overflow: the document is 1600 px wide in a 1280 px window"
            ]

            page.goto(f"{site}/over")
            assert browser.layout_ok(page) == [
                'overlaps header#top (at (0, 0) 1280×60): div.badge[data-x="1"] at (100, 30) 50×50'
            ]

            page.goto(f"{site}/beside")
            assert browser.layout_ok(page) == []
            page.set_content("<p>no header</p>")
            assert browser.layout_ok(page) == ["no header#top"]

            page.goto(f"data:text/html,{PAGES['/']}")
            shot = browser.screenshot(page, tmp_path / "shots" / "fine.png")
            data = shot.read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
            width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
            assert (width, height) == (1280, 800)
    left = [p for p in launched if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], left
