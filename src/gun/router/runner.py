"""The router: HAProxy, kept in step with meta's routing table, and its log lines made Heroku's
router lines and shipped to each app's drains.

Its loops (gun.loops): `routes` long-polls `GET /v1/router/routes` and applies each new table;
`sweep` deletes the servers of processes gone once no request uses them; `watch` starts
HAProxy again if it died. HAProxy runs master-worker in the foreground, in its own process
group, with its admin socket in the router's directory.

How a new table is applied: when only the web processes changed (a scale, a deploy, a crash,
an instance lost) through HAProxy's runtime API, which changes servers without touching any
connection: a new process is added (health-checked from then on), one whose port changed is
pointed at its new port (the requests under way on the old one finish there), one gone is put
in maintenance at once (no new request goes to it; those under way finish) and deleted once
idle. When an app or a hostname came or went, by a seamless reload: the new config is checked
first (`haproxy -c`), then the master starts a new worker that takes the listening sockets over
(`expose-fd listeners`) while the old one finishes the requests it has (bench/router.py and
tests/test_router_e2e.py measure what either loses: nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from gun import atomic
from gun.agent.logship import LogShipper
from gun.agent.metaclient import MetaClient, Refused, Unreachable
from gun.errors import GunError, ProtocolError, Unavailable
from gun.loops import Loops
from gun.router import haproxy, lines
from gun.router.haproxy import Settings
from gun.router.table import Table, read_table

log = logging.getLogger("gun.router")
LONG_POLL = 25.0
SWEEP_EVERY = 1.0
STOP_GRACE = 10.0
HAPROXY_USER = "haproxy"


def binary() -> str:
    """The haproxy program (GUN_HAPROXY, else haproxy on PATH or in /usr/sbin)."""
    found = os.environ.get("GUN_HAPROXY") or shutil.which("haproxy")
    if not found and Path("/usr/sbin/haproxy").exists():
        found = "/usr/sbin/haproxy"
    if not found:
        raise Unavailable(
            "the router needs HAProxy and there is none: install it (Debian: apt-get install"
            " haproxy) or give its path in GUN_HAPROXY"
        )
    return found


class Haproxy:
    """One HAProxy master (and its workers), started and stopped as a process group."""

    def __init__(self, settings: Settings, program: str) -> None:
        self.settings = settings
        self.program = program
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def check(self) -> None:
        """Refuse a config HAProxy would not load (one sentence with its complaint)."""
        done = subprocess.run(
            [self.program, "-c", "-f", str(self.settings.config)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            text = (done.stderr or "") + (done.stdout or "")
            alerts = [ln for ln in text.splitlines() if "[ALERT]" in ln] or text.splitlines()
            said = " ".join(" ".join(alerts).split())[:500]
            raise GunError(f"HAProxy refuses the rendered config: {said}")

    def start(self) -> None:
        out = open(self.settings.home / "haproxy.log", "ab")  # noqa: SIM115 (the child keeps it)
        try:
            self.proc = subprocess.Popen(
                [self.program, "-W", "-db", "-f", str(self.settings.config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        finally:
            out.close()
        self.starts += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def reload(self) -> None:
        """Seamless: the master starts a new worker, which takes the listening sockets over."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGUSR2)

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        with contextlib.suppress(ProcessLookupError):  # a worker left behind
            os.killpg(self.proc.pid, signal.SIGKILL)


async def admin(socket: Path, command: str, timeout: float = 5.0) -> str:
    """One command on HAProxy's admin socket; its answer."""
    reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(socket)), timeout)
    try:
        writer.write(command.encode() + b"\n")
        await writer.drain()
        return (await asyncio.wait_for(reader.read(), timeout)).decode(errors="replace")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def refused(command: str, answer: str) -> bool:
    """Whether HAProxy refused a runtime command (its answers to success are known)."""
    text = answer.strip()
    if not text:
        return False
    ok = ("New server registered.", "Server deleted.", "IP changed", "no need to change")
    return not any(o in text for o in ok)


class Syslog(asyncio.DatagramProtocol):
    """HAProxy's log lines, each a datagram: requests become router lines for their app."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        got = lines.read(data)
        if got is None:
            text = data.decode("utf-8", "replace").strip()
            if text:
                log.info("haproxy: %s", text.split(" - - ", 1)[-1][:500])
            return
        self.router.ship(*got)


def worker_user() -> str | None:
    """Whom HAProxy's workers (which face the internet) run as: Debian's `haproxy` user when
    the router runs as root (the master stays root: it reloads), else nobody else."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(HAPROXY_USER)
        grp.getgrnam(HAPROXY_USER)
    except KeyError:
        return None
    return HAPROXY_USER


