"""Time of day learned from timestamps: morning requests put morning items first, evening requests evening ones."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tailored.data.dataset import Dataset
from tailored.models import create_scorer
from tailored.pipeline.recommender import Recommender
from tailored.rank import TimeOfDayAdjuster
from tailored.query import parse_context
from tailored.rank.base import Catalogue, bare_request


def one_month(seed: int = 0) -> pd.DataFrame:
    """50 users; breakfast items bought between 7 and 10, dinner items between 18 and 21, others at any hour."""
    rng = np.random.default_rng(seed)
    start = int(pd.Timestamp("2026-01-05", tz="UTC").timestamp())
    rows = []
    for _ in range(6000):
        kind = rng.choice(["breakfast", "dinner", "any"], p=[0.25, 0.25, 0.5])
        hour = {"breakfast": rng.integers(7, 10), "dinner": rng.integers(18, 21), "any": rng.integers(7, 22)}[kind]
        moment = start + int(rng.integers(30)) * 86_400 + int(hour) * 3600 + int(rng.integers(3600))
        rows.append((f"u{rng.integers(50)}", f"{kind}{rng.integers(10)}", moment))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def test_morning_and_evening_requests_rank_their_items_first() -> None:
    dataset = Dataset.from_frame(one_month())
    recommender = Recommender(create_scorer("item-knn"), exclude_seen=False, stages=[TimeOfDayAdjuster()]).fit(dataset)
    breakfast = dataset.items.index(np.array([f"breakfast{i}" for i in range(10)]))
    dinner = dataset.items.index(np.array([f"dinner{i}" for i in range(10)]))
    shares = {}
    for when in ("2026-03-17T08:30", "2026-03-17T19:30"):
        scores = recommender.score_block(np.arange(dataset.n_users), parse_context([f"date={when}"]))
        shares[when] = float((scores[:, breakfast].mean(axis=1) > scores[:, dinner].mean(axis=1)).mean())
    assert shares["2026-03-17T08:30"] >= 0.9 and shares["2026-03-17T19:30"] <= 0.1, shares


def test_a_short_history_learns_no_daily_profile() -> None:
    frame = one_month()
    short = frame[frame["timestamp"] < frame["timestamp"].min() + 5 * 86_400]
    stage = TimeOfDayAdjuster().fit(Dataset.from_frame(short))
    scores = np.array([[1.0, 2.0]], np.float32)
    request = bare_request(1, Catalogue(np.arange(2)), parse_context(["date=2026-03-17T08:00"]))
    np.testing.assert_array_equal(stage.adjust(scores, request), scores)


def sparse_history(patterned: bool) -> pd.DataFrame:
    """300 items with 6 to 14 sales each over two months: morning-only, evening-only and all-day items (or, without
    a pattern, every item at random hours)."""
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2025-01-01", tz="UTC").timestamp()
    rows = []
    for item in range(300):
        kind = ["morning", "evening", "any"][item % 3]
        for _ in range(rng.integers(6, 15)):
            hours = {"morning": (6, 10), "evening": (18, 22), "any": (0, 24)}[kind if patterned else "any"]
            moment = start + rng.integers(0, 60) * 86_400 + rng.integers(*hours) * 3600 + rng.integers(3600)
            rows.append((f"u{rng.integers(500)}", f"{kind}{item}", int(moment)))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def test_items_with_a_dozen_sales_are_recognised_and_random_hours_are_not() -> None:
    frame = sparse_history(patterned=True)
    recommender = Recommender(create_scorer("popularity"), exclude_seen=False, stages=[TimeOfDayAdjuster()])
    dataset = Dataset.from_frame(frame)
    recommender.fit(dataset)
    morning = dataset.items.index(frame.loc[frame["item_id"].str.startswith("morning"), "item_id"].unique())
    evening = dataset.items.index(frame.loc[frame["item_id"].str.startswith("evening"), "item_id"].unique())
    scores = recommender.score_block(np.arange(dataset.n_users), parse_context(["date=2025-03-04T08:00"]))
    assert (scores[:, morning].mean(axis=1) > scores[:, evening].mean(axis=1)).mean() >= 0.9
    noise = TimeOfDayAdjuster().fit(Dataset.from_frame(sparse_history(patterned=False)))
    assert noise.lift_.shape[0] == 0  # profiles that do not predict the latest hours are not learned
