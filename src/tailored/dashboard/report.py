"""`tailored monitor report`: every dashboard page, with the numbers of the moment, in one self-contained HTML file
(the style inlined, charts as SVG, no script, nothing to fetch) to archive or send."""

from __future__ import annotations

import time
from pathlib import Path

from tailored.dashboard.numbers import PAGES, Sources, numbers
from tailored.dashboard.pages import report
from tailored.data.io import write_text
from tailored.errors import ConfigError


def write_report(sources: Sources, output: str | Path) -> dict[str, dict]:
    """Write the report of ``sources`` to ``output`` (atomically: a failure leaves no half file); returns each
    page's numbers, which the file shows. An output that is not .html is a ConfigError naming --output."""
    output = Path(output)
    if output.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--output {output} must be an .html file.")
    if not output.parent.is_dir():
        raise ConfigError(f"--output {output}: the folder {output.parent} does not exist; create it first.")
    pages = {page: numbers(page, sources) for page in PAGES}
    write_text(report(pages, time.time()), output)
    return pages
