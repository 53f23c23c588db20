"""`gun up`: the whole platform in the foreground on the embedded defaults.

meta (SQLite under DIR), the drain and the router (HAProxy, when installed: every app at
http://APP.localhost:5180/) run as children, each in its own process group; every app created
gets N local instances in layer `default`, each an agent in its own process group. Processes
outlive their control plane: when meta, the drain or the router dies, gun up says why and starts
it again with a backoff (gun.respawn), and touches nothing else. Only Ctrl-C or SIGTERM of gun
up stops meta, the router, then every agent (each stops its processes within their grace
period), then the drain, and leaves nothing running.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from gun import atomic, certs, isolation
from gun.crypto import new_token
from gun.errors import Unavailable
from gun.providers.local import LocalProvider
from gun.respawn import Respawned


def admin_token(home: Path) -> str:
    """The admin token `gun up` uses for its meta: made once, kept in DIR/admin.token (0600)."""
    return token_file(home / "admin.token")


def drain_token(home: Path) -> str:
    """The drain's token (it may only look up ingest tokens): DIR/drain.token (0600), made
    once; meta keeps a drain token of this value (GUN_DRAIN_TOKEN)."""
    return token_file(home / "drain.token")


def token_file(path: Path) -> str:
    """A token kept in a file of its own (0600), made on first use."""
    home = path.parent
    if path.exists():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    token = new_token()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


# meta's and the agents' settings that `gun up` passes on (not the ones it decides itself:
# database, listen address, home, and not the CLI's)
PASSED = (
    "GUN_INSTANCE_TIMEOUT",
    "GUN_SECRET_KEY",
    "GUN_SLUG_MAX_BYTES",
    "GUN_SLUG_STORE",
    "GUN_S3_ENDPOINT_URL",
    "GUN_BUILD_CONCURRENCY",
    "GUN_BUILD_TIMEOUT",
    "GUN_RELEASE_TIMEOUT",
    "GUN_PREBOOT_DRAIN",
    "GUN_MAX_UNAVAILABLE",
    "GUN_KEEP_RELEASES",
    "GUN_MAX_PROCESSES",
    "GUN_RUNTIME_METRICS_INTERVAL",
    "GUN_SLUG_MAX_UNPACKED_BYTES",
    "GUN_SLUG_MAX_MEMBERS",
    "GUN_APP_LOG_MAX_MB",
    "GUN_APP_LOG_KEEP",
    "GUN_HEROKU_SOURCE_DIR",
    "GUN_HEROKU_SOURCE_HOSTS",
)


# the drain's settings `gun up` passes on
DRAIN_PASSED = (
    "GUN_LOG_RETENTION_DAYS",
    "GUN_LOG_ARCHIVE",
    "GUN_LOG_ARCHIVE_S3",
    "GUN_LOG_ARCHIVE_MAX_MB",
    "GUN_WHISPER_DIR",
    "GUN_STATSD",
    "GUN_METRICS_RESOLUTION",
    "GUN_METRICS_GRACE",
    "GUN_DRAIN_WORKERS",
    "GUN_DRAIN_COMPILED",
    "GUN_COMPILED_DIR",
    "GUN_METRICS_PREFIX",
)
# the router's settings `gun up` passes on
ROUTER_PASSED = (
    "GUN_ROUTER_TIMEOUT",
    "GUN_ROUTER_CHECK_INTERVAL",
    "GUN_ROUTER_MAX_BODY",
    "GUN_HAPROXY",
)
SERVER = [sys.executable, "-m", "gun.cli", "server"]


def _drain_port(port: int) -> int:
    """meta's port + 1 if it is free, else one the system picks (said at start)."""
    for candidate in (port + 1, 0):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise Unavailable("no free port on 127.0.0.1 for the drain")


ROUTER_PORT = 5180
RENDEZVOUS_PORT = 5102  # where `gun run` attaches to one-off processes
TLS_OF_META = ("GUN_RENDEZVOUS_TLS_CERT", "GUN_RENDEZVOUS_TLS_KEY", "GUN_RENDEZVOUS_TLS_CA")


