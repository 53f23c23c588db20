"""The dashboard's reads of the drain's series routes (logs/series.py), as the session's token:
the drain asks meta whether that token may read the app's logs, as for `gun logs`.

The drain's URL is the one a log session is read from (`drains.log_session`, which also says
whether the token may read the app at all), or, for the apps page's many apps, the platform's
drain (`shipping.drain_base`). Every failure is one of gun's errors with one sentence:
Unavailable (the drain cannot be reached, is slow, or answers what it should not), NotFound
and Forbidden (the drain's own refusal, its sentence kept).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
from anyio import from_thread
from cachetools import TTLCache

from gun.api.drainread import http_to_drain
from gun.core import Platform
from gun.errors import Forbidden, GunError, NotFound, Unavailable
from gun.logs.series import Points, Series, Summary
from gun.model import Principal

TIMEOUT = 5.0
SUMMARIES_KEPT = 10.0  # seconds the apps page shows the same figures (of the last hour)
_kept: TTLCache[tuple[bytes, tuple[str, ...]], dict[str, Summary]] = TTLCache(256, SUMMARIES_KEPT)
_lock = threading.Lock()


class DrainClient:
    def __init__(self, base: str, token: str, ca: str | None, timeout: float = TIMEOUT) -> None:
        self.http = http_to_drain(base, token, ca, timeout)

    @classmethod
    def for_app(
        cls, gun: Platform, who: Principal, app: str, token: str, timeout: float = TIMEOUT
    ) -> DrainClient:
        """The drain `app`'s logs are read from (blocking: a Platform read)."""
        return cls(gun.drains.log_session(who, app), token, gun.instances.meta_ca, timeout)

    @classmethod
    def for_apps(cls, gun: Platform, token: str, timeout: float = TIMEOUT) -> DrainClient:
        return cls(gun.shipping.drain_base(), token, gun.instances.meta_ca, timeout)

    async def __aenter__(self) -> DrainClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.http.aclose()

    async def listing(self, app: str) -> list[Series]:
        data = await self._get(f"/v1/apps/{quote(app, safe='')}/series")
        try:
            return [Series(d["name"], d["source"], tuple(d["stats"])) for d in data]
        except (TypeError, KeyError) as e:
            raise _wrong("the series list") from e

    async def points(
        self, app: str, name: str, stat: str, span: tuple[int, int], source: str | None = None
    ) -> Points:
        data = await self._get(_path(app, name), _query(stat, span, source))
        try:
            return Points(int(data["step"]), _points(data["points"]))
        except (TypeError, KeyError, ValueError) as e:
            raise _wrong(f"series {name}") from e

    async def sources(
        self, app: str, name: str, stat: str, span: tuple[int, int]
    ) -> dict[str, Points]:
        """Every source's points of a series (`source=*`), by source."""
        data = await self._get(_path(app, name), _query(stat, span, "*"))
        try:
            step = int(data["step"])
            return {str(k): Points(step, _points(v)) for k, v in data["sources"].items()}
        except (TypeError, KeyError, ValueError, AttributeError) as e:
            raise _wrong(f"series {name}") from e

    async def summaries(self, apps: Sequence[str], since: int = 3600) -> dict[str, Summary]:
        """Requests, errors and p95 of each app the token may read (others left out)."""
        if not apps:
            return {}
        data = await self._get("/v1/summaries", {"apps": ",".join(apps), "since": str(since)})
        try:
            return {
                str(a): Summary(float(s["requests"]), float(s["errors"]), _float(s["p95"]))
                for a, s in data["apps"].items()
            }
        except (TypeError, KeyError, ValueError, AttributeError) as e:
            raise _wrong("the summaries") from e

    async def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        try:
            r = await self.http.get(path, params=params)
        except httpx.HTTPError as e:
            raise Unavailable(
                f"cannot reach the drain at {self.http.base_url} for the metrics "
                f"({type(e).__name__}): try again"
            ) from None
        try:
            data = r.json()
        except ValueError:
            data = None
        if r.status_code == 200:
            return data
        message = data.get("message") if isinstance(data, dict) else None
        if not isinstance(message, str):
            message = f"the drain answered HTTP {r.status_code} to a metrics read"
        raise _refusal(r.status_code, message)


