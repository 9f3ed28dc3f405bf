"""A simulated month for the dashboard's tests, and `tailored serve` running on it.

`month`: a SQLite store with 30 days of exposures (users with a ``segment``, items with a ``category``; one
experiment, ``ranker``, splitting users between a control and a better treatment) and their attributed clicks and
purchases; the daily figures computed and stored (the `tailored monitor daily` job), two training records and one
alert; a registry whose production stage was promoted twice and rolled back once; an admin key and a recommend-only
key. `server`: `tailored serve` on that store and registry, in its own process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.experiments.design import design_of
from tailored.monitoring.daily import DAY_SECONDS, daily_figures, day_of, day_start
from tailored.pipeline.recommender import build_recommender
from tailored.registry.model_dir import save_model
from tailored.registry.versions import ModelRegistry
from tailored.store import EventStore, schema
from tailored.store.database import Event, exposure_row
from tailored.store.experiments import create_experiment
from tailored.store.monitoring import add_training, replace_alerts, write_daily

FIRST_DAY = "2026-10-01"
DAYS, LISTS_PER_DAY, LENGTH, USERS, ITEMS = 30, 60, 5, 120, 60
SEGMENTS, CATEGORIES = ("new", "regular", "vip"), ("books", "games", "music", "tools")


@dataclass(frozen=True)
class Month:
    folder: Path
    db: str
    registry: Path
    admin: str
    reader: str
    impressions: int
    lists: int
    clicks_by_arm: dict[str, int]


def build_month(folder: Path, seed: int = 7, lists_per_day: int = LISTS_PER_DAY, n_users: int = USERS,
                n_items: int = ITEMS) -> Month:
    """The month in ``folder`` (``lists_per_day`` lists of 5 items a day: 60 for the tests; 6,667 gives the issue's
    million impressions)."""
    rng = np.random.default_rng(seed)
    db = f"sqlite:///{folder / 'events.db'}"
    store = EventStore(db)
    users, items = [f"u{n}" for n in range(n_users)], [f"i{n}" for n in range(n_items)]
    for user in users:
        store.put_user(user, {"segment": SEGMENTS[int(user[1:]) % len(SEGMENTS)]})
    for item in items:
        store.put_item(item, {"category": CATEGORIES[int(item[1:]) % len(CATEGORIES)]})
    frame = pd.DataFrame({"user_id": rng.choice(users, 600), "item_id": rng.choice(items, 600)}).drop_duplicates()
    save_model(build_recommender("popularity").fit(Dataset.from_frame(frame)), folder / "model")
    registry = ModelRegistry(folder / "registry")
    for _ in range(3):
        registry.register("shop", folder / "model")
    for version in ("v0001", "v0002", "v0003"):
        registry.promote("shop", version)
    registry.rollback("shop")
    design = design_of("ranker", ["control=shop@production", "treatment=shop@v0003"], "50,50", "click_rate",
                       min_users=50, resolve=registry.resolve)
    create_experiment(store, "ranker", design.surface, design.to_json())
    assignment = design.assignment()
    start = day_start(FIRST_DAY)
    count = DAYS * lists_per_day
    shown_to = rng.choice(users, count)
    arms = assignment.assign(shown_to)
    at = start + np.repeat(np.arange(DAYS), lists_per_day) * DAY_SECONDS + rng.uniform(0, DAY_SECONDS - 3600, count)
    stride = rng.integers(1, n_items // LENGTH, count)[:, None]  # distinct items in a list
    lists = (rng.integers(0, n_items, count)[:, None] + stride * np.arange(LENGTH)) % n_items
    clicked = rng.random(count) < np.where(arms == "treatment", 0.45, 0.3)
    bought = clicked & (rng.random(count) < 0.4)
    rows, events = [], []
    for n in range(count):
        exposure = f"x{n}"
        rows.append(exposure_row(shown_to[n], "shop@v0002", [f"i{k}" for k in lists[n]], exposure_id=exposure,
                                 experiment="ranker", arm=str(arms[n]), latency_ms=float(rng.uniform(2, 30)))
                    | {"created_at": float(at[n])})
        if clicked[n]:
            events.append(Event(f"c{n}", shown_to[n], f"i{lists[n][0]}", "click", None, float(at[n]) + 60, exposure))
        if bought[n]:
            events.append(Event(f"p{n}", shown_to[n], f"i{lists[n][0]}", "purchase", float(rng.integers(5, 80)),
                                float(at[n]) + 120, exposure))
    store.log_exposures(rows)
    store.append_events(events)
    days = [day_of(start + day * DAY_SECONDS) for day in range(DAYS)]
    write_daily(store, days, daily_figures(store, days))
    for day, auc in ((5, 0.71), (20, 0.74)):
        add_training(store, "shop", f"fp{day}", {
            "quality": {"rows": 600, "rejected": {"duplicates": day, "unknown_items": 0}},
            "bias": {"popularity_gini": 0.4 + day / 100, "segments": {"vip": 0.3, "new": 0.2}},
            "evaluation": {"auc": {"value": auc, "ci": [auc - 0.02, auc + 0.02]}},
            "diff": {"auc": 0.03} if day == 20 else {}}, at=start + day * DAY_SECONDS)
    alert = {"at": start + (DAYS - 1) * DAY_SECONDS, "day": days[-2], "rule": "click_rate_drop",
             "severity": "critical", "message": "click_rate of segment vip fell 35 % below its 7-day mean",
             "value": 0.123}
    replace_alerts(store, days[-2], ["click_rate_drop"], [alert])
    with store.engine.begin() as connection:  # the loop's audit trail (`tailored loop` writes these rows)
        connection.execute(schema.audit_log.insert(), [
            {"action": "loop:canary", "subject": "shop", "detail": {"version": "v0003", "share": 10}, "at": start},
            {"action": "loop:rollback", "subject": "shop", "detail": {"version": "v0003", "lift": -0.041},
             "at": start + DAY_SECONDS}])
    admin, reader = store.create_key(["admin"]), store.create_key(["recommend"])
    store.engine.dispose()
    return Month(folder, db, registry.root, admin, reader, int(count * LENGTH), count,
                 {arm: int(clicked[arms == arm].sum()) for arm in ("control", "treatment")})


@pytest.fixture(scope="session")
def month(tmp_path_factory: pytest.TempPathFactory) -> Month:
    return build_month(tmp_path_factory.mktemp("month"))


@contextmanager
def serving(month: Month) -> Iterator[str]:
    """`tailored serve` on the month's store, following shop@production in its registry; yields its base URL."""
    log = month.folder / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen([sys.executable, "-m", "tailored", "serve", "--model", "shop@production",
                                    "--registry", str(month.registry), "--db", month.db, "--port", "0",
                                    "--no-access-log"], stdout=subprocess.DEVNULL, stderr=sink,
                                   env=os.environ | {"TAILORED_NUM_THREADS": "1"}, cwd=month.folder)
    try:
        deadline = time.monotonic() + 120
        while not (found := re.search(r"listening on (http://127\.0\.0\.1:\d+)", log.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def server(month: Month) -> Iterator[str]:
    with serving(month) as url:
        yield url