def self_signed_pem() -> str:
    """A self-signed certificate for localhost (CN gun-router, P-256, 825 days) and its key, as
    one PEM (what HAProxy loads), made by the openssl command: Debian's ca-certificates depends
    on openssl, so every host has it, where Python's cryptography is only on meta's."""
    program = shutil.which("openssl")
    if program is None:
        raise Unavailable(
            "HTTPS on this router needs the openssl command for its default certificate, and"
            " there is none: install it (Debian: apt-get install openssl), or unset"
            " ROUTER_TLS_PORT"
        )
    with tempfile.TemporaryDirectory(prefix="gun-router-cert-") as made:  # mode 700: the key
        key, cert = Path(made, "key.pem"), Path(made, "cert.pem")
        command = [
            program, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "825", "-subj", "/CN=gun-router",
            "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert),
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
            )
            why = done.stderr.strip().splitlines()[-1:] if done.returncode else []
            pem = "" if why else cert.read_text() + key.read_text()
        except (OSError, subprocess.TimeoutExpired) as e:
            why, pem = [str(e)], ""
        if not pem or "PRIVATE KEY-----" not in pem:
            raise Unavailable(
                f"openssl could not make this router's default certificate"
                f" ({'; '.join(why) or 'it wrote none'}): install Debian's openssl package"
                " (openssl 1.1.1 or newer), or unset ROUTER_TLS_PORT"
            )
        return pem


