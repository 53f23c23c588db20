"""The drain benchmarks' traffic: logplex bodies of two mixes, 100 frames each, stamped now.

- `bench` (bench/drain.py's since issue 5), per 100 lines: 25 router lines, 25 app lines with
  measure#/count#/sample#, 10 runtime-metric lines (load and three memory samples), 40 plain
  lines; four web processes, short paths, request ids made from a counter.
- `production`, closer to what a busy Heroku app sends, per 100 lines: 30 router lines with
  long quoted paths and query strings, real (random) UUID request ids and two forwarded
  addresses, 1 in 25 an H12 or H10 error; 20 app lines in logfmt with quoted values and two to
  four measures each; 15 runtime-metric lines, memory lines with all seven
  `sample#memory_*` fields and load lines with the three load averages; 35 plain lines of
  100-300 bytes. Sources: 8 web and 4 worker processes.

`bodies(mix, count)` returns `count` distinct bodies; the same seed gives the same bodies.
"""

from __future__ import annotations

import random
import time
import uuid

FRAMES_PER_BODY = 100
MIXES = ("bench", "production")


def frame(appname: str, procid: str, msg: str, stamp: str) -> bytes:
    text = f"<190>1 {stamp} host {appname} {procid} - {msg}\n".encode()
    return b"%d %s" % (len(text), text)


def now_stamp(at: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime(at))


def timed_bodies(mix: str, count: int, start: int, seconds: int) -> list[list[bytes]]:
    """`count` bodies for each second from `start` (epoch seconds) on, `seconds` of them, each
    stamped with its second: a client sends those of the second it is in, so that the drain's
    buckets open and close as with live traffic (lines all of one past minute would be late,
    and every late line makes its whole bucket flushed again)."""
    first = now_stamp(start).encode()
    base = bodies(mix, count, first.decode())
    return [[b.replace(first, now_stamp(start + k).encode()) for b in base] for k in range(seconds)]


def bodies(mix: str, count: int, stamp: str | None = None, seed: int = 1) -> list[bytes]:
    stamp = stamp or now_stamp()
    if mix == "bench":
        return [_bench_body(b, stamp) for b in range(count)]
    if mix == "production":
        rng = random.Random(seed)
        return [_production_body(rng, stamp) for _ in range(count)]
    raise SystemExit(f"unknown mix {mix!r}: use {' or '.join(MIXES)}")


_ROUTER = (
    "at=info method=GET path=/items/{n} host=shop.example.com request_id={u} "
    'fwd="10.1.2.3" dyno=web.{d} connect=1ms service={s}ms status={st} bytes=4312 '
    "protocol=https"
)


def _bench_body(b: int, stamp: str) -> bytes:
    frames = []
    for i in range(FRAMES_PER_BODY):
        n = b * FRAMES_PER_BODY + i
        kind = i % 20
        if kind < 5:
            st = (200, 200, 404, 500)[n % 4]
            msg = _ROUTER.format(n=n, u=uuid.UUID(int=n), d=n % 4 + 1, s=n % 300, st=st)
            frames.append(frame("heroku", "router", msg, stamp))
        elif kind < 10:
            msg = f"measure#db.query={n % 50}ms count#orders=1 sample#queue.depth={n % 9}jobs"
            frames.append(frame("app", f"web.{n % 4 + 1}", msg, stamp))
        elif kind < 12:
            msg = (
                f"source=web.{n % 4 + 1} dyno=heroku.shop.i-1 sample#load_avg_1m=0.4{n % 9} "
                "sample#memory_total=210.00MB sample#memory_rss=200.12MB "
                "sample#memory_quota=512.00MB"
            )
            frames.append(frame("heroku", f"web.{n % 4 + 1}", msg, stamp))
        else:
            msg = f'Started GET "/items/{n}" for 10.1.2.3 at 2026-11-26 12:00:00 +0000'
            frames.append(frame("app", f"web.{n % 4 + 1}", msg, stamp))
    return b"".join(frames)


_PROCS = [f"web.{i}" for i in range(1, 9)] + [f"worker.{i}" for i in range(1, 5)]
_WEB = _PROCS[:8]
_PATHS = [
    "/api/v2/accounts/{a}/projects/{p}/issues?state=open&sort=updated&direction=desc&page={g}",
    "/storefront/collections/summer-sale/products/{p}-linen-shirt?variant={a}&utm_source=news",
    "/assets/application-{h}.js",
    "/graphql?operationName=ProductDetails&variables=%7B%22id%22%3A%22{p}%22%7D",
    "/users/{a}/notifications/unread/count",
]
_WORDS = [
    "cache",
    "hit",
    "miss",
    "for",
    "key",
    "session",
    "user",
    "account",
    "order",
    "invoice",
    "payment",
    "retry",
    "queue",
    "job",
    "enqueued",
    "completed",
    "failed",
    "timeout",
    "connection",
    "pool",
    "checkout",
    "returned",
    "rendered",
    "partial",
    "template",
    "layout",
    "controller",
    "action",
    "params",
    "filtered",
    "redirect",
]


