"""Properties of every splitter (hypothesis) and hand-checked cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError, DataError
from tailored.split import (
    Split,
    check_leakage,
    split_cold_items,
    split_cold_users,
    split_leave_last_out,
    split_leave_one_out_random,
    split_per_user,
    split_random,
    split_temporal,
)
from tailored.split.cold_start import attributes_by_part

SPLITTERS = {
    "random": lambda d, seed: split_random(d, 0.3, seed),
    "per_user": lambda d, seed: split_per_user(d, 0.2, seed),
    "leave_last_out": lambda d, seed: split_leave_last_out(d, 1),
    "leave_one_out_random": lambda d, seed: split_leave_one_out_random(d, seed),
    "temporal": lambda d, seed: split_temporal(d, test_fraction=0.25),
    "cold_users": lambda d, seed: split_cold_users(d, 0.3, seed),
    "cold_items": lambda d, seed: split_cold_items(d, 0.3, seed),
}


@st.composite
def interactions(draw: st.DrawFn) -> pd.DataFrame:
    """Distinct (user, item) pairs with timestamps (ties included) and string-or-int ids."""
    n_users = draw(st.integers(2, 8))
    n_items = draw(st.integers(2, 10))
    pairs = draw(st.sets(st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1)), min_size=4, max_size=40))
    pairs = sorted(pairs)
    times = draw(st.lists(st.integers(0, 20), min_size=len(pairs), max_size=len(pairs)))
    order = draw(st.permutations(range(len(pairs))))
    return pd.DataFrame(
        {
            "user_id": [f"u{pairs[i][0]}" for i in order],
            "item_id": [pairs[i][1] * 7 for i in order],
            "value": np.arange(len(pairs), dtype=float)[list(order)],
            "timestamp": [times[i] for i in order],
        }
    )


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["user_id", "item_id"]).reset_index(drop=True)


@pytest.mark.parametrize("name", SPLITTERS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=interactions(), seed=st.integers(0, 2**16))
def test_split_is_a_leak_free_partition_and_deterministic(name: str, frame: pd.DataFrame, seed: int) -> None:
    dataset = Dataset.from_frame(frame)
    split = SPLITTERS[name](dataset, seed)
    assert split.train.users is dataset.users and split.test.items is dataset.items
    together = pd.concat([split.train.to_frame(), split.test.to_frame()])
    pd.testing.assert_frame_equal(_rows(together), _rows(dataset.to_frame()), check_dtype=False)  # a part may be empty
    summary = check_leakage(split)
    assert summary["train_rows"] + summary["test_rows"] == len(frame)
    again = SPLITTERS[name](dataset, seed)
    pd.testing.assert_frame_equal(again.test.to_frame(), split.test.to_frame())
    # the split depends on the data, not on the order of its rows
    shuffled = Dataset.from_frame(frame.sample(frac=1.0, random_state=seed))
    pd.testing.assert_frame_equal(_rows(SPLITTERS[name](shuffled, seed).test.to_frame()), _rows(split.test.to_frame()))


@settings(max_examples=40, deadline=None)
@given(frame=interactions(), fraction=st.sampled_from([0.1, 0.2, 0.25, 0.5, 0.7]), seed=st.integers(0, 99))
def test_per_user_counts(frame: pd.DataFrame, fraction: float, seed: int) -> None:
    split = split_per_user(Dataset.from_frame(frame), fraction, seed)
    n = frame.groupby("user_id").size()
    held = split.test.to_frame().groupby("user_id").size().reindex(n.index, fill_value=0)
    # Python's round (half to even), at least 1 in test when n >= 2, at least 1 left in training
    expected = [0 if k < 2 else min(max(round(fraction * k), 1), k - 1) for k in n]
    assert held.tolist() == expected


@settings(max_examples=40, deadline=None)
@given(frame=interactions())
def test_leave_last_out_takes_each_users_latest_row_ties_by_item_id(frame: pd.DataFrame) -> None:
    split = split_leave_last_out(Dataset.from_frame(frame))
    latest = frame.sort_values(["timestamp", "item_id"]).groupby("user_id").tail(1)
    counts = frame.groupby("user_id").size()
    expected = latest[latest["user_id"].map(counts) >= 2]
    pd.testing.assert_frame_equal(_rows(split.test.to_frame()), _rows(expected), check_dtype=False)


@settings(max_examples=30, deadline=None)
@given(frame=interactions(), seed=st.integers(0, 99))
def test_cold_users_and_items_have_no_training_rows(frame: pd.DataFrame, seed: int) -> None:
    dataset = Dataset.from_frame(frame)
    for split, column in ((split_cold_users(dataset, 0.3, seed), "user_id"),
                          (split_cold_items(dataset, 0.3, seed), "item_id")):
        test, train = split.test.to_frame(), split.train.to_frame()
        assert not set(test[column]) & set(train[column])
        active = frame[column].nunique()  # round(0.3 * n) ids, at least one and, with two or more, not all of them
        assert test[column].nunique() == min(max(round(0.3 * active), 1), max(active - 1, 1))
        assert len(test) + len(train) == len(frame)  # every row of a cold id is in test


@settings(max_examples=30, deadline=None)
@given(frame=interactions(), seed=st.integers(0, 99))
def test_attribute_tables_cut_into_training_rows_and_new_ones(frame: pd.DataFrame, seed: int) -> None:
    dataset = Dataset.from_frame(frame)
    for split, column in ((split_cold_users(dataset, 0.3, seed), "user_id"),
                          (split_cold_items(dataset, 0.3, seed), "item_id")):
        ids = [*sorted(frame[column].astype(str).unique()), "without interactions"]
        table = pd.DataFrame({column: ids, "colour": range(len(ids))})
        trained, new = attributes_by_part(split, table, column)
        in_test = set(split.test.to_frame()[column].astype(str)) - set(split.train.to_frame()[column].astype(str))
        assert set(new[column]) == in_test and len(new) == len(in_test) > 0
        assert sorted(trained[column]) == sorted(set(ids) - in_test)  # unseen ids stay with training
        assert sorted(pd.concat([trained, new])["colour"]) == list(range(len(ids)))  # every row kept, once


def test_leave_out_keeps_single_row_users_in_training() -> None:
    frame = pd.DataFrame(
        {"user_id": [1, 1, 1, 2], "item_id": [10, 30, 20, 10], "timestamp": [5, 9, 9, 3]}
    )
    split = split_leave_last_out(Dataset.from_frame(frame))
    # user 1: items 30 and 20 both at t=9, the larger item id (30) is the latest; user 2 has one row
    assert split.test.to_frame()[["user_id", "item_id"]].values.tolist() == [[1, 30]]
    assert len(split_leave_last_out(Dataset.from_frame(frame), n=2).test) == 2


def test_split_random_holds_out_an_exact_count() -> None:
    frame = pd.DataFrame({"user_id": np.arange(50) % 5, "item_id": np.arange(50)})
    split = split_random(Dataset.from_frame(frame), 0.3, seed=1)
    assert (len(split.train), len(split.test)) == (35, 15)
    assert split.params == {"test_fraction": 0.3, "seed": 1}
    assert len(split_random(Dataset.from_frame(frame), 0.3, seed=2).test.to_frame().merge(split.test.to_frame())) < 15


def test_cold_user_count_follows_round() -> None:
    frame = pd.DataFrame({"user_id": np.repeat(np.arange(10), 2), "item_id": np.tile([1, 2], 10)})
    split = split_cold_users(Dataset.from_frame(frame), 0.2, seed=3)
    assert split.test.to_frame()["user_id"].nunique() == 2 and len(split.test) == 4


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda d: split_per_user(d, 1.5), "test_fraction=1.5 must be a fraction"),
        (lambda d: split_cold_users(d, 0.0), "fraction=0.0 must be a fraction"),
        (lambda d: split_leave_last_out(d, 0), "n=0 must be a positive whole number"),
        (lambda d: split_temporal(d), "exactly one of cutoff"),
        (lambda d: split_temporal(d, cutoff=3, test_fraction=0.2), "exactly one of cutoff"),
    ],
)
def test_bad_parameters_say_what_and_how(call, message: str) -> None:
    dataset = Dataset.from_frame(pd.DataFrame({"user_id": [1, 1], "item_id": [1, 2], "timestamp": [1, 2]}))
    with pytest.raises(ConfigError, match=message):
        call(dataset)


def test_time_splits_need_timestamps() -> None:
    dataset = Dataset.from_frame(pd.DataFrame({"user_id": [1, 1], "item_id": [1, 2]}))
    with pytest.raises(DataError, match="split_leave_last_out needs a 'timestamp' column and the interactions have "
                                        "none: name the file's time column with --time-col"):
        split_leave_last_out(dataset)


def test_check_leakage_rejects_a_test_row_seen_in_training() -> None:
    dataset = Dataset.from_frame(pd.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 1], "timestamp": [1, 2, 3]}))
    leaky = Split(train=dataset, test=dataset.subset(np.array([1])), name="leaky")
    with pytest.raises(DataError, match=r"Leakage in split 'leaky': 1 test rows are also train rows"):
        check_leakage(leaky)
    cold = Split(train=dataset.subset(np.array([0, 2])), test=dataset.subset(np.array([1])), params={"cold": "users"})
    with pytest.raises(DataError, match="1 test users also occur in training"):
        check_leakage(cold)
    summary = check_leakage(Split(train=dataset.subset(np.array([0, 2])), test=dataset.subset(np.array([1]))))
    assert summary["test_items_unseen_in_train"] == 1 and summary["test_users_unseen_in_train"] == 0
