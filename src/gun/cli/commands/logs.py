"""drains, drains.add, drains.remove, drains.ingest (meta); logs and metrics (the drain)."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from gun.cli import output
from gun.cli.client import Client, Unreachable
from gun.cli.commands.apps import p
from gun.cli.context import Ctx, app_option, need_app, pass_ctx
from gun.errors import UsageError

RECONNECTS = 30  # `logs -t` picks the stream up again this many times after losing the drain


@click.command("drains")
@app_option
@pass_ctx
def drains(ctx: Ctx, app: str | None) -> None:
    """The app's log drains (besides the platform's own)."""
    data = ctx.client().get(f"/v1/apps/{p(need_app(app))}/drains")
    if ctx.json:
        output.emit_json(data)
        return
    output.table(
        ["ID", "URL", "TOKEN", "CREATED"],
        [[d["id"], d["url"], d["token"], output.short_time(d["created_at"])] for d in data],
    )


@click.command("drains.add")
@click.argument("url")
@app_option
@pass_ctx
def drains_add(ctx: Ctx, url: str, app: str | None) -> None:
    """Send the app's logs to URL too: gun drains.add:https://logs.example.com/ingest."""
    name = need_app(app)
    d = ctx.client().post(f"/v1/apps/{p(name)}/drains", {"url": url})
    if ctx.json:
        output.emit_json(d)
    else:
        output.line(f"Drain {d['id']} added to {name}: {d['url']} (token {d['token']})")


@click.command("drains.remove")
@click.argument("drain_id", metavar="ID")
@app_option
@pass_ctx
def drains_remove(ctx: Ctx, drain_id: str, app: str | None) -> None:
    """Stop draining to a drain: gun drains.remove:ID."""
    name = need_app(app)
    if not (drain_id.isascii() and drain_id.isdigit()):
        raise UsageError(f"drain id {drain_id!r} is not a number: `gun drains` lists them")
    ctx.client().delete(f"/v1/apps/{p(name)}/drains/{int(drain_id)}")
    output.line(f"Drain {drain_id} removed from {name}")


@click.command("drains.ingest")
@click.option("--resolution", type=int, help="seconds per metric bucket (1 to 3600)")
@click.option(
    "--rotate",
    type=click.BOOL,
    default=False,
    help="make a new URL (rotate=true): the old one is refused from now on",
)
@app_option
@pass_ctx
def drains_ingest(ctx: Ctx, resolution: int | None, rotate: bool, app: str | None) -> None:
    """The URL any logplex sender (a Heroku app while migrating) can drain into;
    rotate=true replaces its token (the app's own agents move to the new URL by themselves)."""
    name = need_app(app)
    params = {"resolution": resolution} if resolution is not None else {}
    path = f"/v1/apps/{p(name)}/drains/ingest"
    if rotate:
        data = ctx.client().request("POST", path, params=params)
    else:
        data = ctx.client().get(path, params=params)
    if ctx.json:
        output.emit_json(data)
        return
    if rotate:
        output.note(f"Rotated the ingest URL of {name}: the old one is refused from now on")
    output.line(data["url"])


def drain_client(ctx: Ctx, name: str) -> Client:
    """A client for the drain that holds the app's logs, with this user's token."""
    meta = ctx.client()
    url = meta.get(f"/v1/apps/{p(name)}/log-session")["url"]
    return Client(url, meta.token)


@click.command("logs")
@click.option("-n", "--num", default=100, show_default=True, help="how many lines")
@click.option("-t", "--tail", is_flag=True, help="follow live, across all instances")
@click.option("--ps", help="a process type (web) or name (web.1)")
@click.option("--source", help="app or heroku")
@click.option("--since", help="30s, 15m, 2h, 7d or an RFC 3339 time")
@click.option("--grep", help="only lines containing TEXT")
@app_option
@pass_ctx
def logs(
    ctx: Ctx,
    num: int,
    tail: bool,
    ps: str | None,
    source: str | None,
    since: str | None,
    grep: str | None,
    app: str | None,
) -> None:
    """Recent log lines from the archive, oldest first; -t follows live."""
    from gun.logs.filters import Filter  # checks the words here: exit code 2, not 1

    name = need_app(app)
    words = {"n": str(num), "ps": ps, "source": source, "since": since, "grep": grep}
    query = {k: v for k, v in words.items() if v is not None}
    Filter.parse(query)
    drain = drain_client(ctx, name)
    for text in drain.get(f"/v1/apps/{p(name)}/logs", params=query)["lines"]:
        output.line(text)
    if tail:
        follow(drain, name, {k: v for k, v in query.items() if k != "n"})


