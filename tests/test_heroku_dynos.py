"""Dynos through the Heroku Platform API, on `gun up`: the list the clients read, restarts of
all, one and a type (seen through gun's own API: new pids), stops, and one-off dynos attached
by a client that does at the rendezvous exactly what the stock clients do (REFERENCE.md §6):
TLS verified against DIR/tls/ca.pem for 127.0.0.1, the secret, the greeting dropped with the
whole first read, raw output until the close, input ended by one `\\x04` without half-closing."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from gun.api.heroku.dynos import DynoCreate, run_request
from gun.errors import InvalidParams, UsageError
from gun.heroku_ids import is_uuid
from gun.rendezvous import Address, Framing
from gun.settings import MetaSettings
from tests.up import HELLO, Up, running

ACCEPT = "application/vnd.heroku+json; version=3"
MARKER = '; echo "\uffff heroku-command-exit-status: $?"'  # what `heroku run -x` appends
DYNO_FIELDS = {
    "id", "name", "type", "command", "state", "size", "updated_at", "created_at", "release",
    "attach_url", "app",
}  # fmt: skip


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    tmp = tmp_path_factory.mktemp("dynos")
    with running(tmp, instances=1) as platform:
        assert platform.ok("apps.create", "demo") == "Created app demo (v1)\n"
        assert platform.ok("app:demo", "deploy", f"dir={HELLO}") == "v2\n"
        platform.ok("app:demo", "scale", "web=2")
        platform.until(lambda: states(platform) == {"web.1": "up", "web.2": "up"}, 60, "web up")
        yield platform


def api(up: Up, method: str, path: str, body: object = None) -> httpx.Response:
    token = (up.home / "admin.token").read_text().strip()
    return httpx.request(
        method,
        f"{up.url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}", "Accept": ACCEPT},
        timeout=30,
    )


def states(up: Up) -> dict[str, str]:
    return {p["name"]: p["state"] for p in up.processes("demo") if p["name"].startswith("web.")}


def pids(up: Up) -> dict[str, int]:
    return {p["name"]: p["pid"] for p in up.processes("demo") if p["state"] == "up" and p["pid"]}


def restarted(up: Up, before: dict[str, int], names: set[str]) -> bool:
    """`names` are up with new pids; the others kept theirs."""
    now = pids(up)
    if set(now) != set(before):
        return False
    return all((now[n] != before[n]) == (n in names) for n in before)


def test_dynos_list_with_herokus_shape_by_app_name_or_uuid(up: Up) -> None:
    got = api(up, "GET", "/apps/demo/dynos")
    assert got.status_code == 200, got.text
    dynos = got.json()
    assert [d["name"] for d in dynos] == ["web.1", "web.2"]
    for d in dynos:
        assert set(d) == DYNO_FIELDS
        assert (d["type"], d["command"], d["state"]) == ("web", "python3 web.py", "up")
        assert d["release"]["version"] == 2 and is_uuid(d["release"]["id"])
        assert d["app"]["name"] == "demo" and d["attach_url"] is None
        assert is_uuid(d["id"]) and d["size"]
    app_id = dynos[0]["app"]["id"]
    assert api(up, "GET", f"/apps/{app_id}/dynos").json() == dynos
    one = api(up, "GET", f"/apps/demo/dynos/{dynos[1]['id']}").json()
    assert one == dynos[1] == api(up, "GET", "/apps/demo/dynos/web.2").json()
    missing = api(up, "GET", "/apps/demo/dynos/web.9")
    assert missing.status_code == 404
    assert set(missing.json()) >= {"id", "message"} and missing.json()["id"] == "not_found"


def test_restart_one_a_type_and_all_restart_those_processes(up: Up) -> None:
    for method, path, names in [
        ("DELETE", "/apps/demo/dynos/web.1", {"web.1"}),  # ps:restart web.1
        ("POST", "/apps/demo/dynos/web.2/actions/stop", {"web.2"}),  # ps:stop: comes back
        ("DELETE", "/apps/demo/formations/web", {"web.1", "web.2"}),  # ps:restart web
        ("DELETE", "/apps/demo/dynos", {"web.1", "web.2"}),  # ps:restart
    ]:
        before = up.until(lambda: len(pids(up)) == 2 and pids(up), 60, "both web up")
        done = api(up, method, path)
        assert (done.status_code, done.json()) == (202, {}), (path, done.text)
        up.until(lambda n=names, b=before: restarted(up, b, n), 60, f"{path} restarting {names}")
    assert api(up, "DELETE", "/apps/demo/formations/clock").status_code == 404


def test_a_detached_one_off_dyno_is_listed_and_stopped(up: Up) -> None:
    made = api(up, "POST", "/apps/demo/dynos", {"command": "sleep 300", "attach": False})
    assert made.status_code == 201, made.text
    dyno = made.json()
    assert set(dyno) == DYNO_FIELDS
    assert (dyno["type"], dyno["command"], dyno["attach_url"]) == ("run", "sleep 300", None)
    assert dyno["state"] in ("starting", "up") and dyno["name"].startswith("run.")
    name = dyno["name"]
    listed = up.until(
        lambda: [d for d in api(up, "GET", "/apps/demo/dynos").json() if d["name"] == name],
        30,
        f"{name} listed",
    )
    assert listed[0]["id"] == dyno["id"]
    done = api(up, "POST", f"/apps/demo/dynos/{name}/actions/stop")
    assert (done.status_code, done.json()) == (202, {})
    names = [d["name"] for d in api(up, "GET", "/apps/demo/dynos").json()]
    assert names == ["web.1", "web.2"]
    again = api(up, "DELETE", f"/apps/demo/dynos/{name}")
    assert again.status_code == 404 and again.json()["id"] == "not_found"


# -- heroku run, as the stock clients do it ---------------------------------------------------


def heroku_run(
    up: Up,
    body: dict[str, Any],
    keys: Sequence[bytes] = (),
    *,
    line_end: bytes = b"\r\n",
    end_of_input: bool = True,
    late: float = 0.0,
) -> bytes:
    """`POST /apps/demo/dynos`, then the rendezvous as the heroku CLI (or heroku3, `line_end`
    b""): what came after the greeting, until the server closed."""
    made = api(up, "POST", "/apps/demo/dynos", {"attach": True, **body})
    assert made.status_code == 201, made.text
    where = urlsplit(made.json()["attach_url"])
    assert where.scheme == "rendezvous" and where.port == up.rendezvous_port
    tls = ssl.create_default_context(cafile=up.home / "tls" / "ca.pem")
    time.sleep(late)
    raw = socket.create_connection((where.hostname, where.port), timeout=30)
    with tls.wrap_socket(raw, server_hostname=where.hostname) as conn:
        conn.sendall(where.path.lstrip("/").encode() + line_end)
        greeting = conn.recv(65536)  # a write of its own: the clients drop the whole read
        assert greeting == b"rendezvous\r\n", (up.home / "log" / "meta.log").read_text()[-2000:]
        for chunk in keys:
            conn.sendall(chunk)
        if end_of_input:
            conn.sendall(b"\x04")  # no half-close: the CLI never shuts its side
        out = b""
        while chunk := conn.recv(65536):
            out += chunk
    return out


def test_heroku_run_x_reads_the_exit_code_from_the_marker(up: Up) -> None:
    out = heroku_run(up, {"command": "sh -c 'exit 3' " + MARKER, "force_no_tty": True})
    assert out == "\uffff heroku-command-exit-status: 3\n".encode()


def test_without_a_tty_input_ends_at_the_eot_and_output_is_raw(up: Up) -> None:
    body = {"command": "cat; echo done; echo oops >&2", "force_no_tty": True, "env": {}}
    out = heroku_run(up, body, [b"one\n", b"two\n"])
    assert out == b"one\ntwo\ndone\noops\n"


def test_with_a_tty_keys_go_raw_and_the_size_and_term_are_envs(up: Up) -> None:
    body = {
        "command": 'read -r line; echo "got:$line"; stty size; echo "$TERM"; tty',
        "env": {"TERM": "xterm-256color", "COLUMNS": 132, "LINES": "41"},
    }
    out = heroku_run(up, body, [b"hello\r"], end_of_input=False).decode()
    lines = out.replace("\r\n", "\n").split("\n")
    assert lines[:4] == ["hello", "got:hello", "41 132", "xterm-256color"]  # the pty echoes
    assert lines[4].startswith("/dev/pts/")


def test_heroku3_sends_its_secret_without_a_line_end(up: Up) -> None:
    out = heroku_run(up, {"command": "echo from heroku3"}, line_end=b"", end_of_input=False)
    assert out.replace(b"\r\n", b"\n") == b"from heroku3\n"


def test_a_run_over_before_its_client_came_still_gives_its_output(up: Up) -> None:
    body = {"command": "echo early " + MARKER, "force_no_tty": True}
    out = heroku_run(up, body, late=3)  # its agent was let in, ran it, and said how it ended
    assert out == "early\n\uffff heroku-command-exit-status: 0\n".encode()


def test_the_rendezvous_of_gun_up_is_tls_only(up: Up) -> None:
    made = api(up, "POST", "/apps/demo/dynos", {"command": "true", "attach": True}).json()
    where = urlsplit(made["attach_url"])
    with socket.create_connection((where.hostname, where.port), timeout=10) as plain:
        plain.sendall(where.path.lstrip("/").encode() + b"\r\n")
        try:
            got = plain.recv(100)  # a TLS alert, or nothing: the server hung up
        except ConnectionResetError:
            got = b""
    assert not got.startswith(b"rendezvous")
    api(up, "POST", f"/apps/demo/dynos/{made['name']}/actions/stop")


# -- pure: what heroku run asks, as a gun run ---------------------------------------------------


@pytest.mark.parametrize(
    ("body", "command", "tty", "term", "size"),
    [
        ({"command": "bash", "attach": True}, "bash", True, None, None),
        (
            {"command": "ls", "attach": True, "env": {"TERM": "xterm", "COLUMNS": 80, "LINES": 24}},
            "ls",
            True,
            "xterm",
            (80, 24),
        ),
        (
            {"command": "ls", "attach": True, "force_no_tty": True, "env": {"COLUMNS": "80"}},
            "ls",
            False,
            None,
            None,
        ),
        ({"command": "ls", "attach": False}, "ls", False, None, None),
        (
            {"command": "env", "attach": True, "env": {"B": "it's", "A": 1, "LINES": 24.0}},
            "export A=1; export B='it'\"'\"'s'; env",
            True,
            None,
            None,
        ),
        (
            {"command": "ls", "size": "Performance-L", "type": "run", "stack": "x"},
            "ls",
            False,
            None,
            None,
        ),
    ],
)
def test_a_heroku_one_off_is_a_raw_run(
    body: dict[str, Any], command: str, tty: bool, term: str | None, size: tuple[int, int] | None
) -> None:
    req = run_request(DynoCreate.model_validate(body))
    assert (req.command, req.tty, req.term, req.size) == (command, tty, term, size)
    assert req.framing is Framing.RAW and req.attached == body.get("attach", False)


@pytest.mark.parametrize(
    ("env", "why"),
    [
        ({"COLUMNS": "wide", "LINES": 24}, "COLUMNS='wide' is not a whole number"),
        ({"A B": "x"}, "'A B' is not a variable name"),
    ],
)
def test_bad_envs_are_refused_in_one_sentence(env: dict[str, Any], why: str) -> None:
    with pytest.raises(InvalidParams, match=why):
        run_request(DynoCreate.model_validate({"command": "ls", "env": env}))


def test_an_agent_started_without_ssl_dials_a_tls_rendezvous(tmp_path: Path) -> None:
    """gun up's meta is http://, so its agents keep OpenSSL out (agent/__main__.py); its
    rendezvous is TLS all the same: asyncio is given ssl when the agent first needs it."""
    code = f"""
