"""The complementary-items benchmark: hand-checked hit rate and lift, and the planted pairs of the synthetic data."""

from __future__ import annotations

import pandas as pd
import pytest

from tailored.benchmarks.baskets import complementary_benchmark, list_quality
from tailored.data.dataset import Dataset
from tailored.data.synthetic import generate_retail
from tailored.models import create_scorer
from tailored.pipeline.recommender import Recommender


def test_hit_rate_and_lift_by_hand() -> None:
    # 4 training baskets: {a, b}, {a, b}, {a, c}, {c}:
    # lift(a, b) = (2/3) / (2/4) = 4/3, lift(a, c) = (1/3) / (2/4) = 2/3
    train = pd.DataFrame({"user_id": "u", "item_id": list("abab" "ac" "c"), "timestamp": [0, 0, 9, 9, 99, 99, 999],
                          "basket_id": [1, 1, 2, 2, 3, 3, 4]})
    recommender = Recommender(create_scorer("popularity")).fit(Dataset.from_frame(train))
    queries = pd.DataFrame({"basket_id": [7, 7, 8, 8], "item_id": ["a", "b", "a", "c"]})  # test baskets {a, b}, {a, c}
    lists = pd.DataFrame({"item_id": ["a", "a", "b"], "complementary_item_id": ["b", "c", "c"]})
    quality = list_quality(recommender, queries, lists)
    # a's list {b, c} hits in both baskets; b's {c} misses; c has no list: 2 hits of 4 queries
    assert quality["hit_rate"] == 0.5
    assert quality["mean_lift"] == pytest.approx((4 / 3 + 2 / 3 + 0.0) / 3)


@pytest.mark.slow
def test_on_synthetic_baskets_complements_keep_the_hit_rate_and_raise_the_lift() -> None:
    data = generate_retail(n_customers=1000, n_products=120, days=365, seed=7, malformed=False)
    purchases = data.interactions[data.interactions["event_type"] == "purchase"]
    table, partners = complementary_benchmark(purchases, data.complements)
    figures = table.set_index("method")
    assert figures.loc["complementary", "hit_rate_vs_popular"] >= 0.97
    assert figures.loc["complementary", "lift_vs_popular"] >= 1.15
    assert figures.loc["complementary, no backfill", "mean_lift"] > figures.loc["complementary", "mean_lift"]
    assert partners >= 0.8, partners
