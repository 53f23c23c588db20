"""Charts as inline SVG (pure): series in, one `<svg>` out, so the metrics page draws without
JavaScript and with nothing vendored.

A Chart is lines over a time span, with markers (an H12 at a time) and events (a deploy, drawn
as a vertical line). `svg` lays it out in a fixed viewBox:

- x: the span, left to right; y: from min(0, lowest value) to the highest value rounded up to a
  1/2/5 step (1 when there is nothing above 0), labelled at the bottom, middle and top.
- A line is drawn as one `<polyline>` per run of points without a gap (None is a gap), a run
  of one point as a `<circle>`; points outside the span, and values that are not finite, are
  left out, values beyond ±HUGE drawn at it. A line with more points than MAX_POINTS is
  averaged into MAX_POINTS bins first.
- Every text comes from names and labels, escaped (control characters dropped); every number
  written is finite.
"""

from __future__ import annotations

import html
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 10, 22  # the plot's margins inside the viewBox
MAX_POINTS = 320
HUGE = 1e300  # values beyond are drawn at it
COLOURS = ("#2553b8", "#17803d", "#a15c00", "#b42318", "#6b3fa0", "#0f7c8c", "#5a6275")

Point = tuple[float, float | None]
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(text: str) -> str:
    """`text` escaped for an attribute or element, less what no SVG may hold (controls)."""
    return html.escape(_NOT_TEXT.sub("", text))


@dataclass(frozen=True)
class Line:
    label: str
    points: Sequence[Point]


@dataclass(frozen=True)
class Mark:
    """Something at a time: a marker (an H-code) or an event (a deploy)."""

    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    key: str  # data-chart="KEY"
    title: str
    unit: str
    span: tuple[float, float]
    lines: Sequence[Line]
    markers: Sequence[Mark] = field(default_factory=tuple)
    events: Sequence[Mark] = field(default_factory=tuple)


def number(v: float) -> str:
    """`950`, `5000`, `12k`, `3.4M`, `0.25`: short, for an axis (a suffix from 10,000 on, so
    that `1000MB` is not written `1kMB`)."""
    a = abs(v)
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div and a >= 1e4:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.4g}"


def nice(top: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `top` (> 0)."""
    if top <= 0 or not math.isfinite(top):
        return 1.0
    power = 10.0 ** math.floor(math.log10(top))
    for m in (1, 2, 5, 10):
        if m * power >= top:
            return m * power if math.isfinite(m * power) else top
    return top  # pragma: no cover


def binned(points: Sequence[Point], span: tuple[float, float], bins: int) -> list[Point]:
    """The points inside `span` with finite values (None kept as gaps), averaged into at most
    `bins` bins across the span when there are more."""
    start, end = span
    inside = [(t, _value(v)) for t, v in points if math.isfinite(t) and start <= t <= end]
    if len(inside) <= bins or end <= start:
        return inside
    width = (end - start) / bins
    sums: dict[int, list[float]] = {}
    for t, v in inside:
        i = min(bins - 1, int((t - start) / width))
        got = sums.setdefault(i, [])
        if v is not None:
            got.append(v)
    return [
        (start + (i + 0.5) * width, sum(v / len(vs) for v in vs) if vs else None)
        for i, vs in sorted(sums.items())
    ]


def _value(v: float | None) -> float | None:
    """None for a gap or a value that is not finite; beyond ±HUGE, ±HUGE (so that the axis's
    span stays finite)."""
    if v is None or not math.isfinite(v):
        return None
    return max(-HUGE, min(HUGE, v))


def runs(points: Sequence[Point]) -> list[list[tuple[float, float]]]:
    """The runs of points without a gap."""
    found: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for t, v in points:
        if v is None:
            if current:
                found.append(current)
            current = []
        else:
            current.append((t, v))
    if current:
        found.append(current)
    return found


def clock(t: float, long: bool) -> str:
    return time.strftime("%b %d" if long else "%H:%M", time.gmtime(t))


def svg(chart: Chart, width: int = WIDTH, height: int = HEIGHT) -> str:
    """The chart as an `<svg>` element (see the module docstring): HTML safe as it is, every
    text in it escaped."""
    start, end = chart.span
    if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
        start, end = 0.0, 1.0
    lines = [(line, binned(line.points, (start, end), MAX_POINTS)) for line in chart.lines]
    values = [v for _, pts in lines for _, v in pts if v is not None]
    low = min([0.0, *values])
    high = nice(max(values)) if values and max(values) > 0 else 1.0
    if low < 0:
        low = -nice(-low)
    if not math.isfinite(high - low) or high - low <= 0:
        low, high = 0.0, 1.0
    pw, ph = width - LEFT - RIGHT, height - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (t - start) / (end - start) * pw

    def y(v: float) -> float:
        return TOP + (1 - (v - low) / (high - low)) * ph

    out = [
        f'<svg class="chart" data-chart="{escape(chart.key)}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(chart.title)}">',
        f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}"/>',
    ]
    for v in (low, (low + high) / 2, high):
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{LEFT + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
        )
        out.append(
            f'<text class="y" x="{LEFT - 4}" y="{y(v) + 4:.1f}" text-anchor="end">'
            f"{escape(number(v))}{escape(chart.unit)}</text>"
        )
    long = end - start > 2 * 86400
    for t, anchor in ((start, "start"), ((start + end) / 2, "middle"), (end, "end")):
        out.append(
            f'<text class="x" x="{x(t):.1f}" y="{height - 6}" text-anchor="{anchor}">'
            f"{clock(t, long)}</text>"
        )
    for e in chart.events:
        if start <= e.at <= end:
            out.append(
                f'<line class="event" data-event="{escape(e.label)}" x1="{x(e.at):.1f}" '
                f'x2="{x(e.at):.1f}" y1="{TOP}" y2="{TOP + ph}"><title>{escape(e.label)}</title>'
                "</line>"
            )
    for i, (line, pts) in enumerate(lines):
        colour = COLOURS[i % len(COLOURS)]
        label = escape(line.label)
        for run in runs(pts):
            if len(run) == 1:
                t, v = run[0]
                out.append(
                    f'<circle data-series="{label}" cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5" '
                    f'fill="{colour}"/>'
                )
            else:
                coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in run)
                out.append(
                    f'<polyline data-series="{label}" fill="none" stroke="{colour}" '
                    f'points="{coords}"/>'
                )
    for m in chart.markers:
        if start <= m.at <= end:
            out.append(
                f'<path class="marker" data-marker="{escape(m.label)}" '
                f'd="M{x(m.at):.1f},{TOP + ph} l-4,-8 l8,0 z"><title>{escape(m.label)}</title>'
                "</path>"
            )
    if not values:
        out.append(
            f'<text class="empty" x="{LEFT + pw / 2:.1f}" y="{TOP + ph / 2:.1f}" '
            'text-anchor="middle">No data in this range</text>'
        )
    out.append("</svg>")
    return "".join(out)


def colour_of(index: int) -> str:
    """The colour of a chart's `index`th line, for its legend."""
    return COLOURS[index % len(COLOURS)]