import sys
import time
sys.modules["ssl"] = None
import asyncio
from gun.agent import tls
from gun import certs

ca = certs.new_ca()
server = certs.new_server(ca, ["127.0.0.1"])
open({str(tmp_path / "s.pem")!r}, "wb").write(server.cert)
open({str(tmp_path / "k.pem")!r}, "wb").write(server.key)

async def main():
    ctx = tls.context(ca.cert.decode(), system=False)  # as the agent's _dial: ssl loaded now
    import ssl
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    serving.load_cert_chain({str(tmp_path / "s.pem")!r}, {str(tmp_path / "k.pem")!r})
    async def greet(r, w):
        w.write(b"rendezvous\\r\\n")
        await w.drain()
        w.close()
    srv = await asyncio.start_server(greet, "127.0.0.1", 0, ssl=serving)
    port = srv.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="127.0.0.1")
    print((await r.read()).decode().strip())
    w.close()
    srv.close()

asyncio.run(main())
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "src")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "rendezvous\n", "")


@pytest.mark.parametrize(
    ("own", "metas", "address"),
    [
        (False, False, Address("rendezvous://127.0.0.1:5102")),
        (False, True, Address("rendezvous://127.0.0.1:5102", True, "META CA")),
        (True, True, Address("rendezvous://127.0.0.1:5102", True, "OWN CA")),
    ],
)
def test_the_rendezvous_has_its_own_certificate_else_metas_else_none(
    own: bool, metas: bool, address: Address, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("meta", "own"):
        (tmp_path / f"{name}.pem").write_text(f"-----BEGIN CERTIFICATE-----\n{name.upper()}\n")
    (tmp_path / "key.pem").write_text("a key")
    for key in ("GUN_TLS_CERT", "GUN_TLS_KEY", "GUN_TLS_CA", "GUN_PUBLIC_URL"):
        monkeypatch.delenv(key, raising=False)
    for key in ("GUN_RENDEZVOUS_TLS_CERT", "GUN_RENDEZVOUS_TLS_KEY", "GUN_RENDEZVOUS_TLS_CA"):
        monkeypatch.delenv(key, raising=False)
    if metas:
        monkeypatch.setenv("GUN_TLS_CERT", str(tmp_path / "meta.pem"))
        monkeypatch.setenv("GUN_TLS_KEY", str(tmp_path / "key.pem"))
        monkeypatch.setenv("GUN_TLS_CA", str(tmp_path / "meta.pem"))
    if own:
        monkeypatch.setenv("GUN_RENDEZVOUS_TLS_CERT", str(tmp_path / "own.pem"))
        monkeypatch.setenv("GUN_RENDEZVOUS_TLS_KEY", str(tmp_path / "key.pem"))
        monkeypatch.setenv("GUN_RENDEZVOUS_TLS_CA", str(tmp_path / "own.pem"))
    got = MetaSettings.resolve(home=str(tmp_path), rendezvous_listen="127.0.0.1:5102")
    assert got.rendezvous_address is not None
    said = got.rendezvous_address
    ca = None if said.ca is None else said.ca.split("\n")[1] + " CA"
    assert Address(said.url, said.tls, ca) == address


def test_a_rendezvous_ca_without_its_certificate_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.delenv("GUN_RENDEZVOUS_TLS_CERT", raising=False)
    monkeypatch.delenv("GUN_RENDEZVOUS_TLS_KEY", raising=False)
    monkeypatch.setenv("GUN_RENDEZVOUS_TLS_CA", str(tmp_path / "ca.pem"))
    with pytest.raises(UsageError, match="GUN_RENDEZVOUS_TLS_CA is set without"):
        MetaSettings.resolve(home=str(tmp_path))
