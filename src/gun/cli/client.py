"""The CLI's HTTP client for meta; a refusal becomes the matching GunError, marked remote."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from typing import Any

import httpx

from gun import errors


class Refused(Exception):
    """meta answered with an error: CLI exit code 1."""

    def __init__(self, error: errors.GunError) -> None:
        super().__init__(error.message)
        self.error = error


class Unreachable(Exception):
    pass


class Client:
    def __init__(
        self, api: str, token: str | None, timeout: float = 30.0, ca: str | None = None
    ) -> None:
        self.api = api.rstrip("/")
        self.token = token
        self.ca = ca  # the team's CA (PEM) meta's certificate is pinned to, if any
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # `ca`: the team's CA (PEM), pinned: meta's certificate must be signed by it
        verify: ssl.SSLContext | bool = ssl.create_default_context(cadata=ca) if ca else True
        self._http = httpx.Client(
            base_url=self.api, headers=headers, timeout=timeout, verify=verify
        )

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kw: Any) -> Any:
        return self.response(method, path, **kw)[0]

    def response(self, method: str, path: str, **kw: Any) -> tuple[Any, httpx.Headers]:
        """The answer's JSON (None when empty) and its headers."""
        try:
            r = self._http.request(method, path, **kw)
        except httpx.TransportError as e:
            raise _unreachable(self.api, e) from None
        if r.status_code >= 400:
            raise Refused(_error(r))
        if r.status_code == 204 or not r.content:
            return None, r.headers
        return r.json(), r.headers

    @contextlib.contextmanager
    def stream(self, method: str, path: str, **kw: Any) -> Iterator[httpx.Response]:
        """A response read as it comes (no read timeout); transport errors while reading it
        are Unreachable too."""
        timeout = httpx.Timeout(30.0, read=None)
        try:
            with self._http.stream(method, path, timeout=timeout, **kw) as r:
                if r.status_code >= 400:
                    r.read()
                    raise Refused(_error(r))
                yield r
        except httpx.TransportError as e:
            raise Unreachable(f"lost meta at {self.api} ({type(e).__name__})") from None

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


def _error(r: httpx.Response) -> errors.GunError:
    try:
        body = r.json()
        id_, message = str(body["id"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        return errors.GunError(f"meta answered {r.status_code} {r.reason_phrase}")
    cls = errors.BY_ID.get(id_, errors.GunError)
    return cls(message)


def _unreachable(api: str, e: httpx.TransportError) -> Unreachable:
    if "CERTIFICATE_VERIFY_FAILED" in str(e):
        return Unreachable(
            f"meta at {api} has a certificate this CLI does not trust ({_reason(e)}): give its "
            "CA with `gun login --ca PATH` or GUN_API_CA"
        )
    return Unreachable(
        f"cannot reach meta at {api} ({type(e).__name__}): is it running? (`gun up` starts it)"
    )


def _reason(e: httpx.TransportError) -> str:
    text = str(e)
    at = text.find("certificate verify failed: ")
    return text[at + len("certificate verify failed: ") :].split(" (_ssl")[0] if at >= 0 else text
