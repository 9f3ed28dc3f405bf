from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data.activity import TREND_DAYS, daily_counts
from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.models import create_scorer
from tailored.pipeline.recommender import Recommender
from tailored.pipeline.trending import trend_scores, trending_items

DAY = 86_400
END = int(pd.Timestamp("2026-06-30", tz="UTC").timestamp())


def history() -> pd.DataFrame:
    """steady: 2 a day for 56 days; rising: 0 then 10 a day in the last week; small: 1 in the last week."""
    rows = [(f"u{d}{k}", "steady", END - d * DAY - 3600) for d in range(TREND_DAYS) for k in range(2)]
    rows += [(f"r{d}{k}", "rising", END - d * DAY - 3600) for d in range(7) for k in range(10)]
    rows += [("s", "small", END - DAY)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def test_daily_counts_end_on_the_last_day() -> None:
    dataset = Dataset.from_frame(history())
    counts, end = daily_counts(dataset)
    steady = dataset.items.index(np.array(["steady"]))[0]
    assert counts.shape == (3, TREND_DAYS) and counts[steady].toarray().ravel().tolist() == [2.0] * TREND_DAYS
    assert end == pd.Timestamp("2026-06-30", tz="UTC").timestamp()


def test_trend_score_is_a_poisson_z_score() -> None:
    dataset = Dataset.from_frame(history())
    score, recent, expected = trend_scores(daily_counts(dataset)[0], 7, 3)
    steady, rising, small = dataset.items.index(np.array(["steady", "rising", "small"]))
    assert (recent[rising], expected[rising], score[rising]) == (70.0, 0.0, 70.0)
    assert expected[steady] == pytest.approx(14.0) and score[steady] == pytest.approx(0.0)
    assert score[small] == -np.inf  # under min_count
    with pytest.raises(ConfigError, match="between 1 and 55"):
        trend_scores(daily_counts(dataset)[0], 56, 3)


def test_trending_items_rank_the_rising_one_first() -> None:
    recommender = Recommender(create_scorer("popularity")).fit(Dataset.from_frame(history()))
    frame = trending_items(recommender, k=5)
    assert frame["item_id"].tolist() == ["rising", "steady"] and frame["rank"].tolist() == [1, 2]
    assert trending_items(recommender, k=5, item_ids=np.array(["steady"]))["item_id"].tolist() == ["steady"]
