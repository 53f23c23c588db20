"""Buckets through the real chain: StatsdOutlet -> statsd 0.9.0 -> carbon-cache -> whisper
files, read back with the whisper module. Fails (never skips) without node and npm."""

from __future__ import annotations

import time
from pathlib import Path

from gun.logs.model import Bucket, Key, MetricType
from gun.logs.outlets import StatsdOutlet
from tests.graphite import statsd_and_carbon, wait_for_values
from tests.up import running


def _key(name: str, type_: MetricType, unit: str = "", source: str | None = None) -> Key:
    start = int(time.time()) // 60 * 60
    return Key("demo", name, source, unit, type_, start, 60)


def test_buckets_land_in_graphite_where_the_docstring_says(tmp_path: Path) -> None:
    twelve = ("min", "max", "mean", "median", "p95", "p99")
    buckets = [
        Bucket(
            _key("db.query", "measure", "ms"),
            count=1,
            sum=12.0,
            min=12.0,
            max=12.0,
            mean=12.0,
            median=12.0,
            p95=12.0,
            p99=12.0,
        ),
        Bucket(_key("signup", "count"), sum=1.0),
        Bucket(_key("memory_rss", "sample", "MB", source="web.1"), last=21.22),
        Bucket(_key("user", "unique"), unique=3),
    ]
    expected = {
        "stats.counters.gun.demo.signup.count": 1.0,
        "stats.counters.gun.demo.signup.rate": 1.0,  # per second, flushInterval 1 s
        "stats.counters.gun.demo.db.query.count": 1.0,
        "stats.counters.gun.demo.db.query.sum.count": 12.0,
        **{f"stats.gauges.gun.demo.db.query.{stat}": 12.0 for stat in twelve},
        "stats.gauges.gun.demo.memory_rss.web_1": 21.22,
        "stats.gauges.gun.demo.user": 3.0,
    }
    with statsd_and_carbon(tmp_path) as (statsd_port, whisper_dir):
        outlet = StatsdOutlet("127.0.0.1", statsd_port)
        outlet.emit(buckets)
        outlet.close()
        found = wait_for_values(whisper_dir, expected, timeout=30)

    assert (outlet.sent, outlet.errors) == (1, 0)
    # Counters are counted once: later flushes of statsd add zeros.
    for metric in ("signup.count", "db.query.count", "db.query.sum.count"):
        series = found[f"stats.counters.gun.demo.{metric}"]
        assert sum(series) == expected[f"stats.counters.gun.demo.{metric}"], (metric, series)
    # Gauges hold their value from the first flush on.
    for metric, want in expected.items():
        if metric.startswith("stats.gauges."):
            assert set(found[metric]) == {want}, (metric, found[metric])


def test_an_apps_log_line_reaches_graphite_through_the_drain_and_statsd(tmp_path: Path) -> None:
    """The issue's chain: a process prints l2met metrics; the agent ships the line to the
    drain; the drain's statsd outlet sends it to the real statsd, which flushes to the real
    carbon-cache, which writes the whisper files checked here."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "Procfile").write_text(
        "worker: python3 -c \"print('measure#db.query=12ms count#signup=1', flush=True); "
        'import time; time.sleep(3600)"\n'
    )
    with statsd_and_carbon(tmp_path / "graphite") as (statsd_port, whisper_dir):
        (tmp_path / "gun").mkdir()
        settings = {"GUN_STATSD": f"127.0.0.1:{statsd_port}", "GUN_METRICS_RESOLUTION": "1"}
        with running(tmp_path / "gun", instances=1, **settings) as up:
            up.ok("apps.create", "metered")
            up.ok("app:metered", "deploy", f"dir={app}")
            up.ok("app:metered", "scale", "worker=1")
            found = wait_for_values(
                whisper_dir,
                {
                    "stats.counters.gun.metered.signup.count": 1.0,
                    "stats.counters.gun.metered.db.query.count": 1.0,
                    "stats.gauges.gun.metered.db.query.min": 12.0,
                    "stats.gauges.gun.metered.db.query.p99": 12.0,
                },
                timeout=60,
            )
    assert sum(found["stats.counters.gun.metered.signup.count"]) == 1.0
    assert set(found["stats.gauges.gun.metered.db.query.min"]) == {12.0}
