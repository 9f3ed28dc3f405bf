"""`tailored monitor report`: the dashboard's pages in one static HTML file, self-contained (no script, nothing
fetched), each page's numbers equal to the dashboard's JSON; bad options exit 2 naming the option, writing nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tailored.cli.monitor import app
from tailored.dashboard.numbers import PAGES, Sources, numbers
from tailored.registry.versions import ModelRegistry
from tailored.store import EventStore
from tests.dashboard.conftest import Month
from tests.dashboard.test_pages import check_numbers, html_cells


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["report", *args])
    return result.exit_code, " ".join(result.output.split())


def sections(html: str) -> dict[str, str]:
    return dict(re.findall(r'<section class="page" id="\w+" data-page="(\w+)">(.*?)</section>', html, re.S))


def test_the_report_holds_every_page_with_the_dashboards_numbers(month: Month, tmp_path: Path) -> None:
    output = tmp_path / "report.html"
    code, said = run("--db", month.db, "--registry", str(month.registry), "--output", str(output))
    assert code == 0, said
    assert "30 day(s), 1 experiment(s), 1 alert(s)" in said
    html = output.read_text()
    assert "<script" not in html and not re.search(r"(src|href)=\"(https?:)?//", html) and "@import" not in html
    found = sections(html)
    assert list(found) == list(PAGES)
    store = EventStore(month.db)
    sources = Sources(store, ModelRegistry(month.registry))
    for page, body in found.items():
        check_numbers(html_cells(body), numbers(page, sources))
    store.engine.dispose()
    later = tmp_path / "later.html"
    assert run("--db", month.db, "--since", "2026-10-25", "--output", str(later))[0] == 0
    shown_days = re.findall(r"<tr><td>(2026-\d\d-\d\d)</td>", sections(later.read_text())["overview"])
    assert shown_days == [f"2026-10-{day}" for day in range(30, 24, -1)]  # newest first, from --since on


@pytest.mark.parametrize(("options", "message"), [
    (["--output", "report.txt"], "--output report.txt must be an .html file"),
    (["--output", "missing/report.html"], "the folder missing does not exist"),
    (["--output", "report.html", "--since", "last week"], "--since must be a day YYYY-MM-DD (UTC), got 'last week'"),
    (["--output", "report.html", "--registry", "nowhere"], "--registry nowhere is not a folder"),
])
def test_bad_options_exit_2_naming_the_option(month: Month, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              options: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, said = run("--db", month.db, *options)
    assert code == 2 and message in said, said
    assert not list(tmp_path.iterdir())


def test_a_missing_database_is_refused_not_created(tmp_path: Path) -> None:
    code, said = run("--db", f"sqlite:///{tmp_path / 'typo.db'}", "--output", str(tmp_path / "report.html"))
    assert code == 2 and "No database at" in said and not (tmp_path / "typo.db").exists()