def local_ca(home: Path) -> Path:
    """gun up's own CA (DIR/router-ca: ca.pem, ca-key.pem 0600), made once: the router has it
    sign a certificate for every app's APP.localhost; trust ca.pem to browse them over HTTPS."""
    where = home / "router-ca"
    if not (where / "ca-key.pem").exists():
        ca = certs.new_ca("gun up local CA")
        atomic.write(where / "ca-key.pem", ca.key, 0o600)
        atomic.write(where / "ca.pem", ca.cert)
    return where


def local_tls(home: Path) -> Path:
    """DIR/tls: ca.pem, gun up's CA (local_ca's: one CA to trust for all gun up serves, e.g.
    NODE_EXTRA_CA_CERTS for the heroku CLI), and rendezvous.pem, rendezvous-key.pem (0600), a
    certificate of it for 127.0.0.1 and localhost, made at each start (so it never expires)."""
    ca_dir, where = local_ca(home), home / "tls"
    ca = certs.Pair((ca_dir / "ca.pem").read_bytes(), (ca_dir / "ca-key.pem").read_bytes())
    server = certs.new_server(ca, ["127.0.0.1", "localhost"])
    atomic.write(where / "ca.pem", ca.cert)
    atomic.write(where / "rendezvous-key.pem", server.key, 0o600)
    atomic.write(where / "rendezvous.pem", server.cert)
    return where


def _router(
    home: Path,
    meta: str,
    token: str,
    env: dict[str, str],
    ports: tuple[int, int],
    say: Callable[[str], None],
) -> Respawned | None:
    """The router, on 127.0.0.1:port (HTTP) and :tls_port (HTTPS, certificates of gun up's
    CA) with meta's admin token; None (said) without HAProxy."""
    from gun.router.runner import binary

    try:
        binary()
    except Unavailable as e:
        say(f"no router: {e.message}; apps answer on their processes' own ports")
        return None
    listen = f"127.0.0.1:{ports[0]}"
    router_env = {k: v for k, v in env.items() if k not in ("GUN_ADMIN_TOKEN", "GUN_DRAIN_TOKEN")}
    router_env.update(
        GUN_ROUTER_TOKEN=token,
        GUN_META_URL=meta,
        GUN_ROUTER_TLS_LISTEN=f"127.0.0.1:{ports[1]}",
        GUN_ROUTER_LOCAL_CA=str(local_ca(home)),
    )
    for key in ROUTER_PASSED:
        if key in os.environ:
            router_env[key] = os.environ[key]
    return Respawned(
        "the router",
        [*SERVER, "router", "--listen", listen, "--meta", meta, "--home", str(home)],
        router_env,
        home / "log" / "router.log",
        f"http://{listen}",
        say,
    )