def _router_line(rng: random.Random) -> str:
    path = rng.choice(_PATHS).format(
        a=rng.randrange(1, 99999), p=rng.randrange(1, 9999999), g=rng.randrange(1, 40),
        h=f"{rng.getrandbits(128):032x}",
    )  # fmt: skip
    fwd = f"{rng.randrange(1, 255)}.{rng.randrange(255)}.{rng.randrange(255)}.{rng.randrange(255)}"
    rid = uuid.UUID(int=rng.getrandbits(128), version=4)
    method = rng.choice(("GET", "GET", "GET", "POST", "PUT", "DELETE"))
    head = f'at=info method={method} path="{path}" host=shop.example.com request_id={rid}'
    head += f' fwd="{fwd},10.0.{rng.randrange(255)}.{rng.randrange(255)}"'
    roll = rng.random()
    if roll < 0.02:
        head = head.replace("at=info", 'at=error code=H12 desc="Request timeout"', 1)
        tail = f"dyno={rng.choice(_WEB)} connect=0ms service=30000ms status=503 bytes=0"
    elif roll < 0.04:
        head = head.replace("at=info", 'at=error code=H10 desc="App crashed"', 1)
        tail = "dyno= connect= service= status=503 bytes="
    else:
        status = rng.choice((200, 200, 200, 200, 201, 204, 301, 304, 404, 422, 500))
        tail = (
            f"dyno={rng.choice(_WEB)} connect={rng.randrange(0, 5)}ms "
            f"service={rng.randrange(1, 2000)}ms status={status} bytes={rng.randrange(0, 90000)}"
        )
    return f"{head} {tail} protocol=https"


def _app_line(rng: random.Random, proc: str) -> str:
    user = rng.choice(("ada lovelace", "grace hopper", "alan turing", "edsger dijkstra"))
    measures = [
        f"measure#db.query={rng.randrange(0, 400) / 10}ms",
        f"measure#render.view={rng.randrange(1, 90)}ms",
        f"measure#cache.fetch={rng.randrange(0, 50) / 10}ms",
        "count#orders.created=1",
        f"sample#queue.depth={rng.randrange(0, 300)}jobs",
        f"measure#http.external={rng.randrange(20, 900)}ms",
    ]
    chosen = rng.sample(measures, rng.randrange(2, 5))
    return (
        f'at=info msg="checkout {rng.choice(_WORDS)} finished" user="{user}" '
        f"source={proc} " + " ".join(chosen) + f' path="/orders/{rng.randrange(99999)}/pay"'
    )


def _memory_line(proc: str, rng: random.Random) -> str:
    rss = rng.randrange(100, 500) + rng.random()
    return (
        f"source={proc} dyno=heroku.2808254.{uuid.UUID(int=rng.getrandbits(128), version=4)} "
        f"sample#memory_total={rss + 3:.2f}MB sample#memory_rss={rss:.2f}MB "
        f"sample#memory_cache={rng.randrange(0, 20)}.00MB sample#memory_swap=0.00MB "
        f"sample#memory_pgpgin={rng.randrange(100000, 999999)}pages "
        f"sample#memory_pgpgout={rng.randrange(100000, 999999)}pages "
        "sample#memory_quota=512.00MB"
    )


def _load_line(proc: str, rng: random.Random) -> str:
    return (
        f"source={proc} dyno=heroku.2808254.{uuid.UUID(int=rng.getrandbits(128), version=4)} "
        f"sample#load_avg_1m={rng.random() * 4:.2f} sample#load_avg_5m={rng.random() * 3:.2f} "
        f"sample#load_avg_15m={rng.random() * 2:.2f}"
    )


def _plain_line(rng: random.Random) -> str:
    size = rng.randrange(100, 301)
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


def _production_body(rng: random.Random, stamp: str) -> bytes:
    kinds = ["router"] * 30 + ["app"] * 20 + ["memory"] * 8 + ["load"] * 7 + ["plain"] * 35
    rng.shuffle(kinds)
    frames = []
    for kind in kinds:
        proc = rng.choice(_PROCS)
        if kind == "router":
            frames.append(frame("heroku", "router", _router_line(rng), stamp))
        elif kind == "app":
            frames.append(frame("app", proc, _app_line(rng, proc), stamp))
        elif kind == "memory":
            frames.append(frame("heroku", proc, _memory_line(proc, rng), stamp))
        elif kind == "load":
            frames.append(frame("heroku", proc, _load_line(proc, rng), stamp))
        else:
            frames.append(frame("app", proc, _plain_line(rng), stamp))
    return b"".join(frames)
