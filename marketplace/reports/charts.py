"""Server-side SVG bar charts, drawn by a Jinja template from the geometry
computed here (``templates/reports/_chart.html``).

Why not matplotlib or pygal: the charts are horizontal bars of a few dozen
rows, one currency each. Computing their rectangles takes forty lines; the
template escapes every label, writes no inline style (the site's CSP has
``style-src 'self'``) and gives each chart a ``<title>``, a ``<desc>`` and its
data table in a ``<details>``. matplotlib would add a large dependency and
~0.3 s per chart, pygal embeds inline styles and scripts for its tooltips;
neither makes a chart more accessible than the table beside it.
"""
from __future__ import annotations

from dataclasses import dataclass

WIDTH = 360  # viewBox units; the SVG scales to its container (375 px screens)
LABEL_WIDTH = 110
ROW = 18
BAR = 7
COLOURS = ("#1f5f8b", "#b8581b")  # contrast ≥ 4.5:1 on white; told apart by position and the legend too


@dataclass(frozen=True)
class Bar:
    """One bar: ``y``, ``width`` in viewBox units, its series index and value (minor units)."""

    y: float
    width: float
    series: int
    value: int


@dataclass(frozen=True)
class Row:
    """One labelled row of one or two bars."""

    label: str
    y: float
    bars: list[Bar]


@dataclass(frozen=True)
class Chart:
    """A chart ready for the template: rows, series names, currency, height."""

    id: str
    title: str
    desc: str
    currency: str
    series: list[str]
    rows: list[Row]
    height: float
    label_width: int = LABEL_WIDTH
    width: int = WIDTH
    colours: tuple[str, ...] = COLOURS


def bar_chart(chart_id: str, title: str, desc: str, currency: str, series: list[str],
              data: list[tuple[str, list[int]]]) -> Chart | None:
    """A horizontal bar chart of ``data`` — (row label, one value per series, in
    minor units of ``currency``) — scaled to the largest value; None when
    there is nothing to draw. Negative values are drawn as 0 (the table shows them)."""
    if not data:
        return None
    top = max((max(values) for _label, values in data), default=0)
    scale = (WIDTH - LABEL_WIDTH - 10) / top if top > 0 else 0
    rows = []
    for index, (label, values) in enumerate(data):
        y = index * ROW * len(series) / 1.5 + 4
        bars = [Bar(y + s * (BAR + 1), max(0.0, value * scale), s, value) for s, value in enumerate(values)]
        rows.append(Row(label, y, bars))
    height = len(data) * ROW * len(series) / 1.5 + 10
    return Chart(chart_id, title, desc, currency, series, rows, round(height, 1))