class Router:
    def __init__(
        self,
        settings: Settings,
        meta: str,
        token: str,
        *,
        program: str | None = None,
        ca: str | None = None,
    ) -> None:
        if settings.user is None:
            settings = replace(settings, user=worker_user())
        self.settings = settings
        self.meta = meta.rstrip("/")
        self.ca = ca
        self.client = MetaClient(self.meta, token, ca=ca)
        self.haproxy = Haproxy(settings, program or binary())
        self.applied: Table | None = None
        self.lingering: set[tuple[str, str]] = set()
        self.shippers: dict[str, LogShipper] = {}
        self.loops = Loops(log)
        self.stopping = asyncio.Event()
        self.reloads = 0
        self.lines = 0
        self._default: tuple[list[str], str] | None = None  # default hostnames, their PEM

    # -- router lines ------------------------------------------------------------------------

    def ship(self, app: str, line: str) -> None:
        shipper = self.shippers.get(app)
        if shipper is not None:
            shipper.add("heroku", "router", line)
            self.lines += 1

    async def _shippers_for(self, table: Table) -> None:
        for route in table.routes:
            shipper = self.shippers.get(route.app)
            if shipper is None:
                self.shippers[route.app] = LogShipper(route.app, route.drains, ca=self.ca)
            else:
                shipper.set_destinations(list(route.drains))
        for app in set(self.shippers) - {r.app for r in table.routes}:
            await asyncio.to_thread(self.shippers.pop(app).close, 2.0)

    # -- applying tables ---------------------------------------------------------------------

    def _write(self, table: Table) -> None:
        written = haproxy.files(table, self.settings, self._default_pem(table))
        for path, (text, mode) in written.items():
            atomic.write(path, text, mode)
        if self.settings.tls.is_dir():  # certificates no longer served
            for old in self.settings.tls.glob("*.pem"):
                if old not in written:
                    old.unlink(missing_ok=True)

    def _default_pem(self, table: Table) -> str:
        """The certificate for names no app's certificate covers: with a local CA, one it
        signs for every app's default hostname (made again when apps come or go); else a
        self-signed one (browsers warn), made by openssl: Python's cryptography is not on a
        fleet host's agent."""
        if not self.settings.tls_listen:
            return ""
        local = self.settings.local_ca
        names = sorted(r.hostnames[0] for r in table.routes) if local else []
        if self._default is None or self._default[0] != names:
            if local is None:
                self._default = (names, self_signed_pem())
                return self._default[1]
            try:
                from gun import certs  # cryptography: not on a fleet host's agent by default
            except ImportError:
                raise Unavailable(
                    "HTTPS on this router with GUN_ROUTER_LOCAL_CA needs Python's cryptography"
                    " package on its host (to sign its default certificate): install it, or"
                    " leave GUN_ROUTER_LOCAL_CA unset for a self-signed one"
                ) from None
            ca = certs.Pair((local / "ca.pem").read_bytes(), (local / "ca-key.pem").read_bytes())
            pair = certs.new_server(ca, names or ["localhost"])
            self._default = (names, pair.cert.decode() + pair.key.decode())
        return self._default[1]

    async def _reload(self, table: Table) -> None:
        await asyncio.to_thread(self._write, table)
        await asyncio.to_thread(self.haproxy.check)
        before = await self._worker()
        self.haproxy.reload()
        self.reloads += 1
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until the new worker answers on the socket
            now = await self._worker()
            if now is not None and now != before:
                return
            await asyncio.sleep(0.02)
        raise Unavailable("HAProxy did not reload within 10 s (see haproxy.log)")

    async def _worker(self) -> str | None:
        """The pid of the worker answering on the admin socket, if one does."""
        try:
            info = await admin(self.settings.socket, "show info", 1.0)
        except (OSError, TimeoutError):
            return None
        for line in info.splitlines():
            if line.startswith("Pid:"):
                return line.split(":", 1)[1].strip()
        return None

    async def apply(self, table: Table) -> None:
        """Bring HAProxy to `table`: runtime commands when they can, else a reload."""
        old = self.applied
        commands = None
        if old is not None and self.haproxy.alive():
            commands = haproxy.plan(old, table, self.settings, self.lingering)
        if old is None or commands is None:
            await self._reload_or_start(table)
            self.lingering = set()
        else:
            for command in commands:
                answer = await admin(self.settings.socket, command)
                if refused(command, answer):
                    log.warning("haproxy refused %r (%s): reloading", command, answer.strip())
                    await self._reload(table)
                    self.lingering = set()
                    break
            else:
                self.lingering |= set(haproxy.gone(old, table))
                present = {
                    (haproxy.backend_name(r.app), b.name) for r in table.routes for b in r.backends
                }
                self.lingering -= present
                await asyncio.to_thread(self._write, table)  # for the next start or reload
        self.applied = table
        await self._shippers_for(table)

    async def _reload_or_start(self, table: Table) -> None:
        if self.haproxy.alive():
            await self._reload(table)
            return
        await asyncio.to_thread(self._write, table)
        await asyncio.to_thread(self.haproxy.check)
        self.haproxy.start()
        deadline = time.monotonic() + 10
        while await self._worker() is None:
            if not self.haproxy.alive() or time.monotonic() > deadline:
                raise Unavailable("HAProxy did not start (see haproxy.log in the router's home)")
            await asyncio.sleep(0.02)

    # -- loops -------------------------------------------------------------------------------

    async def routes(self) -> None:
        after = self.applied.digest if self.applied is not None else ""
        try:
            answer = await self.client.call(
                "GET",
                "/v1/router/routes",
                params={"after": after, "wait": LONG_POLL},
                timeout=LONG_POLL + 10,
            )
        except Unreachable as e:
            raise Unavailable(f"meta at {self.meta} did not answer ({e})") from None
        except Refused as e:
            raise Unavailable(f"meta refused the routing table: {e.message}") from None
        try:
            table = read_table(answer)
        except ProtocolError as e:
            raise GunError(f"meta's routing table does not read: {e}") from None
        if self.applied is None or table.digest != self.applied.digest or not self.haproxy.alive():
            await self.apply(table)

    async def sweep(self) -> None:
        """Delete the servers of processes gone, each once nothing uses it."""
        await asyncio.sleep(SWEEP_EVERY)
        for be, name in sorted(self.lingering):
            with contextlib.suppress(OSError, TimeoutError):
                answer = await admin(self.settings.socket, f"del server {be}/{name}")
                if "Server deleted" in answer or "No such" in answer:
                    self.lingering.discard((be, name))

    async def watch(self) -> None:
        """Start HAProxy again, with the table applied, if it died."""
        await asyncio.sleep(0.5)
        if self.applied is not None and not self.haproxy.alive():
            log.error(
                "haproxy exited (%s): starting it again",
                self.haproxy.proc and self.haproxy.proc.returncode,
            )
            await self._reload_or_start(self.applied)
            self.lingering = set()

    async def run(self) -> None:
        """The router as a program of its own (`gun server router`): until SIGTERM."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        await self.serve()

    async def serve(self) -> None:
        """Route until `stopping` is set (an agent runs it so), then stop HAProxy."""
        loop = asyncio.get_running_loop()
        self.settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        host, _, port = self.settings.syslog.rpartition(":")
        transport, _ = await loop.create_datagram_endpoint(
            lambda: Syslog(self), local_addr=(host, int(port))
        )
        bound = transport.get_extra_info("sockname")[1]  # port 0: the one the system chose
        self.settings = replace(self.settings, syslog=f"{host}:{bound}")
        self.haproxy.settings = self.settings
        try:
            await self._reload_or_start(Table(()))
            self.applied = Table(())
            self.loops.start("routes", self.routes)
            self.loops.start("sweep", self.sweep)
            self.loops.start("watch", self.watch)
            await self.stopping.wait()
            self.client.abort()
            await self.loops.stop()
        finally:
            transport.close()
            await asyncio.to_thread(self.haproxy.stop)
            self.settings.socket.unlink(missing_ok=True)  # HAProxy leaves it behind
            for shipper in self.shippers.values():
                await asyncio.to_thread(shipper.close, 2.0)


def main(settings: Settings, meta: str, token: str, ca: str | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(Router(settings, meta, token, ca=ca).run())
