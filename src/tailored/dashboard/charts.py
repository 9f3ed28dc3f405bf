"""Server-rendered SVG charts: a line chart of series over days and a horizontal bar chart, sized by a viewBox (they
scale with the page), coloured by CSS classes of the inlined style sheet. A missing value (None) breaks a line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 220, 56, 12, 12, 28
COLOURS = 8
"""Series colours: CSS classes ``s0`` .. ``s7`` (cycled)."""


def number(value: float) -> str:
    """An axis label: 4 significant digits, thousands separated."""
    return f"{value:,.4g}" if abs(value) < 1e15 else f"{value:.3e}"


def line_chart(title: str, labels: Sequence[str], series: Mapping[str, Sequence[float | None]]) -> str:
    """One line per series over ``labels`` (days), a shared y axis from the smallest to the largest value (0 when all
    values are positive and the smallest is near 0), the first and last labels on the x axis, a legend."""
    values = np.array([[np.nan if v is None else float(v) for v in points] for points in series.values()], float)
    caption = f'<figcaption>{escape(title)}</figcaption>'
    if values.size == 0 or not np.isfinite(values).any():
        return f'<figure class="chart">{caption}<p class="empty">No data yet.</p></figure>'
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    low = 0.0 if 0 <= low <= high / 2 else low
    span = high - low or abs(high) or 1.0
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    xs = LEFT + (np.arange(values.shape[1]) * inner_w / max(values.shape[1] - 1, 1))
    ys = TOP + inner_h - (values - low) / span * inner_h
    paths = []
    for index, (name, row) in enumerate(zip(series, ys, strict=True)):
        strokes, pen = [], "M"
        for x, y in zip(xs, row, strict=True):
            if np.isfinite(y):
                strokes.append(f"{pen}{x:.1f},{y:.1f}")
                pen = "L"
            else:
                pen = "M"
        dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2"/>' for x, y in zip(xs, row, strict=True)
                       if np.isfinite(y)) if values.shape[1] <= 60 else ""
        paths.append(f'<g class="s{index % COLOURS}"><title>{escape(name)}</title>'
                     f'<path d="{" ".join(strokes)}"/>{dots}</g>')
    axis = (f'<line class="axis" x1="{LEFT}" y1="{TOP + inner_h}" x2="{WIDTH - RIGHT}" y2="{TOP + inner_h}"/>'
            f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + inner_h}"/>'
            f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{number(low + span)}</text>'
            f'<text x="{LEFT - 4}" y="{TOP + inner_h}" text-anchor="end">{number(low)}</text>'
            f'<text x="{LEFT}" y="{HEIGHT - 8}">{escape(labels[0])}</text>'
            f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">{escape(labels[-1])}</text>')
    legend = "".join(f'<li class="s{index % COLOURS}">{escape(name)}</li>' for index, name in enumerate(series))
    return (f'<figure class="chart">{caption}<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="{escape(title)}">{axis}{"".join(paths)}</svg><ul class="legend">{legend}</ul></figure>')


def bar_chart(title: str, bars: Mapping[str, float | None]) -> str:
    """One horizontal bar per entry, lengths proportional to the values (from 0; negative values are drawn as 0),
    each labelled with its name and value."""
    caption = f'<figcaption>{escape(title)}</figcaption>'
    shown = {name: float(value) for name, value in bars.items() if value is not None}
    if not shown:
        return f'<figure class="chart">{caption}<p class="empty">No data yet.</p></figure>'
    top = max(max(shown.values()), 0.0) or 1.0
    row, label_w, inner_w = 20, 160, WIDTH - 160 - 80
    height = row * len(shown) + 4
    rows = []
    for index, (name, value) in enumerate(shown.items()):
        y = 2 + index * row
        length = max(value, 0.0) / top * inner_w
        rows.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{escape(name[:24])}</text>'
                    f'<rect class="s{index % COLOURS}" x="{label_w}" y="{y + 3}" width="{length:.1f}" '
                    f'height="{row - 6}">'
                    f'<title>{escape(name)}: {number(value)}</title></rect>'
                    f'<text x="{label_w + length + 4:.1f}" y="{y + 14}">{number(value)}</text>')
    return (f'<figure class="chart">{caption}<svg viewBox="0 0 {WIDTH} {height}" role="img" '
            f'aria-label="{escape(title)}">{"".join(rows)}</svg></figure>')
