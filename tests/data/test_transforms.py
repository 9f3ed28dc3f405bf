"""Transforms: weighting, binarising, log1p, time windows, k-core, time decay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailored.data.columns import ITEM_ID, TIMESTAMP, USER_ID, VALUE
from tailored.data.dataset import Dataset
from tailored.data.transforms import (
    aggregate_pairs,
    apply_weighting,
    binarise,
    history_window,
    k_core,
    log1p_values,
    time_decay_weights,
)
from tailored.errors import ConfigError, DataError

DAY = 86_400
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z


def dataset(rows: list[tuple[str, str, float, int]]) -> Dataset:
    return Dataset.from_frame(pd.DataFrame(rows, columns=[USER_ID, ITEM_ID, VALUE, TIMESTAMP]))


@pytest.fixture
def ratings() -> Dataset:
    return dataset(
        [("u1", "i1", 5, T0), ("u1", "i2", 3, T0 + DAY), ("u2", "i1", 4, T0 + 2 * DAY), ("u2", "i3", 1, T0 + 3 * DAY)]
    )


def test_binarise_keeps_values_at_or_above_the_threshold_as_ones(ratings: Dataset) -> None:
    positives = binarise(ratings, 4)
    assert positives.to_frame()[[USER_ID, ITEM_ID]].values.tolist() == [["u1", "i1"], ["u2", "i1"]]
    assert positives.values.tolist() == [1.0, 1.0]
    assert positives.users == ratings.users and positives.items == ratings.items
    assert len(binarise(ratings, 0)) == 4


def test_log1p_values(ratings: Dataset) -> None:
    assert log1p_values(ratings).values == pytest.approx(np.log1p([5, 3, 4, 1]))
    assert len(log1p_values(ratings)) == 4


def test_log1p_values_refuses_negative_values() -> None:
    with pytest.raises(DataError, match=r"found 1 negative \(minimum -2\).*min_value=0"):
        log1p_values(dataset([("u1", "i1", -2, T0), ("u1", "i2", 1, T0)]))


def test_history_window_by_days_ends_at_the_latest_interaction(ratings: Dataset) -> None:
    assert history_window(ratings, days=2).timestamps.tolist() == [T0 + 2 * DAY, T0 + 3 * DAY]
    assert len(history_window(ratings, days=100)) == 4


def test_history_window_by_start_end_and_days(ratings: Dataset) -> None:
    assert history_window(ratings, start=T0 + DAY).timestamps.tolist() == [T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY]
    assert history_window(ratings, end="2024-01-03").timestamps.tolist() == [T0, T0 + DAY]
    assert history_window(ratings, start="2024-01-02", days=1).timestamps.tolist() == [T0 + DAY]
    assert history_window(ratings, end=pd.Timestamp("2024-01-03", tz="UTC"), days=1).timestamps.tolist() == [T0 + DAY]
    assert history_window(ratings, start=T0 + DAY, end=T0 + 3 * DAY).timestamps.tolist() == [T0 + DAY, T0 + 2 * DAY]


def test_history_window_errors(ratings: Dataset) -> None:
    without_time = Dataset.from_frame(pd.DataFrame({USER_ID: ["u1"], ITEM_ID: ["i1"]}))
    with pytest.raises(DataError, match="no 'timestamp' column"):
        history_window(without_time, days=30)
    with pytest.raises(ConfigError, match="needs days, start or end"):
        history_window(ratings)
    with pytest.raises(ConfigError, match="at most two"):
        history_window(ratings, days=1, start=T0, end=T0 + DAY)
    with pytest.raises(ConfigError, match="days > 0"):
        history_window(ratings, days=0)


def test_k_core_iterates_until_stable() -> None:
    # u3 has one interaction; removing it leaves i3 with one, whose removal leaves u2 with one
    data = dataset([("u1", "i1", 1, T0), ("u1", "i2", 1, T0), ("u2", "i1", 1, T0), ("u2", "i2", 1, T0),
                    ("u2", "i3", 1, T0), ("u3", "i3", 1, T0), ("u4", "i3", 1, T0), ("u4", "i4", 1, T0)])
    core = k_core(data, 2)
    assert sorted(map(tuple, core.to_frame()[[USER_ID, ITEM_ID]].values.tolist())) == [
        ("u1", "i1"), ("u1", "i2"), ("u2", "i1"), ("u2", "i2")
    ]
    assert core.users == data.users
    assert len(k_core(data, 1)) == len(data)
    assert len(k_core(data, 1, k_items=3)) == 3  # only i3 has 3 interactions; u2, u3, u4 keep one each


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=60),
    k_users=st.integers(1, 4),
    k_items=st.integers(1, 4),
)
def test_k_core_property(pairs: list[tuple[int, int]], k_users: int, k_items: int) -> None:
    data = dataset([(f"u{u}", f"i{i}", 1.0, T0) for u, i in pairs])
    core = k_core(data, k_users, k_items)
    users, items = core.user_counts(), core.item_counts()
    assert ((users == 0) | (users >= k_users)).all()
    assert ((items == 0) | (items >= k_items)).all()
    # stable: the k-core of the core is itself
    assert len(k_core(core, k_users, k_items)) == len(core)
    assert len(core) <= len(data)


def test_aggregate_pairs_and_weightings() -> None:
    data = dataset([("u1", "i1", 2, T0), ("u1", "i1", 3, T0 + DAY), ("u2", "i1", 0, T0)])
    merged = aggregate_pairs(data).to_frame()
    assert merged.values.tolist() == [["u1", "i1", 5.0, T0 + DAY], ["u2", "i1", 0.0, T0]]
    assert apply_weighting(data, "raw") is data
    assert apply_weighting(data, "binary").values.tolist() == [1.0, 0.0]
    assert apply_weighting(data, "log1p").values == pytest.approx(np.log1p([5.0, 0.0]))
    confidence = apply_weighting(data, "confidence", confidence_alpha=2.0)
    assert confidence.values == pytest.approx(1 + 2 * np.log1p([5.0, 0.0]))


def test_aggregated_pairs_keep_the_context_of_their_latest_row() -> None:
    """The device and channel of a pair's latest event (a context-aware ranker reads them), whatever the rows'
    order; the pairs in order of first appearance, as without such columns."""
    frame = pd.DataFrame({"user_id": ["u1", "u2", "u1", "u1"], "item_id": ["i1", "i1", "i1", "i2"],
                          "value": 1.0, "timestamp": [T0 + DAY, T0, T0, T0 + 2 * DAY],
                          "device": ["mobile", "desktop", "desktop", None], "channel": ["app", "web", "web", "email"]})
    merged = aggregate_pairs(Dataset.from_frame(frame)).to_frame()
    assert merged[["user_id", "item_id", "value", "channel"]].values.tolist() == [
        ["u1", "i1", 2.0, "app"], ["u2", "i1", 1.0, "web"], ["u1", "i2", 1.0, "email"]]
    assert merged.device.tolist()[:2] == ["mobile", "desktop"] and pd.isna(merged.device[2])


def test_time_decay_weights_halve_every_half_life() -> None:
    stamps = np.array([T0, T0 - 10 * DAY, T0 - 20 * DAY])
    assert time_decay_weights(stamps, half_life_days=10) == pytest.approx([1.0, 0.5, 0.25])
    assert time_decay_weights(stamps, half_life_days=10, now=T0 + 10 * DAY) == pytest.approx([0.5, 0.25, 0.125])
