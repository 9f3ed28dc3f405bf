"""Page load times of the dashboard in headless Chromium on a simulated month of the issue's size (not a test: a
measurement to run by hand, printing its figures):

    python -m tests.dashboard.measure --lists-per-day 6667 --folder /tmp/month-1m   # 30 x 6,667 x 5 = 1,000,050

The month is built once in ``--folder`` (reused when it holds one), then `tailored serve` runs on it and each page is
loaded ``--repeat`` times after the sign-in; the first load of each page is reported apart (cold) from the others."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from tailored.dashboard.numbers import PAGES
from tests.dashboard.conftest import LENGTH, Month, build_month, serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--lists-per-day", type=int, default=6667)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=4)
    args = parser.parse_args()
    saved = args.folder / "month.json"
    if saved.exists():
        stored = json.loads(saved.read_text())
        month = Month(**stored | {"folder": Path(stored["folder"]), "registry": Path(stored["registry"])})
    else:
        args.folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        month = build_month(args.folder, lists_per_day=args.lists_per_day, n_users=args.users, n_items=args.items)
        print(f"built the month in {time.perf_counter() - started:.1f} s: {month.impressions:,} impressions, "
              f"{month.lists:,} lists")
        saved.write_text(json.dumps(month.__dict__, default=str))
    assert month.impressions == month.lists * LENGTH
    with serving(month) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), headless=True)
        page = browser.new_page()
        page.goto(f"{server}/dashboard/sign-in")
        page.fill("#key", month.admin)
        page.click("button[type=submit]")
        page.wait_for_url(f"{server}/dashboard")
        started = time.perf_counter()  # the experiments' status: computed in the background once, then kept
        admin = {"Authorization": f"Bearer {month.admin}"}
        while httpx.get(f"{server}/dashboard/api/experiments", headers=admin, timeout=30).json()["as_of"] is None:
            time.sleep(1)
        print(f"experiments' status first computed in about {time.perf_counter() - started:.1f} s")
        for name in PAGES:
            seconds = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                page.goto(f"{server}/dashboard/{name}", wait_until="load")
                seconds.append(time.perf_counter() - started)
            print(f"{name:12s} first {seconds[0]:.3f} s, then median {statistics.median(seconds[1:]):.3f} s, "
                  f"max {max(seconds[1:]):.3f} s ({month.impressions:,} impressions)")
        browser.close()


if __name__ == "__main__":
    main()
