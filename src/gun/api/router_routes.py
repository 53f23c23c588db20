"""The router's route: `GET /v1/router/routes?after=DIGEST&wait=S`, a long-poll of the routing
table (gun.router.table).

It answers at once when the table's digest is not `after`, else when it changes, or at `wait`.
The table is read at most once per READ_EVERY for all waiting routers (one query per kind of
row), so a change an agent reports reaches the routers within READ_EVERY; a router applies it
well within the preboot drain (GUN_PREBOOT_DRAIN, 2 s) before the replaced process is stopped.
"""

from __future__ import annotations

import asyncio
import json
import time

from anyio import to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from gun.api.auth import Gun, Who, token_of
from gun.core import Platform
from gun.model import Principal
from gun.router.table import Table, to_json

router = APIRouter(prefix="/v1")
READ_EVERY = 0.25  # seconds: how stale a table served to a waiting router may be
LONG_POLL_SECONDS = 25.0


class TableCache:
    """The newest table, read at most once per READ_EVERY whoever asks."""

    def __init__(self) -> None:
        self._table: tuple[Table, str] | None = None  # and its digest, computed once
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self, platform: Platform, who: Principal) -> tuple[Table, str]:
        platform.routing.check(who)  # every caller's token is judged, cached table or not
        async with self._lock:
            if self._table is None or time.monotonic() - self._read_at >= READ_EVERY:
                table = await to_thread.run_sync(platform.routing.table, who)
                self._table = (table, table.digest)
                self._read_at = time.monotonic()
            return self._table


@router.get("/router/routes", response_class=Response)
async def routes(
    request: Request,
    who: Who,
    gun: Gun,
    after: str = Query("", max_length=64),
    wait: float = Query(LONG_POLL_SECONDS, ge=0, le=60),
) -> Response:
    """The routing table; with `after`, once its digest is another (or at `wait`)."""
    cache: TableCache = request.app.state.routes
    table, digest = await cache.get(gun, who)
    deadline = time.monotonic() + wait
    while digest == after and time.monotonic() < deadline:
        await asyncio.sleep(min(READ_EVERY, max(0.0, deadline - time.monotonic())))
        # judged again: a token revoked while its long-poll waits gets no table (a cached
        # token costs no query: gun.core.tokens)
        who = gun.tokens.authenticate(token_of(request.headers.get("authorization")))
        table, digest = await cache.get(gun, who)
    return Response(json.dumps(to_json(table)), media_type="application/json")
