"""Whisper outlet: every statistic of every series in its own whisper file, laid out exactly as
carbon lays out Graphite's, so graphite-web (or anything reading whisper) serves them as is.

Layout under ROOT (names made safe by `paths.py`):

    metric path   gun.APP.NAME[.SOURCE].STAT
    file          ROOT/gun/APP/NAME.../[SOURCE/]STAT.wsp      (one directory per dot)

    count#signup=1                       ROOT/gun/demo/signup/sum.wsp
    sample#memory_rss=21MB source=web.1  ROOT/gun/demo/memory_rss/web_1/last.wsp
    unique#user=ann                      ROOT/gun/demo/user/unique.wsp
    measure#db.query=12ms                ROOT/gun/demo/db/query/{count,sum,min,max,mean,
                                                               median,p95,p99}.wsp

The unit is not part of the path (the same name measured in two units, or used with two
types, shares files). Each point is written at the start time of its bucket.

A file is created on first use from the outlet's retentions (Graphite syntax, default
`1s:1h,10s:1d,60s:30d`) adapted to the bucket's resolution so that its finest archive holds
exactly one bucket per point: see `archives_for` (60 s buckets get `60s:30d`, 10 s buckets
`10s:1d,60s:30d`). When whisper rolls points up into a coarser archive it sums `count` and
`sum`, keeps the minimum of `min`, the maximum of `max` and `unique`, the last `last`, and
averages the rest; with xFilesFactor 0, since a series only has buckets where lines were
logged. Points older than a file's longest retention are dropped by whisper.

Writes are blocking disk I/O: one `whisper.update_many` per file per emit. A file that cannot
be created or written is logged and counted in `errors`; the other files are still written.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import whisper  # type: ignore[import-untyped]

from gun import isolation
from gun.errors import InvalidParams
from gun.logs.model import Bucket, Key
from gun.logs.outlets.paths import series_parts, stat_values

log = logging.getLogger(__name__)

DEFAULT_RETENTIONS = "1s:1h,10s:1d,60s:30d"

# How whisper rolls a statistic up into a coarser archive.
AGGREGATION = {
    "count": "sum",
    "sum": "sum",
    "min": "min",
    "max": "max",
    "unique": "max",
    "last": "last",
}

Archive = tuple[int, int]  # (seconds per point, number of points), as whisper takes them


def parse_retentions(text: str) -> list[Archive]:
    """`1s:1h,10s:1d` -> [(1, 3600), (10, 8640)]; InvalidParams when whisper would refuse it."""
    try:
        archives = [whisper.parseRetentionDef(p) for p in text.split(",")]
        whisper.validateArchiveList(list(archives))
    except (ValueError, whisper.WhisperException) as e:
        raise InvalidParams(
            f"whisper retentions {text!r} are not valid ({e}); write them as Graphite does, "
            f"e.g. {DEFAULT_RETENTIONS}"
        ) from e
    return sorted((int(p), int(n)) for p, n in archives)


def archives_for(resolution: int, archives: Sequence[Archive]) -> list[Archive]:
    """The archives of a file holding buckets of `resolution` seconds: each precision rounded up
    to a multiple of the previous one (starting at the resolution), each retention kept, equal
    precisions merged keeping the longest. A single archive if that is not valid whisper."""
    found: list[Archive] = []
    step = resolution
    for precision, points in sorted(archives):
        span = precision * points
        step = math.ceil(precision / step) * step
        count = math.ceil(span / step)
        if found and found[-1][0] == step:
            found[-1] = (step, max(count, found[-1][1]))
        else:
            found.append((step, count))
    try:
        whisper.validateArchiveList(list(found))
    except whisper.WhisperException:
        longest = max(p * n for p, n in archives)
        return [(resolution, math.ceil(longest / resolution))]
    return found


class WhisperOutlet:
    """Writes buckets to whisper files under `root` (see the module docstring for the layout)."""

    def __init__(
        self, root: Path, retentions: str = DEFAULT_RETENTIONS, prefix: str = "gun"
    ) -> None:
        self.root = Path(root)
        self.archives = parse_retentions(retentions)
        self.prefix = prefix
        self.errors = 0
        self.created = 0
        self._exists: set[Path] = set()

    def path(self, key: Key, stat: str) -> Path:
        """The file of one statistic of one series."""
        *dirs, leaf = [*series_parts(self.prefix, key), stat]
        return self.root.joinpath(*dirs, f"{leaf}.wsp")

    def emit(self, buckets: Sequence[Bucket]) -> None:
        points: dict[Path, list[tuple[int, float]]] = {}
        made_as: dict[Path, tuple[str, int]] = {}  # the statistic and resolution of each file
        for bucket in buckets:
            for stat, value in stat_values(bucket):
                path = self.path(bucket.key, stat)
                points.setdefault(path, []).append((bucket.key.time, value))
                made_as.setdefault(path, (stat, bucket.key.resolution))
        for path, series in points.items():
            try:
                if path not in self._exists:
                    self._create(path, *made_as[path])
                whisper.update_many(str(path), series)
            except (OSError, whisper.WhisperException) as e:
                self.errors += 1
                self._exists.discard(path)
                log.warning("whisper outlet: cannot write %s: %s", path, e)

    def _create(self, path: Path, stat: str, resolution: int) -> None:
        if not path.exists():
            isolation.make_dir(path.parent, isolation.PRIVATE_DIR)
            try:
                whisper.create(
                    str(path),
                    archives_for(resolution, self.archives),
                    xFilesFactor=0.0,
                    aggregationMethod=AGGREGATION.get(stat, "average"),
                )
                os.chmod(path, isolation.PRIVATE_FILE)
                self.created += 1
            except whisper.InvalidConfiguration:
                if not path.exists():  # else another writer created it first: use theirs
                    raise
        self._exists.add(path)

    def close(self) -> None:
        self._exists.clear()
