"""HAProxy's configuration, rendered from the routing table (pure), and the runtime commands
that move it from one table to the next without a reload.

One frontend takes every request; a map file sends each hostname (the Host header, lowercased,
its port dropped; then with its first label made `*` for wildcard domains) to the app's
backend `app-NAME`, whose servers are the app's web processes, named as they are (`web.1`: the
`dyno` of its router lines). A hostname no app has goes to `no-app` (404).

Heroku's request semantics (REFERENCE.md §2, §4): X-Forwarded-For, -Proto and -Port, a
Via, X-Request-Id (the client's if it sent a valid one: 20 to 200 of `A-Za-z0-9+=/-`, else a
new UUID); a response the app takes longer than `timeout` (30 s) to start becomes a 503 (H12),
no web process up a 503 (H14), a connection the app closed without a response a 503 (H13).
A request the app never received (its process gone, a connection refused) is tried again on
another process (`retries`, `redispatch`): that is what makes a process that crashes, or is
stopped right after the router stops sending it requests, cost no request.

`plan(old, new)` gives the runtime API commands that take HAProxy from the servers of one
table to those of the next, or None when only a reload can (an app or a hostname came or
went): gun.router.runner decides.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from gun.router.table import Backend, Certificate, Route, Table

NO_APP = "no-app"
SOCKET_PATH_MAX = 100
REQUEST_ID = r"^[-A-Za-z0-9+=/]{20,200}$"
# One log line per request (gun.router.lines reads it back): strings quoted and escaped (+E:
# backslash before `"`, `\` and `]`), the times in ms (-1: never happened).
LOG_FORMAT = (
    "%b %s %HM %{+Q,+E}HU %{+Q,+E}[var(txn.host)] %{+Q,+E}[var(txn.rid)] %{+Q,+E}ci "
    "%Tc %Tr %Td %ST %B %ts %[ssl_fc]"
)


@dataclass(frozen=True)
class Settings:
    """How the router listens and behaves (GUN_ROUTER_* settings)."""

    listen: str  # HOST:PORT for HTTP
    home: Path  # its files: haproxy.cfg, hosts.map, admin.sock, error pages
    syslog: str  # HOST:PORT (UDP) where HAProxy sends its log lines
    timeout: float = 30.0  # seconds for the app to start its response (H12)
    connect_timeout: float = 5.0
    idle_timeout: float = 90.0  # a client's keep-alive connection, idle (Heroku: 90 s)
    check_interval: float = 1.0  # seconds between health checks of a web process
    max_body: int = 100 * 1024 * 1024  # bytes of Content-Length accepted (else 413)
    maxconn: int = 4096
    tls_listen: str | None = None  # HOST:PORT for HTTPS (certificates by SNI)
    local_ca: Path | None = None  # a CA (ca.pem, ca-key.pem) signing apps' default hostnames
    user: str | None = None  # started as root: the workers run as this user (Debian's haproxy)

    @property
    def socket(self) -> Path:
        """HAProxy's admin socket: in the router's directory, unless its path would be too
        long for a Unix socket (108 bytes), then in the temp dir, named after that directory."""
        path = self.home / "admin.sock"
        if len(str(path).encode()) <= SOCKET_PATH_MAX:
            return path
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"gun-router-{digest}.sock"

    @property
    def config(self) -> Path:
        return self.home / "haproxy.cfg"

    @property
    def hosts_map(self) -> Path:
        return self.home / "hosts.map"

    @property
    def https_map(self) -> Path:
        """The backends of the apps whose plain HTTP requests are redirected to HTTPS."""
        return self.home / "https.map"

    @property
    def tls(self) -> Path:
        return self.home / "tls"

    @property
    def tls_port(self) -> int | None:
        return int(self.tls_listen.rpartition(":")[2]) if self.tls_listen else None


def backend_name(app: str) -> str:
    return f"app-{app}"


def server_options(s: Settings) -> str:
    """How each web process is checked: a TCP connect every check_interval; down after 2
    failures, up after 1 success."""
    ms = int(s.check_interval * 1000)
    return f"check inter {ms} fall 2 rise 1"


def server_line(b: Backend, s: Settings) -> str:
    return f"server {b.name} {address(b)} {server_options(s)}"


def address(b: Backend) -> str:
    host = f"[{b.host}]" if ":" in b.host else b.host
    return f"{host}:{b.port}"


ERROR_PAGES = {
    # HAProxy's own status -> what the client gets (Heroku answers every router error 503)
    503: ("no-web", "No web processes are running for this app."),
    504: ("timeout", "The app did not answer in time."),
    502: ("closed", "The app closed the connection without a response."),
}


def error_page(title: str) -> str:
    body = f"<!doctype html><title>Application error</title><p>{title}</p>\n"
    return (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        "Cache-Control: no-cache, no-store\r\n"
        f"Content-Length: {len(body.encode())}\r\n"
        "Connection: close\r\n"
        "\r\n" + body
    )


NO_APP_PAGE = "<!doctype html><title>No such app</title><p>There is no app here.</p>\n"


def hosts_map(table: Table) -> str:
    """hostname -> backend, one per line (HAProxy map file)."""
    lines = [f"{h} {backend_name(r.app)}" for r in table.routes for h in r.hostnames]
    return "".join(line + "\n" for line in sorted(lines))


def ms(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms"


def cert_path(c: Certificate, s: Settings) -> Path:
    return s.tls / f"{c.fingerprint}.pem"


def crt_list(table: Table, s: Settings) -> str:
    """The certificates HAProxy serves, by SNI: the default one first (for a name no
    certificate covers), then each app's with the hostnames it covers."""
    lines = [str(s.tls / "default.pem")]
    lines += [f"{cert_path(c, s)} {' '.join(c.hostnames)}" for c in table.certs]
    return "".join(line + "\n" for line in lines)


