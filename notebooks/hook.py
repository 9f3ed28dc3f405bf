"""MkDocs hook (mkdocs.yml `hooks:`): puts the notebooks of this folder in the site and decides which of them run.

mkdocs-jupyter renders, and executes (``execute: true``), the notebooks among the site's files; this hook adds
them from ``notebooks/``, outside ``docs/``, and turns their links to the guides (``../docs/metrics.md``, right
when the notebook is read where it lies) into the site's addresses, failing the build on a link to no page.
The MovieLens notebook needs MovieLens 100K, found as the tests find it (``$TAILORED_DATA_DIR/ml-100k``, by default
``../shared/data/ml-100k`` beside the repository): when it is absent the build says so and shows that notebook
without running it, or fails when ``TAILORED_REQUIRE_DATA=1`` (as in CI).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from mkdocs.utils import get_relative_url

NOTEBOOKS = Path(__file__).resolve().parent
NEEDS_MOVIELENS = "movielens.ipynb"
GUIDE_LINK = re.compile(r'href="\.\./docs/([^"#]*)(#[^"]*)?"')
OTHER_PAGE_LINK = re.compile(r'href="(?![a-z]+:)([^"#]*\.(?:md|ipynb))[#"]')
logger = logging.getLogger("mkdocs.hooks.notebooks")


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    data_dir = Path(os.environ.get("TAILORED_DATA_DIR", NOTEBOOKS.parents[1] / "shared" / "data")) / "ml-100k"
    if data_dir.is_dir():
        return config
    message = f"MovieLens 100K not found at {data_dir} (set TAILORED_DATA_DIR to the folder holding ml-100k)"
    if os.environ.get("TAILORED_REQUIRE_DATA") == "1":
        raise PluginError(f"{message}; TAILORED_REQUIRE_DATA=1 makes this a failure")
    logger.info("%s: notebooks/%s is shown without running it", message, NEEDS_MOVIELENS)
    config.plugins["mkdocs-jupyter"].config["execute_ignore"].append(NEEDS_MOVIELENS)
    return config


@event_priority(100)  # before mkdocs-jupyter's on_files, which turns .ipynb files into pages
def on_files(files: Files, config: MkDocsConfig) -> Files:
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        files.append(File(f"notebooks/{notebook.name}", src_dir=str(NOTEBOOKS.parent), dest_dir=config.site_dir,
                          use_directory_urls=config.use_directory_urls))
    return files


def on_page_content(html: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if not page.file.src_uri.startswith("notebooks/"):
        return html

    def site_link(match: re.Match[str]) -> str:
        target = files.get_file_from_path(match.group(1))
        if target is None:
            raise PluginError(f"{page.file.src_uri} links to ../docs/{match.group(1)}, which is no page of docs/")
        return f'href="{get_relative_url(target.url, page.url)}{match.group(2) or ""}"'

    html = GUIDE_LINK.sub(site_link, html)
    if unresolved := OTHER_PAGE_LINK.search(html):
        raise PluginError(f"{page.file.src_uri} links to {unresolved.group(1)}: link the guides as ../docs/PAGE.md")
    return html
