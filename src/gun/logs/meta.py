"""What the drain asks meta about tokens, and how long it believes the answers.

- Which app an ingest token is: `GET /v1/drain/ingest-tokens/TOKEN`, with the drain's own
  token. Believed only as a 200 whose JSON is exactly `{"app": NAME}`, NAME an app name (the
  token is NAME's), or as a 404 with meta's error JSON `{"id": "not_found", ...}` (no app has
  it). Any other answer is "meta answered wrongly": Unavailable (503, so senders retry), never
  trusted, never kept.
- May a user token read an app's logs: `GET /v1/apps/APP/log-session` with that token. A 200
  with `{"url": ...}` is yes; 401, 403 and 404 are no, said with meta's status; anything else
  is Unavailable. For many apps at once (the dashboard's summaries), `GET /v1/log-session?
  apps=A,B`: the apps listed in its 200's `{"apps": [...]}` are yes, the others no (404).

Every path segment sent is percent-quoted, although callers pass only tokens and app names of
their exact forms (access.py): nothing a client sends can name another route of meta.

Answers are kept in LRU caches of at most CACHE_SIZE entries each, yes and no apart (a flood
of unknown tokens evicts other refusals, never a known token):
- a yes for POSITIVE_TTL (0.5 s), refreshed in the background once it is REFRESH_AFTER old.
  Invariant: an answer used at time t was given by meta at t - POSITIVE_TTL or later, so a
  token revoked or rotated, or one of a deleted app, is refused from 0.5 s after the change
  (plus one lookup), while the requests of a busy sender find an answer at hand and never
  wait for meta;
- a no for NEGATIVE_TTL (2 s);
- meta unreachable or answering wrongly: nothing.
Lookups of one key at the same time share one request. User tokens are kept as SHA-256
digests.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import ssl
import time
from collections.abc import Callable, Coroutine, Hashable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from cachetools import TTLCache

from gun.errors import Forbidden, GunError, NotFound, Unauthorized, Unavailable
from gun.logs.access import INVALID_INGEST, UNKNOWN_USER
from gun.model import APP_NAME

POSITIVE_TTL = 0.5
REFRESH_AFTER = 0.4  # a lookup costs the drain ~2 ms of CPU: 2.5 a second per busy token
NEGATIVE_TTL = 2.0
CACHE_SIZE = 4096
READABLE_BATCH = 200  # apps in one question about many (meta's MAX_APPS)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class No:
    """meta's refusal of a user token for an app: its status and the drain's sentence."""

    status: int
    message: str

    def error(self) -> GunError:
        kind = {401: Unauthorized, 403: Forbidden}.get(self.status, NotFound)
        return kind(self.message)


def app_in_answer(status: int, body: bytes) -> str | None:
    """The app meta's answer about an ingest token names; None when no app has the token;
    Unavailable for anything else (see the module docstring)."""
    data = _json(body)
    if status == 200 and isinstance(data, dict) and data.keys() == {"app"}:
        app = data["app"]
        if isinstance(app, str) and APP_NAME.match(app):
            return app
    if status == 404 and isinstance(data, dict) and data.get("id") == "not_found":
        return None
    raise _wrongly(status, "the ingest token")


def read_answer(status: int, body: bytes, app: str) -> No | None:
    """None when meta's answer about a user token lets it read `app`'s logs, the refusal when
    it does not; Unavailable for anything else."""
    data = _json(body)
    if status == 200 and isinstance(data, dict) and isinstance(data.get("url"), str):
        return None
    if status == 401:
        return No(401, UNKNOWN_USER)
    if status in (403, 404):
        return No(status, f"this token may not read the logs of app {app!r}")
    raise _wrongly(status, "the token")


class Meta:
    def __init__(
        self, url: str, token: str, *, cache_size: int = CACHE_SIZE, ca: str | None = None
    ) -> None:
        self.url = url.rstrip("/")
        verify: ssl.SSLContext | bool = ssl.create_default_context(cadata=ca) if ca else True
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
            verify=verify,  # `ca`: the team's CA (GUN_TLS_CA), pinned
        )
        self._apps: TTLCache[str, tuple[float, str]] = TTLCache(cache_size, POSITIVE_TTL)
        self._no_apps: TTLCache[str, bool] = TTLCache(cache_size, NEGATIVE_TTL)
        self._reads: TTLCache[tuple[bytes, str], float] = TTLCache(cache_size, POSITIVE_TTL)
        self._no_reads: TTLCache[tuple[bytes, str], No] = TTLCache(cache_size, NEGATIVE_TTL)
        self._pending: dict[Hashable, asyncio.Task[Any]] = {}

    def cached(self) -> int:
        """How many answers the caches hold."""
        return sum(len(c) for c in (self._apps, self._no_apps, self._reads, self._no_reads))

    async def app_of(self, token: str) -> str:
        """The app of an ingest token of the exact form; Forbidden(INVALID_INGEST) if none."""
        try:
            fetched, app = self._apps[token]  # the hot path: no await, no lookup
        except KeyError:
            pass
        else:
            if time.monotonic() - fetched >= REFRESH_AFTER:
                self._start(("app", token), partial(self._fetch_app, token))
            return app
        if token in self._no_apps:
            raise Forbidden(INVALID_INGEST)
        found = await asyncio.shield(self._start(("app", token), partial(self._fetch_app, token)))
        if found is None:
            raise Forbidden(INVALID_INGEST)
        return found

    async def may_read(self, user_token: str, app: str) -> None:
        """Returns when `user_token` may read `app`'s logs; raises meta's refusal if not."""
        key = (hashlib.sha256(user_token.encode()).digest(), app)
        fetched = self._reads.get(key)
        if fetched is not None:
            if time.monotonic() - fetched >= REFRESH_AFTER:
                self._start(("read", key), partial(self._fetch_read, key, user_token, app))
            return
        no = self._no_reads.get(key)
        if no is None:
            lookup = self._start(("read", key), partial(self._fetch_read, key, user_token, app))
            no = await asyncio.shield(lookup)
        if no is not None:
            raise no.error()

    async def readable(self, user_token: str, apps: Sequence[str]) -> set[str]:
        """Those of `apps` that `user_token` may read the logs of: the answers at hand, and
        for the rest one question per READABLE_BATCH apps (`GET /v1/log-session?apps=`),
        whose answers fill the same caches as may_read's. Unauthorized for a token meta does
        not know."""
        digest = hashlib.sha256(user_token.encode()).digest()
        yes = {a for a in apps if (digest, a) in self._reads}
        asked = [
            a for a in dict.fromkeys(apps) if a not in yes and (digest, a) not in self._no_reads
        ]
        batches = [asked[i : i + READABLE_BATCH] for i in range(0, len(asked), READABLE_BATCH)]
        for got in await asyncio.gather(
            *(self._fetch_many(digest, user_token, b) for b in batches)
        ):
            yes |= got
        return yes

    async def _fetch_many(self, digest: bytes, user_token: str, apps: list[str]) -> set[str]:
        r = await self._get(
            "/v1/log-session",
            headers={"Authorization": f"Bearer {user_token}"},
            params={"apps": ",".join(apps)},
        )
        data = _json(r.content)
        if r.status_code == 401:
            raise Unauthorized(UNKNOWN_USER)
        if r.status_code in (403, 404):
            found: set[str] = set()
        elif r.status_code == 200 and isinstance(data, dict) and isinstance(data.get("apps"), list):
            found = {a for a in data["apps"] if a in apps}
        else:
            raise _wrongly(r.status_code, "the token")
        now = time.monotonic()
        for app in apps:
            key = (digest, app)
            if app in found:
                self._no_reads.pop(key, None)
                self._reads[key] = now
            else:
                self._reads.pop(key, None)
                self._no_reads[key] = No(404, f"this token may not read the logs of app {app!r}")
        return found

    async def _fetch_app(self, token: str) -> str | None:
        r = await self._get(f"/v1/drain/ingest-tokens/{quote(token, safe='')}")
        app = app_in_answer(r.status_code, r.content)
        if app is None:
            self._apps.pop(token, None)
            self._no_apps[token] = True
        else:
            self._no_apps.pop(token, None)
            self._apps[token] = (time.monotonic(), app)
        return app

    async def _fetch_read(self, key: tuple[bytes, str], user_token: str, app: str) -> No | None:
        r = await self._get(
            f"/v1/apps/{quote(app, safe='')}/log-session",
            headers={"Authorization": f"Bearer {user_token}"},
        )
        no = read_answer(r.status_code, r.content, app)
        if no is None:
            self._no_reads.pop(key, None)
            self._reads[key] = time.monotonic()
        else:
            self._reads.pop(key, None)
            self._no_reads[key] = no
        return no

    def _start(self, key: Hashable, fetch: Callable[[], Coroutine[Any, Any, T]]) -> asyncio.Task[T]:
        """The lookup of `key` under way, or a new one (awaited through asyncio.shield, so that
        a request that goes away does not cancel it for the others)."""
        task = self._pending.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(fetch())
            self._pending[key] = task
            task.add_done_callback(partial(self._done, key))
        return task

    def _done(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        self._pending.pop(key, None)
        if not task.cancelled():
            task.exception()  # a refresh nobody awaited failed: the next request asks again

    async def _get(
        self, path: str, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
    ) -> httpx.Response:
        try:
            return await self._http.get(path, headers=headers, params=params)
        except httpx.HTTPError as e:
            raise Unavailable(
                f"cannot reach meta at {self.url} to check the token ({type(e).__name__})"
            ) from None

    async def close(self) -> None:
        for task in list(self._pending.values()):
            task.cancel()
        await self._http.aclose()


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _wrongly(status: int, what: str) -> Unavailable:
    return Unavailable(
        f"meta answered wrongly (HTTP {status}) when the drain checked {what}: "
        "check that GUN_META_URL is meta's URL"
    )