def https_map(table: Table) -> str:
    return "".join(f"{backend_name(r.app)} 1\n" for r in table.routes if r.https_only)


def render(table: Table, s: Settings) -> str:
    """haproxy.cfg for `table`."""
    host = f"var(txn.host),map_str({s.hosts_map},{NO_APP})"
    wildcard = f"var(txn.host),regsub(^[^.]+\\.,*.),map_str({s.hosts_map},{NO_APP})"
    out = [
        "# rendered by gun (gun.router.haproxy) from meta's routing table: do not edit",
        "global",
        f"  stats socket {s.socket} mode 600 level admin expose-fd listeners",
        f"  log {s.syslog} len 8192 format rfc5424 local0 info",
        f"  maxconn {s.maxconn}",
        *([f"  user {s.user}", f"  group {s.user}"] if s.user else []),
        "  hard-stop-after 120s",
        "",
        "defaults",
        "  mode http",
        "  log global",
        "  option dontlognull",
        # a reload's old worker keeps its idle keep-alive connections until their next request,
        # answered with Connection: close (closing them at once raced a client's request: one
        # failed in ~1,400 through a scale up, CI)
        "  option idle-close-on-response",
        f"  timeout connect {ms(s.connect_timeout)}",
        f"  timeout client {ms(s.idle_timeout)}",
        f"  timeout http-keep-alive {ms(s.idle_timeout)}",
        "  timeout http-request 30s",
        f"  timeout server {ms(s.timeout)}",
        "  timeout queue 10s",
        "  retries 3",
        "  option redispatch 1",
        "  retry-on conn-failure",
        # a web process at a host name that does not resolve (an ssh host added by name)
        # starts in maintenance: it must not make HAProxy refuse every app's config
        "  default-server init-addr last,libc,none",
    ]
    for status, (name, _) in sorted(ERROR_PAGES.items()):
        out.append(f"  errorfile {status} {s.home / (name + '.http')}")
    out += [
        "",
        "frontend web",
        f"  bind {s.listen}",
        *(
            [f"  bind {s.tls_listen} ssl crt-list {s.tls / 'certs.list'} alpn http/1.1"]
            if s.tls_listen
            else []
        ),
        f'  log-format "{LOG_FORMAT}"',
        "  option forwardfor",
        "  http-request set-var(txn.host) req.hdr(host),lower,field(1,:)",
        f"  http-request deny deny_status 413 if {{ req.hdr_val(content-length) gt {s.max_body} }}",
        "  http-request set-header X-Forwarded-Proto https if { ssl_fc }",
        "  http-request set-header X-Forwarded-Proto http unless { ssl_fc }",
        "  http-request set-header X-Forwarded-Port %[dst_port]",
        # the whole header (req.hdr would split it on commas), and only one of it
        "  http-request set-header X-Request-Id %[uuid] unless"
        " { req.fhdr_cnt(x-request-id) eq 1 }"
        f" {{ req.fhdr(x-request-id) -m reg {REQUEST_ID} }}",
        "  http-request set-var(txn.rid) req.fhdr(x-request-id)",
        '  http-request add-header Via "1.1 gun"',
        f"  http-request set-var(txn.backend) {host}",
        f"  http-request set-var(txn.backend) {wildcard} if {{ var(txn.backend) -m str {NO_APP} }}",
        *(redirect(s) if s.tls_listen else []),
        "  use_backend %[var(txn.backend)]",
        "",
        f"backend {NO_APP}",
        f"  http-request return status 404 content-type text/html file {s.home / 'no-app.html'}",
    ]
    for r in table.routes:
        out += ["", f"backend {backend_name(r.app)}", "  balance roundrobin"]
        out += [f"  {server_line(b, s)}" for b in r.backends]
    return "\n".join(out) + "\n"


