"""Routers on the fleet's hosts: the instances of the platform's app `gun-router` run the
router, kept by their agents (gun.agent.agent), configured by that app's config vars (pure).

    gun apps.create gun-router                       (an admin of the whole platform)
    gun app:gun-router config.set ROUTER_PORT=80 ROUTER_TLS_PORT=443
    gun app:gun-router instances.create:router provider=ssh host=edge1

An instance's router listens on ROUTER_BIND (default: the address its agent reaches meta from,
so an address of the host's own network) at ROUTER_PORT (80) and, when set, ROUTER_TLS_PORT;
ROUTER_TIMEOUT, ROUTER_CHECK_INTERVAL and ROUTER_MAX_BODY are GUN_ROUTER_TIMEOUT and the
others. meta refuses a bad value at config.set, one sentence naming it.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from pathlib import Path

from gun.errors import InvalidParams
from gun.router.haproxy import Settings

DEFAULT_PORT = 80


def _port(key: str, value: str) -> int:
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 65536:
        raise InvalidParams(f"config var {key} is {value!r}: give a port from 1 to 65535")
    return int(value)


def _number(low: float, high: float) -> Callable[[str, str], float]:
    def read(key: str, value: str) -> float:
        try:
            n = float(value)
        except ValueError:
            n = math.nan
        if not low <= n <= high:
            raise InvalidParams(
                f"config var {key} is {value!r}: give a number from {low:g} to {high:g}"
            )
        return n

    return read


def _address(key: str, value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InvalidParams(
            f"config var {key} is {value!r}: give an IP address of the host"
        ) from None


READERS: dict[str, Callable[[str, str], object]] = {
    "ROUTER_PORT": _port,
    "ROUTER_TLS_PORT": _port,
    "ROUTER_BIND": _address,
    "ROUTER_TIMEOUT": _number(1, 3600),
    "ROUTER_CHECK_INTERVAL": _number(0.1, 60),
    "ROUTER_MAX_BODY": _number(0, 2**40),
}


def check(key: str, value: str) -> None:
    """A config var of the router app: InvalidParams with one sentence if it is bad."""
    read = READERS.get(key)
    if read is not None:
        read(key, value)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def settings(env: Mapping[str, str], home: Path, bind: str) -> Settings:
    """The router's settings from the router app's config vars; `bind` is where to listen
    unless ROUTER_BIND says."""
    for key, value in env.items():
        check(key, value)
    host = env.get("ROUTER_BIND") or bind
    tls = env.get("ROUTER_TLS_PORT")
    return Settings(
        listen=_hostport(host, int(env.get("ROUTER_PORT") or DEFAULT_PORT)),
        tls_listen=_hostport(host, int(tls)) if tls else None,
        home=home,
        syslog="127.0.0.1:0",
        timeout=float(env.get("ROUTER_TIMEOUT") or 30.0),
        check_interval=float(env.get("ROUTER_CHECK_INTERVAL") or 1.0),
        max_body=int(float(env.get("ROUTER_MAX_BODY") or 100 * 1024 * 1024)),
    )
