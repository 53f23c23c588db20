"""Configuration: flags > environment (GUN_*) > defaults. Resolved once at the edges."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from gun.errors import UsageError
from gun.rendezvous import Address

if TYPE_CHECKING:
    from gun.router.haproxy import Settings as RouterSettings

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")


def gun_home() -> Path:
    """GUN_HOME; else XDG_DATA_HOME/gun; else /var/lib/gun for root (whose own home is closed to
    the apps' users, who must pass through the data directory: gun.isolation), else
    ~/.local/share/gun."""
    raw = os.environ.get("GUN_HOME")
    if raw:
        return Path(raw).expanduser()
    data = os.environ.get("XDG_DATA_HOME")
    if not data and os.geteuid() == 0:
        return Path("/var/lib/gun")
    return Path(data or str(Path.home() / ".local" / "share")) / "gun"


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gun"


def default_database_url(home: Path) -> str:
    return f"sqlite:///{home / 'meta.db'}"


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise UsageError(f"listen address {listen!r} is invalid: write it as HOST:PORT")
    return host, int(port)


def number(name: str, default: float, low: float, high: float) -> float:
    """A numeric GUN_* variable, refused with its name when it is not a number in range."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise UsageError(f"{name}={raw} is out of range: use {_plain(low)} to {_plain(high)}")
    return value


def whole(name: str, default: int, low: int, high: int) -> int:
    """`number` that must be a whole number."""
    value = number(name, default, low, high)
    if not float(value).is_integer():
        raise UsageError(f"{name}={os.environ.get(name)!r} is not a whole number")
    return int(value)


def _public_url() -> str | None:
    """GUN_PUBLIC_URL: what agents are given to reach meta (else meta's listening address)."""
    url = os.environ.get("GUN_PUBLIC_URL") or None
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise UsageError(f"GUN_PUBLIC_URL={url!r} is not an http(s)://HOST[:PORT] URL")
        url = url.rstrip("/")
    return url


def _cert_and_key(cert: str, key: str) -> tuple[str | None, str | None]:
    """The files named by the variables `cert` and `key`: both, or neither."""
    paths = os.environ.get(cert) or None, os.environ.get(key) or None
    for name, path in zip((cert, key), paths, strict=True):
        if path is not None and not Path(path).is_file():
            raise UsageError(f"{name}={path} is not a file")
    if bool(paths[0]) != bool(paths[1]):
        raise UsageError(f"set both {cert} and {key}, or neither")
    return paths


def pem_certificates(name: str) -> str | None:
    """The text of the PEM file of certificates named by the variable `name`, if it is set."""
    path = os.environ.get(name) or None
    return None if path is None else read_pem(path, f"{name}={path}")


def read_pem(path: str, said: str) -> str:
    """The text of the PEM file of certificates at `path` (given as `said`); else UsageError."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{said} cannot be read ({type(e).__name__})") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise UsageError(f"{said} holds no PEM certificate")
    return text


def _router_domain() -> str:
    """GUN_ROUTER_DOMAIN: the domain under which every app has its default hostname
    (APP.<domain>); a hostname (one label, as localhost, will do), lowercased."""
    raw = os.environ.get("GUN_ROUTER_DOMAIN") or "localhost"
    name = raw.lower()
    labels = name.split(".")
    if len(name) > 200 or not name.isascii() or not all(_LABEL.match(x) for x in labels):
        raise UsageError(
            f"GUN_ROUTER_DOMAIN={raw!r} is not a domain name: write it as localhost or "
            "apps.example.com"
        )
    return name


def _compiled_mode() -> str:
    """GUN_DRAIN_COMPILED: auto (the compiled build when there is one for these sources), on
    (refuse to start without it) or off."""
    mode = os.environ.get("GUN_DRAIN_COMPILED") or "auto"
    if mode not in ("auto", "on", "off"):
        raise UsageError(f"GUN_DRAIN_COMPILED={mode!r} is not one of auto, on, off")
    return mode


def _plain(x: float) -> str:
    """A bound as people write it: 1073741824, not 1.07374e+09."""
    return str(int(x)) if x == int(x) else f"{x:g}"


GIB = 1024**3


@dataclass(frozen=True)
class SlugLimits:
    """What a slug (or an uploaded source) may unpack to, on meta and on every agent: its files'
    total size and its number of members. The compressed size of an upload is capped apart, by
    GUN_SLUG_MAX_BYTES (500 MiB by default, Heroku's compressed slug limit)."""

    max_unpacked_bytes: int = GIB  # GUN_SLUG_MAX_UNPACKED_BYTES
    max_members: int = 100_000  # GUN_SLUG_MAX_MEMBERS

    @classmethod
    def resolve(cls) -> SlugLimits:
        return cls(
            max_unpacked_bytes=int(number("GUN_SLUG_MAX_UNPACKED_BYTES", GIB, 1, 2**50)),
            max_members=int(number("GUN_SLUG_MAX_MEMBERS", 100_000, 1, 10_000_000)),
        )


@dataclass(frozen=True)
class AppLogLimits:
    """How big an instance's log/app.log grows before it is rotated, and how many rotated
    files (app.log.1 ...) are kept."""

    max_bytes: int = 50 * 1024 * 1024  # GUN_APP_LOG_MAX_MB, in MiB (fractions allowed)
    keep: int = 3  # GUN_APP_LOG_KEEP

    @classmethod
    def resolve(cls) -> AppLogLimits:
        return cls(
            max_bytes=int(number("GUN_APP_LOG_MAX_MB", 50, 0.001, 1_000_000) * 1024 * 1024),
            keep=int(number("GUN_APP_LOG_KEEP", 3, 0, 100)),
        )


@dataclass(frozen=True)
class MetaSettings:
    home: Path
    database_url: str
    listen: str
    secret_key: str | None
    admin_token: str | None
    drain_token: str | None = None  # meta keeps a drain token (named drain) of this value
    instance_timeout: float = 30.0
    auto_instances: int = 0
    build_concurrency: int = 2
    build_timeout: float = 900.0
    release_timeout: float = 3600.0
    preboot_drain: float = 2.0
    max_unavailable: int = 1
    keep_slugs: int = 10
    max_processes: int = 100  # per app, across its process types
    drain_url: str | None = None  # the platform's drain, where agents ship logs
    slug_store: str = ""
    slug_limits: SlugLimits = SlugLimits()
    public_url: str | None = None  # GUN_PUBLIC_URL: meta's URL as agents on other hosts reach it
    tls_cert: str | None = None  # GUN_TLS_CERT/KEY: serve HTTPS with this certificate and key
    tls_key: str | None = None
    tls_ca: str | None = None  # GUN_TLS_CA: PEM text of the CA agents pin (gun server certs)
    router_domain: str = "localhost"  # GUN_ROUTER_DOMAIN: apps are reached at APP.<this>
    rendezvous_listen: str | None = None  # GUN_RENDEZVOUS_LISTEN: where runs are attached
    # GUN_RENDEZVOUS_TLS_CERT/KEY: the rendezvous's own certificate (default: meta's, if any);
    # GUN_RENDEZVOUS_TLS_CA: PEM text of the CA it is of, told to clients and agents
    rendezvous_tls_cert: str | None = None
    rendezvous_tls_key: str | None = None
    rendezvous_tls_ca: str | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @property
    def rendezvous_tls(self) -> tuple[str, str, str | None] | None:
        """The rendezvous's certificate, key and CA (PEM text): its own if given, else meta's;
        None: it speaks plain TCP."""
        if self.rendezvous_tls_cert and self.rendezvous_tls_key:
            return self.rendezvous_tls_cert, self.rendezvous_tls_key, self.rendezvous_tls_ca
        if self.tls_cert and self.tls_key:
            return self.tls_cert, self.tls_key, self.tls_ca
        return None

    @property
    def rendezvous_address(self) -> Address | None:
        url = self.rendezvous_url
        if url is None:
            return None
        tls = self.rendezvous_tls
        return Address(url, tls is not None, tls[2] if tls else None)

    @property
    def rendezvous_url(self) -> str | None:
        """rendezvous://HOST:PORT as clients and agents reach the rendezvous: meta's public
        host (or the one it listens on), the rendezvous's port."""
        if self.rendezvous_listen is None:
            return None
        _, port = parse_listen(self.rendezvous_listen)
        host = urlsplit(self.public_url).hostname if self.public_url else None
        if host is None:
            host, _ = parse_listen(self.listen)
            host = "127.0.0.1" if host in ("0.0.0.0", "") else host.strip("[]")
        return f"rendezvous://{f'[{host}]' if ':' in host else host}:{port}"

    @classmethod
    def resolve(
        cls,
        *,
        home: str | None = None,
        database_url: str | None = None,
        listen: str | None = None,
        secret_key: str | None = None,
        rendezvous_listen: str | None = None,
    ) -> MetaSettings:
        h = Path(home).expanduser() if home else gun_home()
        tls_cert, tls_key = _cert_and_key("GUN_TLS_CERT", "GUN_TLS_KEY")
        rv_cert, rv_key = _cert_and_key("GUN_RENDEZVOUS_TLS_CERT", "GUN_RENDEZVOUS_TLS_KEY")
        rv_ca = pem_certificates("GUN_RENDEZVOUS_TLS_CA")
        if rv_ca and not rv_cert:
            raise UsageError("GUN_RENDEZVOUS_TLS_CA is set without GUN_RENDEZVOUS_TLS_CERT/KEY")
        public_url = _public_url()
        if tls_cert and public_url and public_url.startswith("http://"):
            raise UsageError(f"GUN_PUBLIC_URL={public_url} is http:// but meta serves HTTPS")
        return cls(
            home=h,
            database_url=database_url
            or os.environ.get("GUN_DATABASE_URL")
            or default_database_url(h),
            listen=listen or os.environ.get("GUN_LISTEN") or "127.0.0.1:5100",
            secret_key=secret_key or os.environ.get("GUN_SECRET_KEY") or None,
            admin_token=os.environ.get("GUN_ADMIN_TOKEN") or None,
            drain_token=os.environ.get("GUN_DRAIN_TOKEN") or None,
            instance_timeout=number("GUN_INSTANCE_TIMEOUT", 30.0, 1.0, 3600.0),
            auto_instances=int(number("GUN_AUTO_INSTANCES", 0, 0, 20)),
            build_concurrency=int(number("GUN_BUILD_CONCURRENCY", 2, 1, 64)),
            build_timeout=number("GUN_BUILD_TIMEOUT", 900.0, 1.0, 86400.0),
            release_timeout=number("GUN_RELEASE_TIMEOUT", 3600.0, 1.0, 86400.0),
            preboot_drain=number("GUN_PREBOOT_DRAIN", 2.0, 0.0, 600.0),
            max_unavailable=int(number("GUN_MAX_UNAVAILABLE", 1, 1, 1000)),
            keep_slugs=int(number("GUN_KEEP_RELEASES", 10, 1, 1000)),
            max_processes=int(number("GUN_MAX_PROCESSES", 100, 1, 100_000)),
            drain_url=os.environ.get("GUN_DRAIN_URL") or None,
            public_url=public_url,
            slug_store=os.environ.get("GUN_SLUG_STORE", ""),
            slug_limits=SlugLimits.resolve(),
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_ca=pem_certificates("GUN_TLS_CA"),
            router_domain=_router_domain(),
            rendezvous_listen=_listen_or_none(
                rendezvous_listen or os.environ.get("GUN_RENDEZVOUS_LISTEN")
            ),
            rendezvous_tls_cert=rv_cert,
            rendezvous_tls_key=rv_key,
            rendezvous_tls_ca=rv_ca,
        )


def _listen_or_none(listen: str | None) -> str | None:
    if not listen or listen == "off":
        return None
    parse_listen(listen)
    return listen


@dataclass(frozen=True)
class DrainSettings:
    home: Path
    listen: str
    meta_url: str
    meta_token: str | None  # a drain token: the drain checks ingest tokens with meta
    archive: Path
    retention_days: int
    whisper: Path | None  # None: no whisper outlet
    statsd: tuple[str, int] | None
    resolution: int
    prefix: str  # prepended to metric names
    grace: float = 2.0  # seconds a bucket stays open after its interval, for lines on the way
    workers: int = 1  # processes serving HTTP (more than 1: a parent, a hub, workers)
    tls_cert: str | None = None  # serve HTTPS (Heroku's HTTPS drains) with this certificate
    tls_key: str | None = None
    archive_s3: str = ""  # s3://BUCKET[/PREFIX]: finished hours go there (empty: stay local)
    archive_max_bytes: int | None = None  # per app, on the drain's disk (None: no cap)
    compiled: str = "auto"  # the compiled build (compiled.py): auto (if built), on, off
    meta_ca: str | None = None  # GUN_TLS_CA: PEM of the CA meta's HTTPS is pinned to

    @classmethod
    def resolve(cls, *, home: str | None = None, listen: str | None = None) -> DrainSettings:
        h = Path(home).expanduser() if home else gun_home()
        whisper = os.environ.get("GUN_WHISPER_DIR", "")
        statsd = os.environ.get("GUN_STATSD") or None
        listen = listen or os.environ.get("GUN_DRAIN_LISTEN") or "127.0.0.1:5101"
        parse_listen(listen)
        tls_cert, tls_key = _cert_and_key("GUN_DRAIN_TLS_CERT", "GUN_DRAIN_TLS_KEY")
        return cls(
            home=h,
            listen=listen,
            meta_url=os.environ.get("GUN_META_URL") or "http://127.0.0.1:5100",
            meta_token=os.environ.get("GUN_DRAIN_META_TOKEN") or None,
            archive=Path(os.environ.get("GUN_LOG_ARCHIVE") or h / "logs"),
            retention_days=int(number("GUN_LOG_RETENTION_DAYS", 30, 1, 3650)),
            whisper=None if whisper == "off" else Path(whisper or h / "whisper"),
            statsd=parse_listen(statsd) if statsd else None,
            resolution=int(number("GUN_METRICS_RESOLUTION", 60, 1, 3600)),
            grace=number("GUN_METRICS_GRACE", 2.0, 0.0, 60.0),
            workers=whole("GUN_DRAIN_WORKERS", 1, 1, 64),
            prefix=os.environ.get("GUN_METRICS_PREFIX", ""),
            tls_cert=tls_cert,
            tls_key=tls_key,
            archive_s3=os.environ.get("GUN_LOG_ARCHIVE_S3", ""),
            archive_max_bytes=int(number("GUN_LOG_ARCHIVE_MAX_MB", 1024, 1, 10**7) * 2**20),
            compiled=_compiled_mode(),
            meta_ca=pem_certificates("GUN_TLS_CA"),
        )


def router_settings(home: Path, listen: str | None = None) -> RouterSettings:
    """The router's settings: GUN_ROUTER_LISTEN (default 127.0.0.1:5180), its files under
    HOME/router, GUN_ROUTER_TLS_LISTEN (HTTPS, none by default), GUN_ROUTER_LOCAL_CA (a
    directory with ca.pem and ca-key.pem: a CA that signs the apps' default hostnames),
    GUN_ROUTER_TIMEOUT (s for an app to start its response, 30),
    GUN_ROUTER_CHECK_INTERVAL (s between health checks of a web process, 1),
    GUN_ROUTER_MAX_BODY (bytes of a request body, 100 MiB)."""
    from gun.router.haproxy import Settings

    listen = listen or os.environ.get("GUN_ROUTER_LISTEN") or "127.0.0.1:5180"
    parse_listen(listen)
    tls_listen = os.environ.get("GUN_ROUTER_TLS_LISTEN") or None
    if tls_listen:
        parse_listen(tls_listen)
    local_ca = os.environ.get("GUN_ROUTER_LOCAL_CA") or None
    if local_ca and not (Path(local_ca) / "ca-key.pem").is_file():
        raise UsageError(f"GUN_ROUTER_LOCAL_CA={local_ca} has no ca.pem and ca-key.pem")
    return Settings(
        listen=listen,
        tls_listen=tls_listen,
        local_ca=Path(local_ca) if local_ca else None,
        home=home / "router",
        syslog="127.0.0.1:0",
        timeout=number("GUN_ROUTER_TIMEOUT", 30.0, 1.0, 3600.0),
        check_interval=number("GUN_ROUTER_CHECK_INTERVAL", 1.0, 0.1, 60.0),
        max_body=int(number("GUN_ROUTER_MAX_BODY", 100 * 1024 * 1024, 0, 2**40)),
    )