def redirect(s: Settings) -> list[str]:
    """Plain HTTP to HTTPS, for the apps in the https map (308: the method and body stay)."""
    port = "" if s.tls_port == 443 else f":{s.tls_port}"
    return [
        f"  http-request redirect code 308 location https://%[var(txn.host)]{port}%[capture.req.uri]"
        f" if !{{ ssl_fc }} {{ var(txn.backend),map_str({s.https_map}) -m found }}"
    ]


def files(table: Table, s: Settings, default_pem: str = "") -> dict[Path, tuple[str, int]]:
    """Every file HAProxy reads for `table`, by path, with its mode (keys: 0600);
    `default_pem` is the certificate for names no other covers (with TLS)."""
    pages = {s.home / (name + ".http"): error_page(text) for name, text in ERROR_PAGES.values()}
    out = {p: (text, 0o644) for p, text in pages.items()}
    out[s.home / "no-app.html"] = (NO_APP_PAGE, 0o644)
    out[s.hosts_map] = (hosts_map(table), 0o644)
    out[s.https_map] = (https_map(table), 0o644)
    if s.tls_listen:
        out[s.tls / "default.pem"] = (default_pem, 0o600)
        for c in table.certs:
            out[cert_path(c, s)] = (c.pem, 0o600)
        out[s.tls / "certs.list"] = (crt_list(table, s), 0o644)
    out[s.config] = (render(table, s), 0o644)
    return out


def structure(table: Table) -> tuple[object, ...]:
    """What only a reload changes: the apps, their hostnames and redirects, the certificates."""
    apps = tuple((r.app, r.hostnames, r.https_only) for r in table.routes)
    return apps, tuple((c.fingerprint, c.hostnames) for c in table.certs)


def plan(
    old: Table, new: Table, s: Settings, lingering: Collection[tuple[str, str]] = ()
) -> list[str] | None:
    """Runtime API commands taking HAProxy's servers from `old` to `new`; None if only a reload
    can: the apps, hostnames or certificates differ, or a process of a new name joins. A
    process gone is put in maintenance (it gets no new request; those under way finish) and
    deleted once nothing uses it (gun.router.runner); until then it is `lingering` (backend,
    server), and a process of its name that comes back takes it over. A process whose port
    changed (preboot) is pointed at it.

    Why a new process is not added with `add server`: HAProxy 2.6 keeps no idle connections to
    a server added so (measured, bench/router.py: a new connection per request, 16 % of the
    direct requests/s, the web process spending 4.7 times the CPU per request), while one from
    the config file reuses them (91 %). A reload is seamless (the new worker takes the
    listening sockets; the old one finishes its requests): tests/test_router_e2e.py counts no
    failed request through scales up."""
    if structure(old) != structure(new):
        return None
    commands: list[str] = []
    for was, now in zip(old.routes, new.routes, strict=True):
        got = _servers(was, now, lingering)
        if got is None:
            return None
        commands += got
    return commands


def _servers(was: Route, now: Route, lingering: Collection[tuple[str, str]]) -> list[str] | None:
    be = backend_name(now.app)
    before = {b.name: b for b in was.backends}
    after = {b.name: b for b in now.backends}
    out: list[str] = []
    for name in sorted(before.keys() - after.keys()):
        out.append(f"set server {be}/{name} state maint")
    for name, b in sorted(after.items()):
        old = before.get(name)
        if old is None and (be, name) in lingering:
            out += [
                f"set server {be}/{name} addr {b.host} port {b.port}",
                f"set server {be}/{name} state ready",
            ]
        elif old is None:
            return None  # a reload: see plan
        elif (old.host, old.port) != (b.host, b.port):
            out.append(f"set server {be}/{name} addr {b.host} port {b.port}")
    return out


def gone(old: Table, new: Table) -> Sequence[tuple[str, str]]:
    """(backend, server) of the processes `new` no longer has: to delete once idle."""
    out = []
    for was, now in zip(old.routes, new.routes, strict=True):
        names = {b.name for b in now.backends}
        out += [(backend_name(was.app), b.name) for b in was.backends if b.name not in names]
    return out
