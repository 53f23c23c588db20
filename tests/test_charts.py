"""charts.py: series in, an inline SVG out; odd inputs (nothing, all gaps, one point, huge or
negative values, points outside the span, hostile labels) still give one well-formed `<svg>`
whose every number is finite."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from gun.dashboard import charts
from gun.dashboard.charts import Chart, Line, Mark

SPAN = (1_000_000.0, 1_003_600.0)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def polylines(svg: str) -> list[list[tuple[float, float]]]:
    root = parse(svg)
    return [
        [tuple(map(float, xy.split(","))) for xy in p.attrib["points"].split()]  # type: ignore[misc]
        for p in root.iter("polyline")
    ]


def chart(*lines: Line, **extra: object) -> Chart:
    return Chart("c", "A chart", "ms", SPAN, lines, **extra)  # type: ignore[arg-type]


def test_a_line_with_a_gap_is_two_polylines_inside_the_plot() -> None:
    pts = [(SPAN[0] + 60 * i, float(i)) for i in range(10)]
    pts[4] = (pts[4][0], None)
    svg = charts.svg(chart(Line("p95", pts)))
    got = polylines(svg)
    assert [len(p) for p in got] == [4, 5]
    for x, y in (xy for p in got for xy in p):
        assert charts.LEFT <= x <= charts.WIDTH - charts.RIGHT
        assert charts.TOP <= y <= charts.HEIGHT - charts.BOTTOM
    assert 'data-series="p95"' in svg and "No data" not in svg
    assert ">10ms</text>" in svg  # the top of the axis: 9 rounded up to 10


def test_nothing_all_gaps_and_one_point() -> None:
    assert "No data in this range" in charts.svg(chart())
    gaps = charts.svg(chart(Line("a", [(SPAN[0], None), (SPAN[0] + 60, None)])))
    assert "No data in this range" in gaps and polylines(gaps) == []
    one = parse(charts.svg(chart(Line("a", [(SPAN[0] + 60, 5.0)]))))
    assert len(list(one.iter("circle"))) == 1 and list(one.iter("polyline")) == []


def test_markers_and_deploys_inside_the_span_are_drawn_others_not() -> None:
    svg = charts.svg(
        chart(
            Line("a", [(SPAN[0], 1.0), (SPAN[1], 2.0)]),
            markers=[Mark(SPAN[0] + 100, "H12 ×2"), Mark(SPAN[1] + 100, "H10")],
            events=[Mark(SPAN[0] + 1800, "v7 Deploy <abc>"), Mark(0, "v1")],
        )
    )
    root = parse(svg)
    assert [m.attrib["data-marker"] for m in root.iter("path")] == ["H12 ×2"]
    assert [e.attrib["data-event"] for e in root.iter("line") if "data-event" in e.attrib] == [
        "v7 Deploy <abc>"
    ]
    assert "<abc>" not in svg


def test_many_points_are_binned() -> None:
    pts = [(SPAN[0] + i, float(i % 7)) for i in range(3600)]
    (line,) = polylines(charts.svg(chart(Line("a", pts))))
    assert 2 <= len(line) <= charts.MAX_POINTS


def test_axis_numbers_are_short() -> None:
    assert [charts.number(v) for v in (0, 950, 1200, 12000, 3.4e6, 0.25, 2e13)] == [
        "0",
        "950",
        "1200",
        "12k",
        "3.4M",
        "0.25",
        "20T",
    ]
    assert [charts.nice(v) for v in (0.3, 9, 10, 11, 4999, 0, -1)] == [
        0.5,
        10,
        10,
        20,
        5000,
        1,
        1,
    ]


values = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e300, max_value=1e300),
)
times = st.floats(min_value=SPAN[0] - 5000, max_value=SPAN[1] + 5000)
labels = st.text(max_size=20)


@given(
    st.lists(st.tuples(labels, st.lists(st.tuples(times, values), max_size=60)), max_size=4),
    st.lists(st.tuples(times, labels), max_size=3),
)
def test_any_series_gives_one_well_formed_svg_with_finite_numbers(
    lines: list[tuple[str, list[tuple[float, float | None]]]],
    marks: list[tuple[float, str]],
) -> None:
    svg = charts.svg(
        chart(
            *(Line(label, pts) for label, pts in lines),
            markers=[Mark(t, m) for t, m in marks],
            events=[Mark(t, m) for t, m in marks],
        )
    )
    root = parse(svg)  # well-formed, every label escaped
    assert root.tag == "svg"
    for e in root.iter():
        for k in ("x", "y", "x1", "x2", "y1", "y2", "cx", "cy"):
            if k in e.attrib:
                assert math.isfinite(float(e.attrib[k])), (k, e.attrib[k])
        if e.tag == "polyline":
            for n in re.split(r"[ ,]", e.attrib["points"]):
                assert math.isfinite(float(n))
    for p in polylines(svg):
        for _, yv in p:
            assert charts.TOP - 0.1 <= yv <= charts.HEIGHT - charts.BOTTOM + 0.1