def _path(app: str, name: str) -> str:
    return f"/v1/apps/{quote(app, safe='')}/series/{quote(name, safe='')}"


def _query(stat: str, span: tuple[int, int], source: str | None) -> dict[str, str]:
    query = {"stat": stat, "from": str(span[0]), "until": str(span[1])}
    return query if source is None else query | {"source": source}


def _points(raw: Any) -> list[tuple[int, float | None]]:
    return [(int(t), _float(v)) for t, v in raw]


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


def _refusal(status: int, message: str) -> GunError:
    if status in (401, 403):
        return Forbidden(message)
    if status == 404:
        return NotFound(message)
    return Unavailable(message)


def _wrong(what: str) -> Unavailable:
    return Unavailable(f"the drain answered {what} in a form the dashboard does not read")


def summaries_soon(
    gun: Platform, token: str, apps: Sequence[str], budget: float
) -> Callable[[], dict[str, Summary] | None]:
    """Starts reading the apps' summaries over the last hour at once, on the event loop; the
    function returned waits for them, `budget` seconds after the start at most, and gives None
    when the drain cannot say in time (the apps page shows `–`). From a worker thread: the
    caller reads the Platform meanwhile. An answer is kept SUMMARIES_KEPT seconds for the same
    token and apps (a reload shows it at once)."""
    began = time.monotonic()
    key = (hashlib.sha256(token.encode()).digest(), tuple(apps))
    with _lock:
        kept = _kept.get(key)
    if kept is not None:
        return lambda: kept
    try:
        drain = DrainClient.for_apps(gun, token, budget)
    except GunError:
        return lambda: None

    async def read() -> dict[str, Summary]:
        async with drain:
            return await asyncio.wait_for(drain.summaries(apps), budget)

    loop = from_thread.run_sync(asyncio.get_running_loop)
    future = asyncio.run_coroutine_threadsafe(read(), loop)

    def result() -> dict[str, Summary] | None:
        try:
            got = future.result(max(0.0, budget - (time.monotonic() - began)))
        except (GunError, TimeoutError):
            future.cancel()
            return None
        with _lock:
            _kept[key] = got
        return got

    return result


def memory_now(
    gun: Platform, who: Principal, app: str, token: str, budget: float
) -> dict[str, tuple[float | None, float | None]]:
    """Each process's latest `memory_rss` and `memory_quota` (MB) of the last two minutes, by
    process name, waiting at most `budget` seconds; {} when the drain cannot say in time.
    Blocking: from a worker thread."""

    async def read(drain: DrainClient) -> dict[str, tuple[float | None, float | None]]:
        end = int(time.time())
        span = (end - 120, end)
        async with drain:
            rss, quota = await asyncio.wait_for(
                asyncio.gather(
                    _sources_or_none(drain, app, "memory_rss", span),
                    _sources_or_none(drain, app, "memory_quota", span),
                ),
                budget,
            )
        return {p: (_latest(rss.get(p)), _latest(quota.get(p))) for p in rss.keys() | quota.keys()}

    try:
        return from_thread.run(read, DrainClient.for_app(gun, who, app, token, budget))
    except (GunError, TimeoutError):
        return {}


async def _sources_or_none(
    drain: DrainClient, app: str, name: str, span: tuple[int, int]
) -> dict[str, Points]:
    try:
        return await drain.sources(app, name, "last", span)
    except NotFound:
        return {}


def _latest(points: Points | None) -> float | None:
    values = [v for _, v in points.points if v is not None] if points else []
    return values[-1] if values else None
