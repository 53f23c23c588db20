"""The metrics page's routes, on the dashboard's router (pages.py): charts of an app's series,
read from the drain as the session's token (drainclient.py), drawn as inline SVG (charts.py).

route                                        what
GET /dash/apps/{app}/metrics?range=&metric=  the page: range 1h, 1d or 1w; metric, a custom
                                             series to chart
GET /dash/apps/{app}/metrics/charts?...      its charts section alone (live.js refetches it)

Whoever may see the app sees its metrics (viewers too); a token scoped to another app gets 404,
as for its other pages. A drain that cannot be reached, or keeps no whisper files, leaves the
page with one sentence saying so where the charts would be.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

from anyio import from_thread
from fastapi import Request
from fastapi.responses import Response

from gun.dashboard import charts as draw
from gun.dashboard import metrics
from gun.dashboard.drainclient import DrainClient
from gun.dashboard.pages import app_path, platform_of, render, router, signed_in, visible
from gun.dashboard.session import Session
from gun.errors import GunError, NotFound
from gun.logs import series
from gun.logs.series import Series
from gun.model import Release

LIVE_EVERY = 10  # seconds between live.js's refetches of the charts
T = TypeVar("T")


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    svg: str
    legend: list[tuple[str, str]]  # (label, colour)


@dataclass(frozen=True)
class Shown:
    figures: list[Figure]
    note: str | None  # why there are no charts
    custom: list[str]  # the app's own series names
    metric: str | None


def query_of(request: Request) -> tuple[str, str | None]:
    """(range, metric) the query asks for; InvalidParams for a range or a metric name the
    page does not know the form of (the drain judges the name again)."""
    q = request.query_params
    metric = q.get("metric") or None
    if metric is not None:
        series.name_parts(metric)
    return metrics.range_of(q.get("range")), metric


def shown(request: Request, s: Session, app: str, span_name: str, metric: str | None) -> Shown:
    """The charts of `app` (blocking: Platform reads here, the drain's through the event
    loop)."""
    visible(s.who, app)
    gun = platform_of(request)
    gun.apps.get(s.who, app)  # NotFound for no app
    end = int(time.time())
    span = (end - metrics.RANGES[span_name], end)
    releases = [
        r for r in gun.releases.all(s.who, app, limit=200) if r.created_at.timestamp() >= span[0]
    ]
    token = s.token
    try:
        client = DrainClient.for_app(gun, s.who, app, token)
        listing, read, metric = from_thread.run(_read, client, app, span, metric)
    except GunError as e:
        return Shown([], f"No metrics: {e.message}", [], None)
    figures = _figures(read, span, releases, metric, listing)
    return Shown(figures, None, metrics.custom_names(listing), metric)


async def _read(
    client: DrainClient, app: str, span: tuple[int, int], metric: str | None
) -> tuple[list[Series], metrics.Read, str | None]:
    """The app's listing, the reads its charts want, and the custom metric charted (the one
    asked for, else the first)."""
    async with client:
        listing = await client.listing(app)
        custom = metrics.custom_names(listing)
        if metric is None and custom:
            metric = custom[0]
        want = metrics.wanted(listing, metric)
        single = await asyncio.gather(
            *(_absent(client.points(app, n, st, span)) for n, st in want.single)
        )
        per_source = await asyncio.gather(
            *(_absent(client.sources(app, n, st, span)) for n, st in want.per_source)
        )
    read = metrics.Read(
        {k: v for k, v in zip(want.single, single, strict=True) if v is not None},
        {k: v for k, v in zip(want.per_source, per_source, strict=True) if v is not None},
    )
    return listing, read, metric


async def _absent(read: Awaitable[T]) -> T | None:
    """A series gone between the listing and the read (NotFound): absent."""
    try:
        return await read
    except NotFound:
        return None


def _figures(
    read: metrics.Read,
    span: tuple[int, int],
    releases: list[Release],
    metric: str | None,
    listing: list[Series],
) -> list[Figure]:
    return [
        Figure(
            c.key,
            c.title,
            draw.svg(c),
            [(line.label, draw.colour_of(i)) for i, line in enumerate(c.lines)],
        )
        for c in metrics.charts(read, span, releases, metric, listing)
    ]


def metrics_page(request: Request, s: Session) -> Response:
    app = request.path_params["app"]
    span_name, metric = query_of(request)
    got = shown(request, s, app, span_name, metric)
    query = {"range": span_name} | ({"metric": got.metric} if got.metric else {})
    return render(
        "metrics.html",
        session=s,
        title=f"{app} · metrics",
        app=app,
        path=app_path(app),
        ranges=list(metrics.RANGES),
        span=span_name,
        shown=got,
        live=f"/dash{app_path(app)}/metrics/charts?{urlencode(query)}",
        every=LIVE_EVERY,
    )


def metrics_charts(request: Request, s: Session) -> Response:
    app = request.path_params["app"]
    span_name, metric = query_of(request)
    return render("charts.html", shown=shown(request, s, app, span_name, metric))


router.add_api_route("/apps/{app}/metrics", signed_in(metrics_page), methods=["GET"])
router.add_api_route("/apps/{app}/metrics/charts", signed_in(metrics_charts), methods=["GET"])
