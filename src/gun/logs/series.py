"""Reading the whisper files back: which series an app has, and one series' points over a time
range, for the dashboard's charts. Names and ranges are judged here (pure); the listing and the
reads touch the disk (blocking: callers run them off the event loop).

Layout (outlets/whisper.py): ROOT/gun/APP/NAME.../[SOURCE/]STAT.wsp, every part made safe by
outlets/paths.py (`[A-Za-z0-9_-]`, so never `.`, `/` or empty).

- A series is a directory holding `.wsp` files; its name is its path below the app's
  directory, parts joined by dots (`router/status/2xx` -> `router.status.2xx`), its stats the
  files' stems (`sum`, `p95`, `last` ...).
- Its source. Files do not say whether a last directory was a source or a part of the name;
  a last part of the form of a process (`web_1`: a type, `_`, a number), under a directory
  holding no `.wsp` of its own, is read as the source `web.1`. A custom metric named like
  `db.shard_1` would be shown as `db` of source `shard.1`: a limit of the layout carbon uses.
- A name given by a client is dotted parts, each 1 to 64 characters of `[A-Za-z0-9_-]`, at
  most MAX_PARTS parts: no `..`, no `/`, no `%` can reach the disk. A stat is one of
  paths.STATS; a source is a process name (`web.1`) or `*` (every source of the series).
- A range is whole epoch seconds, from < until, at most MAX_SPAN long, until at most an hour
  ahead of now; whisper answers nulls where nothing was written.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import whisper  # type: ignore[import-untyped]

from gun.errors import InvalidParams, NotFound
from gun.logs.outlets.paths import STATS, part

PREFIX = "gun"  # the whisper outlet's (WhisperOutlet's default; the drain uses no other)
MAX_PARTS = 10
MAX_SPAN = 31 * 86400  # the longest whisper retention gun writes is 30 days
MAX_AHEAD = 3600
ALL = "*"  # the source meaning every source of a series
KNOWN_STATS = frozenset(s for stats in STATS.values() for s in stats)
_PART = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_SOURCE_DIR = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)_([0-9]{1,6})\Z")
_SOURCE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}\.[0-9]{1,6}\Z")
_EPOCH = re.compile(r"[0-9]{1,12}\Z")

Point = tuple[int, float | None]


@dataclass(frozen=True)
class Series:
    """One series present: its dotted name, its source (`web.1`) or None, its stats."""

    name: str
    source: str | None
    stats: tuple[str, ...]

    def json(self) -> dict[str, object]:
        return {"name": self.name, "source": self.source, "stats": list(self.stats)}


@dataclass(frozen=True)
class Points:
    """A series' points over a range: one every `step` seconds, None where nothing was
    written."""

    step: int
    points: list[Point]

    def json(self) -> dict[str, object]:
        return {"step": self.step, "points": [list(p) for p in self.points]}


def name_parts(name: str) -> list[str]:
    """The directory parts of a series name; InvalidParams unless it is dotted safe parts."""
    parts = name.split(".")
    if len(name) > 300 or len(parts) > MAX_PARTS or not all(_PART.match(p) for p in parts):
        raise InvalidParams(
            f"{_shown(name)} is not a series name: dotted parts of letters, digits, `_` and `-`, "
            "as GET /v1/apps/APP/series lists them"
        )
    return parts


def check_stat(stat: str) -> str:
    if stat not in KNOWN_STATS:
        raise InvalidParams(f"stat={_shown(stat)} is not one of {', '.join(sorted(KNOWN_STATS))}")
    return stat


def source_part(source: str | None) -> str | None:
    """The directory of a source (`web.1` -> `web_1`), ALL as is, None for none; InvalidParams
    for anything but a process name."""
    if source is None or source == ALL:
        return source
    if not _SOURCE.match(source):
        raise InvalidParams(
            f"source={_shown(source)} is not a process name like web.1 (or * for every source)"
        )
    return part(source)


def source_of(directory: str) -> str | None:
    """`web_1` -> `web.1`; None when the directory does not have a process's form."""
    m = _SOURCE_DIR.match(directory)
    return None if m is None else f"{m[1]}.{m[2]}"


def time_range(start: str | None, until: str | None, now: float) -> tuple[int, int]:
    """(from, until) of a query's `from` and `until` (epoch seconds; until defaults to now,
    from to an hour before until); InvalidParams for anything else or out of bounds."""
    end = _epoch("until", until) if until is not None else int(now)
    begin = _epoch("from", start) if start is not None else end - 3600
    if begin >= end:
        raise InvalidParams(f"from={begin} is not before until={end}")
    if end - begin > MAX_SPAN:
        raise InvalidParams(f"from={begin} to until={end} is longer than {MAX_SPAN // 86400} days")
    if end > now + MAX_AHEAD:
        raise InvalidParams(f"until={end} is more than an hour ahead of the drain's clock")
    return begin, end


def _epoch(what: str, text: str) -> int:
    if not _EPOCH.match(text):
        raise InvalidParams(f"{what}={_shown(text)} is not a time in whole seconds since 1970")
    return int(text)


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:80] + "...")


def app_dir(root: Path, app: str) -> Path:
    return root.joinpath(PREFIX, part(app))


