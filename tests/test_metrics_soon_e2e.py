"""Metrics within seconds, as a newcomer sees them after `gun up`: the default resolution (60 s),
a metric line sent to the app's ingest URL, `gun metrics` showing its bucket as partial at once
and complete within 5 s of the minute's end, `gun metrics -t` printing it as it completes, and
a sentence when there is nothing to show."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gun.logs.frames import frame
from tests.meta import GUN
from tests.up import Up, running


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    with running(tmp_path_factory.mktemp("soon"), instances=1) as platform:
        yield platform


def post(url: str, msg: str) -> None:
    body = frame(190, time.time(), "app", "web.1", msg)
    r = httpx.post(url, content=body, headers={"Content-Type": "application/logplex-1"})
    assert r.json()["lines"] == 1


def test_no_metrics_yet_says_why(up: Up) -> None:
    up.ok("apps.create", "quiet")
    shown = up.gun("app:quiet", "metrics")
    assert (shown.code, shown.out) == (0, "")
    assert shown.err == (
        "the drain has taken no lines of app quiet since it started: metrics come from lines"
        " with measure#, sample#, count# or unique# and from router lines; buckets are 60 s:"
        " one shows as partial as soon as a metric line comes, and is complete 2 s after its"
        " interval ends\n"
    )
    assert up.json("app:quiet", "metrics") == []
    post(up.json("app:quiet", "drains.ingest")["url"], "just words")
    assert up.gun("app:quiet", "metrics").err.startswith(
        "none of the 1 lines of app quiet the drain took since it started in that time had a"
        " metric (measure#NAME=VALUE, sample#, count#, unique#); buckets are 60 s"
    )
    assert up.gun("app:quiet", "metrics", "db.query").err.startswith(
        "no metric named 'db.query' in that time; buckets are 60 s"
    )


def test_a_bucket_shows_partial_at_once_and_complete_within_5_s_of_its_end(up: Up) -> None:
    up.ok("apps.create", "soon")
    url = up.json("app:soon", "drains.ingest")["url"]
    follow = subprocess.Popen(
        [*GUN, "--json", "app:soon", "metrics", "-t", "since=5m"],
        env=up.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        time.sleep(1.0)  # following from before the line comes
        post(url, "measure#db.query=12ms count#signup=1")
        sent = time.time()
        end = (int(sent) // 60 + 1) * 60  # the bucket's interval ends at the next minute

        def buckets() -> list[dict[str, Any]]:
            got: list[dict[str, Any]] = up.json("app:soon", "metrics", "since=5m")
            return [b for b in got if b["name"] in ("db.query", "signup")]

        first = buckets()
        assert [(b["name"], b["partial"], b["time"]) for b in first] == [
            ("signup", True, end - 60),
            ("db.query", True, end - 60),
        ]
        assert first[1]["count"] == 1 and first[1]["max"] == 12
        (header, row) = up.ok("app:soon", "metrics", "signup", "since=5m").splitlines()
        assert header.split() == ["TIME", "NAME", "SOURCE", "TYPE", "VALUE"]
        assert row.split()[2:] == ["signup", "count", "1", "(partial)"]
        post(url, "measure#db.query=30ms")

        def complete() -> list[dict[str, Any]] | None:
            got = buckets()
            return got if got and not any(b["partial"] for b in got) else None

        done = up.until(complete, end - time.time() + 10, "the complete buckets")
        seen = time.time()
        assert seen - end <= 5.0, f"complete {seen - end:.1f} s after the interval ended"
        assert [(b["name"], b["sum"], b["count"]) for b in done] == [
            ("signup", 1.0, None),
            ("db.query", 42.0, 2),
        ]
        # `metrics -t` printed each as it completed, one JSON object a line
        followed: list[dict[str, Any]] = []
        assert follow.stdout is not None
        while len(followed) < 2:
            followed.append(json.loads(follow.stdout.readline()))
        assert {(b["name"], b["partial"]) for b in followed} == {
            ("signup", False),
            ("db.query", False),
        }
    finally:
        os.killpg(follow.pid, signal.SIGTERM)
        follow.wait(10)