def run(
    home: Path,
    port: int,
    instances: int,
    say: Callable[[str], None] = print,
    ready: Callable[[str, str, str | None], None] | None = None,
    router_port: int = ROUTER_PORT,
    router_tls_port: int = ROUTER_PORT + 1,
    rendezvous_port: int = RENDEZVOUS_PORT,
    https: bool = False,
) -> None:
    """Run the platform until Ctrl-C or SIGTERM. `ready(url, token, ca)` is called once meta
    and the drain answer (the CLI writes its credentials then; `ca`: the PEM of the CA meta's
    certificate is signed by, with `https`: meta serves HTTPS with a certificate of gun up's
    CA, DIR/tls/ca.pem, and every part of the platform pins it). The router serves every app at
    http://APP.localhost:ROUTER_PORT/ when HAProxy is installed (else gun up says so and apps
    answer on their processes' own ports only)."""
    os.umask(0o077)  # what the platform makes is its own unless it says otherwise (gun.isolation)
    home = isolation.make_dir(home.expanduser().resolve(), isolation.SEARCHABLE)
    isolation.make_dir(home / "log", isolation.PRIVATE_DIR)
    token = admin_token(home)
    url = f"{'https' if https else 'http'}://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUN_")}
    drain_credential = drain_token(home)
    env.update(
        GUN_HOME=str(home),
        GUN_ADMIN_TOKEN=token,
        GUN_DRAIN_TOKEN=drain_credential,
        GUN_AUTO_INSTANCES=str(instances),
        GUN_ROUTER_DOMAIN="localhost",  # RFC 6761: APP.localhost reaches loopback
    )
    for key in PASSED:
        if key in os.environ:
            env[key] = os.environ[key]
    tls = local_tls(home)  # the rendezvous speaks TLS: the heroku CLI dials nothing else
    env.update(
        GUN_RENDEZVOUS_TLS_CERT=str(tls / "rendezvous.pem"),
        GUN_RENDEZVOUS_TLS_KEY=str(tls / "rendezvous-key.pem"),
        GUN_RENDEZVOUS_TLS_CA=str(tls / "ca.pem"),
    )
    ca = (tls / "ca.pem").read_text() if https else None
    if https:  # meta's certificate is the rendezvous's (127.0.0.1, localhost); all pin the CA
        env.update(
            GUN_TLS_CERT=str(tls / "rendezvous.pem"),
            GUN_TLS_KEY=str(tls / "rendezvous-key.pem"),
            GUN_TLS_CA=str(tls / "ca.pem"),
        )
    drain_listen = os.environ.get("GUN_DRAIN_LISTEN") or f"127.0.0.1:{_drain_port(port)}"
    drain_url = f"http://{drain_listen}"
    env["GUN_DRAIN_URL"] = drain_url
    drain_env = {k: v for k, v in env.items() if k not in ("GUN_ADMIN_TOKEN", "GUN_DRAIN_TOKEN")}
    for key in (*TLS_OF_META, "GUN_TLS_CERT", "GUN_TLS_KEY"):
        drain_env.pop(key, None)  # the drain keeps GUN_TLS_CA: meta's, which it pins
    drain_env.update(GUN_META_URL=url, GUN_DRAIN_META_TOKEN=drain_credential)
    for key in DRAIN_PASSED:
        if key in os.environ:
            drain_env[key] = os.environ[key]
    router = _router(home, url, token, env, (router_port, router_tls_port), say)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    provider = LocalProvider(home / "instances")
    drain = Respawned(
        "the drain",
        [*SERVER, "drain", "--listen", drain_listen, "--home", str(home)],
        drain_env,
        home / "log" / "drain.log",
        drain_url,
        say,
    )
    meta = Respawned(
        "meta",
        [
            *SERVER,
            "meta",
            "--listen",
            f"127.0.0.1:{port}",
            "--home",
            str(home),
            "--rendezvous-listen",
            f"127.0.0.1:{rendezvous_port}",
        ],
        env,
        home / "log" / "meta.log",
        url,
        say,
        ca=ca,
    )
    try:
        drain.start()
        meta.start()
        meta.wait_answering(30)
        drain.wait_answering(30)
        if router is not None:
            router.start()
            router.wait_answering(30)
        if ready is not None:
            ready(url, token, ca)
        say(f"gun is up: meta on {url}, the drain on {drain_url}, data in {home}")
        say(f"every new app gets {instances} local instance(s) in layer default")
        say(
            f"one-off processes attach at rendezvous://127.0.0.1:{rendezvous_port} over TLS"
            f" (trust {tls / 'ca.pem'}, e.g. NODE_EXTRA_CA_CERTS for the heroku CLI)"
        )
        if router is not None:
            say(
                f"the router serves every app at http://APP.localhost:{router_port}/ and"
                f" https://APP.localhost:{router_tls_port}/ (trust {tls / 'ca.pem'})"
            )
        say("try: gun apps.create demo && gun app:demo deploy dir=examples/python-web")
        say("Ctrl-C stops everything")
        while not stop.is_set():
            meta.check()
            drain.check()
            if router is not None:
                router.check()
            stop.wait(0.2)
        say("stopping: meta, then every agent and its processes, then the drain")
    finally:
        meta.stop()
        if router is not None:
            router.stop()
        provider.stop_all()
        drain.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
