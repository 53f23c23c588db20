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

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from gun.router.table import Backend, Route, Table

NO_APP = "no-app"
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

    @property
    def socket(self) -> Path:
        return self.home / "admin.sock"

    @property
    def config(self) -> Path:
        return self.home / "haproxy.cfg"

    @property
    def hosts_map(self) -> Path:
        return self.home / "hosts.map"


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
        "  hard-stop-after 120s",
        "",
        "defaults",
        "  mode http",
        "  log global",
        "  option dontlognull",
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
        "  use_backend %[var(txn.backend)]",
        "",
        f"backend {NO_APP}",
        f"  http-request return status 404 content-type text/html file {s.home / 'no-app.html'}",
    ]
    for r in table.routes:
        out += ["", f"backend {backend_name(r.app)}", "  balance roundrobin"]
        out += [f"  {server_line(b, s)}" for b in r.backends]
    return "\n".join(out) + "\n"


def files(table: Table, s: Settings) -> dict[Path, str]:
    """Every file HAProxy reads for `table`, by path."""
    pages = {s.home / (name + ".http"): error_page(text) for name, text in ERROR_PAGES.values()}
    return {
        **pages,
        s.home / "no-app.html": NO_APP_PAGE,
        s.hosts_map: hosts_map(table),
        s.config: render(table, s),
    }


def structure(table: Table) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """What only a reload changes: the apps and their hostnames."""
    return tuple((r.app, r.hostnames) for r in table.routes)


def plan(
    old: Table, new: Table, s: Settings, lingering: Collection[tuple[str, str]] = ()
) -> list[str] | None:
    """Runtime API commands taking HAProxy's servers from `old` to `new`; None if the apps or
    hostnames differ (a reload). A process gone is put in maintenance (it gets no new request;
    those under way finish) and deleted once nothing uses it (gun.router.runner); until then it
    is `lingering` (backend, server), and a process of its name that comes back takes it over."""
    if structure(old) != structure(new):
        return None
    commands: list[str] = []
    for was, now in zip(old.routes, new.routes, strict=True):
        commands += _servers(was, now, s, lingering)
    return commands


def _servers(
    was: Route, now: Route, s: Settings, lingering: Collection[tuple[str, str]]
) -> list[str]:
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
            out += [
                f"add server {be}/{name} {address(b)} {server_options(s)}",
                f"enable health {be}/{name}",
                f"enable server {be}/{name}",
            ]
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