def follow(drain: Client, name: str, query: dict[str, str]) -> None:
    lost = 0
    while True:
        try:
            with drain.stream("GET", f"/v1/apps/{p(name)}/logs/tail", params=query) as r:
                lost = 0
                for text in r.iter_text():
                    sys.stdout.write(text)
                    sys.stdout.flush()
        except Unreachable:
            lost += 1
            if lost > RECONNECTS:
                raise
            time.sleep(1.0)


METRIC_FIELDS = (
    "name",
    "source",
    "unit",
    "type",
    "time",
    "count",
    "sum",
    "min",
    "max",
    "mean",
    "median",
    "p95",
    "p99",
    "last",
    "unique",
    "partial",
)
FOLLOW_EVERY = 1.0  # seconds between a following `metrics -t`'s asks
FOLLOWED = "5m"  # how far back `metrics -t` looks for buckets completed (or late) since


@click.command("metrics")
@click.argument("metric", metavar="NAME", required=False)
@click.option("--since", default="1h", show_default=True, help="30s, 15m, 2h, 7d")
@click.option("-t", "--tail", is_flag=True, help="follow: print each bucket as it completes")
@app_option
@pass_ctx
def metrics(ctx: Ctx, metric: str | None, since: str, tail: bool, app: str | None) -> None:
    """Metric series derived from the app's logs, one row per bucket; the buckets still open
    are marked partial."""
    name = need_app(app)
    drain = drain_client(ctx, name)
    query = {"since": since, **({"name": metric} if metric else {})}
    data, headers = drain.response("GET", f"/v1/apps/{p(name)}/metrics", params=query)
    rows = [{k: b[k] for k in METRIC_FIELDS} for b in data]
    if ctx.json and not tail:
        output.emit_json(rows)
        return
    table = [["TIME", "NAME", "SOURCE", "TYPE", "VALUE"], *(_row(b) for b in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    if not rows and "gun-note" in headers:
        output.note(headers["gun-note"])
    elif not ctx.json:
        for r in table:
            print(_aligned(r, widths))
    else:
        for b in rows:
            output.emit_json_line(b)
    if tail:
        _follow(ctx, drain, name, query, rows, widths)


def _follow(
    ctx: Ctx,
    drain: Client,
    name: str,
    query: dict[str, str],
    rows: list[dict[str, Any]],
    widths: list[int],
) -> None:
    """Print every bucket that completes, or changes once complete, until interrupted:
    a row each (a JSON object a line with --json)."""
    seen = drain.get(f"/v1/apps/{p(name)}/metrics", params=dict(query, since=FOLLOWED))
    shown = {_key(b): b for b in [*seen, *rows] if not b["partial"]}  # complete already
    while True:
        time.sleep(FOLLOW_EVERY)
        oldest = min((b["time"] for b in rows if b["partial"]), default=None)
        ago = FOLLOWED if oldest is None else f"{max(1, int(time.time() - oldest) + 1)}s"
        ask = dict(query, since=ago)  # from the oldest bucket still open
        rows = drain.get(f"/v1/apps/{p(name)}/metrics", params=ask)
        for b in rows:
            if b["partial"] or shown.get(_key(b)) == b:
                continue
            shown[_key(b)] = b
            b = {k: b[k] for k in METRIC_FIELDS}
            if ctx.json:
                output.emit_json_line(b)
            else:
                row = _row(b)
                widths = [max(w, len(c)) for w, c in zip(widths, row, strict=False)]
                print(_aligned(row, widths), flush=True)


def _aligned(row: list[str], widths: list[int]) -> str:
    """A table row: the first columns padded to `widths`, the last as it is."""
    return "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]])


def _key(b: dict[str, Any]) -> tuple[Any, ...]:
    return (b["name"], b["source"], b["unit"], b["type"], b["time"])


def _row(b: dict[str, Any]) -> list[str]:
    value = _value(b) + (" (partial)" if b["partial"] else "")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(b["time"]))
    return [when, b["name"], b["source"] or "", b["type"], value]


def _value(b: dict[str, Any]) -> str:
    unit = b["unit"] or ""
    if b["type"] == "count":
        return f"{b['sum']:g}{unit}"
    if b["type"] == "sample":
        return f"{b['last']:g}{unit}"
    if b["type"] == "unique":
        return f"{b['unique']} distinct"
    return (
        f"count={b['count']} mean={b['mean']:g}{unit} p95={b['p95']:g}{unit} max={b['max']:g}{unit}"
    )