def listing(root: Path, app: str) -> list[Series]:
    """Every series of `app` under `root`, by name then source (none first)."""
    top = app_dir(root, app)
    found: list[Series] = []
    for here, dirs, files in os.walk(top):
        dirs.sort()
        stats = tuple(sorted(f[:-4] for f in files if f.endswith(".wsp") and f[:-4] in KNOWN_STATS))
        if not stats:
            continue
        parts = Path(here).relative_to(top).parts
        if not parts:
            continue
        source = source_of(parts[-1]) if len(parts) > 1 else None
        if source is not None and _has_files(Path(here).parent):
            source = None  # a directory of a series of its own: its subdirectory is a name part
        if source is not None:
            found.append(Series(".".join(parts[:-1]), source, stats))
        else:
            found.append(Series(".".join(parts), None, stats))
    return sorted(found, key=lambda s: (s.name, s.source or ""))


def _has_files(directory: Path) -> bool:
    return any(p.suffix == ".wsp" for p in directory.iterdir())


def read(
    root: Path, app: str, name: str, stat: str, source: str | None, span: tuple[int, int]
) -> Points:
    """One stat of one series (of one source) over `span`; NotFound when it has no file."""
    path = app_dir(root, app).joinpath(*name_parts(name))
    directory = source_part(source)
    if directory is not None and directory != ALL:
        path = path / directory
    path = path / f"{check_stat(stat)}.wsp"
    if not path.is_file():
        raise NotFound(f"app {app!r} has no series {_described(name, source)} with stat {stat}")
    return _fetch(path, span)


def read_sources(
    root: Path, app: str, name: str, stat: str, span: tuple[int, int]
) -> dict[str, Points]:
    """One stat of every source of a series over `span`, by source (`web.1`)."""
    base = app_dir(root, app).joinpath(*name_parts(name))
    check_stat(stat)
    found: dict[str, Points] = {}
    if base.is_dir():
        for sub in sorted(base.iterdir()):
            source = source_of(sub.name)
            if source is not None and (sub / f"{stat}.wsp").is_file():
                found[source] = _fetch(sub / f"{stat}.wsp", span)
    return found


def _described(name: str, source: str | None) -> str:
    return repr(name) if source is None else f"{name!r} of source {source}"


def _fetch(path: Path, span: tuple[int, int]) -> Points:
    begin, end = span
    try:
        got = whisper.fetch(str(path), begin, end)
    except (OSError, whisper.WhisperException) as e:
        raise NotFound(f"the series file {path.name} cannot be read ({e})") from None
    if got is None:
        return Points(60, [])
    (first, _, step), values = got
    return Points(
        int(step),
        [(first + i * step, _number(v)) for i, v in enumerate(values)],
    )


def _number(v: object) -> float | None:
    if v is None:
        return None
    f = float(v)  # type: ignore[arg-type]
    return f if math.isfinite(f) else None


@dataclass(frozen=True)
class Summary:
    """An app's router over a range: requests, errors, and the worst bucket's p95 of
    `router.service` (ms; None without requests). Errors: in each bucket the larger of the
    5xx answers and the H-codes (a router error line carries its status too, 503 mostly: the
    two are not added, which would count it twice)."""

    requests: float
    errors: float
    p95: float | None

    def json(self) -> dict[str, object]:
        return {"requests": self.requests, "errors": self.errors, "p95": self.p95}


def summary(root: Path, app: str, span: tuple[int, int]) -> Summary:
    """The app's Summary over `span`, from its router series (zeros when it has none)."""
    top = app_dir(root, app) / "router"
    requests = 0.0
    failed: dict[int, float] = {}
    coded: dict[int, float] = {}
    for path in sorted((top / "status").glob("*/sum.wsp")):
        for t, v in _fetch(path, span).points:
            if v is not None:
                requests += v
                if path.parent.name == "5xx":
                    failed[t] = failed.get(t, 0.0) + v
    for path in sorted((top / "error").glob("H*/sum.wsp")):
        for t, v in _fetch(path, span).points:
            if v is not None:
                coded[t] = coded.get(t, 0.0) + v
    errors = sum(max(failed.get(t, 0.0), coded.get(t, 0.0)) for t in failed.keys() | coded.keys())
    p95 = None
    if (top / "service" / "p95.wsp").is_file():
        values = [v for _, v in _fetch(top / "service" / "p95.wsp", span).points if v is not None]
        p95 = max(values) if values else None
    return Summary(requests, errors, p95)


SUMMARY_KEPT = 10.0  # seconds a Summary is served again before the files are read anew


class Summaries:
    """Summaries of the last `since` seconds, each kept SUMMARY_KEPT seconds: the apps page of
    every signed-in user asks for all their apps at once, and the figures of an hour move
    little in 10 s (whoever asks, the files are read once per app per 10 s)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._kept: dict[tuple[str, int], tuple[float, Summary]] = {}

    def of(self, app: str, since: int, now: float) -> Summary:
        key = (app, since)
        kept = self._kept.get(key)
        if kept is not None and now - kept[0] < SUMMARY_KEPT:
            return kept[1]
        if len(self._kept) > 10_000:  # apps gone, spans no longer asked: forget the stale
            self._kept = {k: v for k, v in self._kept.items() if now - v[0] < SUMMARY_KEPT}
        got = summary(self.root, app, (int(now) - since, int(now)))
        self._kept[key] = (now, got)
        return got
