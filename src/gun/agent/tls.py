"""The agent's TLS: meta is reached pinned to the team's CA when it has one (agent.json's `ca`,
made by `gun server certs`), the drains with the system's CAs and the team's together (the
platform's drain may have the team's certificate, an app's own drain a public one).

An agent of an http:// meta starts without `ssl` (__main__.py keeps OpenSSL out: ~8 MiB less
RSS), so http.client has no HTTPSConnection in it. `HTTPSConnection` here is one that imports
`ssl` when first used: an https drain added later loads OpenSSL then. So does a rendezvous that
speaks TLS (`gun up`'s, for the stock `heroku run`): asyncio, imported without `ssl`, is given
it then (`context`).
"""

from __future__ import annotations

import http.client
import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl


def context(ca: str | None, *, system: bool) -> ssl.SSLContext:
    """Verifying host names and certificates: against `ca` (PEM) alone when `system` is False and
    there is one, else against the system's CAs, and `ca` too."""
    if "ssl" in sys.modules and sys.modules["ssl"] is None:
        del sys.modules["ssl"]  # kept out at start (__main__.py): needed now
        import ssl

        _asyncio_gets(ssl)
    import ssl

    if ca is None:
        return ssl.create_default_context()
    made = ssl.create_default_context(cadata=ca)  # only `ca`
    if system:
        made.load_default_certs()
    return made


def _asyncio_gets(ssl: types.ModuleType) -> None:
    """asyncio, imported while `ssl` was kept out, holds `ssl = None` in the modules that make
    TLS transports (each does `try: import ssl`): give them the module now loaded."""
    for name in ("asyncio.base_events", "asyncio.selector_events", "asyncio.sslproto"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "ssl", False) is None:
            module.ssl = ssl  # type: ignore[attr-defined]
    sslproto = sys.modules.get("asyncio.sslproto")
    if sslproto is not None and not hasattr(sslproto, "SSLAgainErrors"):
        sslproto.SSLAgainErrors = (ssl.SSLWantReadError, ssl.SSLSyscallError)  # type: ignore[attr-defined]


class HTTPSConnection(http.client.HTTPConnection):
    """http.client's HTTPSConnection, for an interpreter that may have started without ssl."""

    default_port = 443

    def __init__(
        self, host: str, port: int | None, *, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self._context = context

    def connect(self) -> None:
        super().connect()
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)
