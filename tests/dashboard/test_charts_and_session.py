"""The SVG charts' geometry, the number format of the pages, and the session cookie's signature and expiry."""

from __future__ import annotations

import re

import pytest

from tailored.dashboard import charts, pages
from tailored.dashboard.pages import MISSING, shown
from tailored.dashboard.session import sign, signed_key_id


def points(svg: str) -> list[list[tuple[float, float]]]:
    """Each series' strokes: lists of (x, y) between pen lifts."""
    found = []
    for path in re.findall(r'<path d="([^"]*)"', svg):
        strokes = [[tuple(map(float, pair.split(","))) for pair in re.findall(r"[-\d.]+,[-\d.]+", part)]
                   for part in path.split("M") if part.strip()]
        found.append(strokes)
    return found


def test_line_chart_maps_values_onto_the_plot_and_breaks_at_gaps() -> None:
    svg = charts.line_chart("clicks", ["d1", "d2", "d3", "d4"], {"a": [1.0, 3.0, None, 2.0], "b": [0.0, 0.0, 0.0, 0.0]})
    [[first, second], [flat]] = points(svg)
    bottom, top = charts.HEIGHT - charts.BOTTOM, charts.TOP
    assert first[0] == (charts.LEFT, pytest.approx(bottom - (bottom - top) / 3, abs=0.1))  # 1 of 0..3
    assert first[1][1] == pytest.approx(top) and second[0][1] == pytest.approx(bottom - 2 * (bottom - top) / 3, abs=0.1)
    assert second[0][0] == pytest.approx(charts.WIDTH - charts.RIGHT)  # the gap skipped d3, d4 at the right edge
    assert all(y == pytest.approx(bottom) for _, y in flat)
    assert ">3<" in svg and ">0<" in svg and ">d1<" in svg and ">d4<" in svg  # axis labels
    assert "No data yet" in charts.line_chart("none", ["d1"], {"a": [None]})


def test_bar_chart_lengths_are_proportional_and_labels_escaped() -> None:
    svg = charts.bar_chart("per arm", {"<control>": 0.2, "treatment": 0.4, "empty": None})
    widths = [float(width) for width in re.findall(r'<rect [^>]*width="([\d.]+)"', svg)]
    assert len(widths) == 2 and widths[1] == pytest.approx(2 * widths[0], abs=0.1)
    assert "&lt;control&gt;" in svg and "<control>" not in svg


@pytest.mark.parametrize(("value", "text"), [(None, MISSING), (float("nan"), MISSING), (1234567, "1,234,567"),
                                             (0.123456, "0.1235"), (12345.678, "12,346"), (1.5, "1.500"),
                                             (0.0, "0"), (2.5e-7, "2.500e-07"), ("ship", "ship")])
def test_numbers_are_shown_to_four_significant_digits(value: object, text: str) -> None:
    assert shown(value) == text


def test_a_session_is_valid_until_it_expires_and_cannot_be_altered() -> None:
    key = b"k" * 32
    cookie = sign(key, "abc123", now=1000.0, seconds=60)
    assert signed_key_id(key, cookie, now=1059.0) == "abc123"
    assert signed_key_id(key, cookie, now=1060.0) is None  # expired
    assert signed_key_id(b"x" * 32, cookie, now=1000.0) is None  # another installation's secret
    key_id, expiry, signature = cookie.split(".")
    assert signed_key_id(key, f"{key_id}.{int(expiry) + 1}.{signature}", now=1000.0) is None
    assert signed_key_id(key, f"other.{expiry}.{signature}", now=1000.0) is None
    for junk in (None, "", "a.b", "a.b.c", "a.1.c.d"):
        assert signed_key_id(key, junk, now=1000.0) is None


def test_stored_text_is_escaped_and_the_experiments_wait_is_told() -> None:
    hostile = "<script>alert(1)</script>"
    html = pages.shell("alerts", {"alerts": [{"at": 0.0, "day": "2026-10-01", "rule": hostile, "severity": "warning",
                                              "message": hostile, "value": None}]}, since='"><b>')
    assert "<script>" not in html and "&lt;script&gt;" in html and '"><b>' not in html
    assert "being computed" in pages.experiments({"experiments": [], "as_of": None, "error": None})
    failed = pages.experiments({"experiments": [], "as_of": None, "error": "OperationalError: locked"})
    assert "could not be computed: OperationalError: locked" in failed
    assert "No experiments" in pages.experiments({"experiments": [], "as_of": 1.0e9, "error": None})
