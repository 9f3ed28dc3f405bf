"""The ranker trained on a feedback log (`tailored.models.ranker_feedback`): one query per click, its list's unclicked
items beside it, weighted by the inverse examination probability of its position; features read before the log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.benchmarks.ranker_feedback import ranker_feedback_benchmark
from tailored.data.dataset import Dataset
from tailored.errors import ConfigError, DataError
from tailored.models.base import create_scorer
from tailored.models.ranker import value_grades
from tailored.models.ranker_feedback import FeedbackGroups, FeedbackLog
from tailored.models.ranker_features import ContextKeys
from tests.conftest import require_extra

require_extra("ranker", "lightgbm")

START = 1_700_000_000.0


def history(n_users: int = 30, n_items: int = 20, seed: int = 0) -> pd.DataFrame:
    """Random interactions, one day apart per user, before `START`."""
    rng = np.random.default_rng(seed)
    rows = [(f"u{user}", f"i{item}", START - 86_400.0 * (1 + step))
            for user in range(n_users) for step, item in enumerate(rng.choice(n_items, 8, replace=False))]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def log_rows(lists: list[tuple[str, str, list[str], list[int]]]) -> pd.DataFrame:
    """A feedback log of (exposure, user, items shown top first, clicked positions) lists, shown after `START`."""
    rows = [(exposure, user, position, item, 0.5, "softmax", "m1", START + 60.0 * number,
             int(position in clicked), 0, 0.0)
            for number, (exposure, user, items, clicked) in enumerate(lists)
            for position, item in enumerate(items, start=1)]
    return pd.DataFrame(rows, columns=["exposure_id", "user_id", "position", "item_id", "propensity", "policy",
                                       "model_version", "created_at", "click", "purchase", "revenue"])


def test_each_click_is_a_query_of_its_lists_unclicked_items_weighted_by_its_position(tmp_path) -> None:
    dataset = Dataset.from_frame(history())
    path = tmp_path / "log.csv"
    log_rows([("e1", "u0", ["i0", "i1", "i2", "i3"], [2, 4]), ("e2", "u1", ["i4", "i5", "i6"], []),
              ("e3", "u1", ["i7", "i8", "i9"], [1])]).to_csv(path, index=False)
    log = FeedbackLog.read(str(path), dataset, "click")
    levels = log.levels(ContextKeys((), ()))
    groups = FeedbackGroups.of(log, levels, "none")
    members = [(dataset.items.ids(groups.items[groups.query == q]).tolist(), groups.labels[groups.query == q].tolist())
               for q in range(3)]
    assert members == [(["i1", "i0", "i2"], [1.0, 0.0, 0.0]), (["i3", "i0", "i2"], [1.0, 0.0, 0.0]),
                       (["i7", "i8", "i9"], [1.0, 0.0, 0.0])]  # the other click of e1 is in neither's negatives
    assert groups.users.tolist() == dataset.users.index(np.array(["u0", "u0", "u1"])).tolist()
    np.testing.assert_array_equal(groups.weights, [1.0, 1.0, 1.0])
    weighted = FeedbackGroups.of(log, levels, "position")
    theta = log.examination()
    assert theta[0] == pytest.approx(1.0) and np.all(np.diff(theta) <= 0)
    expected = 1.0 / theta[[1, 3, 0]]
    np.testing.assert_allclose(weighted.weights, expected / expected.mean())
    assert weighted.weights[1] > weighted.weights[0] > weighted.weights[2]  # slot 4, slot 2, slot 1
    chosen = weighted.subset(np.array([False, True, True]))
    assert chosen.query.tolist() == [0, 0, 0, 1, 1, 1] and dataset.items.ids(chosen.items[:1]).tolist() == ["i3"]


def test_by_value_each_purchase_is_a_query_graded_by_its_revenue(tmp_path) -> None:
    """``gain=value``: the positives are the rows with revenue, graded by it (`value_grades`), and a click that
    bought nothing is among the others."""
    dataset = Dataset.from_frame(history())
    frame = log_rows([("e1", "u0", ["i0", "i1", "i2"], [1, 2]), ("e2", "u1", ["i3", "i4"], [2])])
    frame.loc[[1, 4], "purchase"] = 1
    frame.loc[[1, 4], "revenue"] = [30.0, 10.0]
    path = tmp_path / "log.csv"
    frame.to_csv(path, index=False)
    log = FeedbackLog.read(str(path), dataset, "revenue")
    positive = log.rewards > 0
    grades, gains = value_grades(log.rewards[positive])
    groups = FeedbackGroups.of(log, log.levels(ContextKeys((), ())), "none", grades, gains)
    members = [(dataset.items.ids(groups.items[groups.query == q]).tolist(), groups.labels[groups.query == q].tolist())
               for q in range(2)]
    assert members == [(["i1", "i0", "i2"], [2.0, 0.0, 0.0]), (["i4", "i3"], [1.0, 0.0])]
    np.testing.assert_allclose(groups.gains, [0.0, 0.5, 1.5])  # each grade's mean revenue over the mean


def test_the_features_are_read_before_the_first_list_shown(tmp_path) -> None:
    """Interactions at or after the log's first list change nothing of the trees (only the serving retrievers)."""
    frame = history(60, 25)
    rng = np.random.default_rng(1)
    lists = [(f"e{n}", f"u{n % 60}", [f"i{i}" for i in rng.choice(25, 6, replace=False)], [int(rng.integers(1, 7))])
             for n in range(240)]
    log = log_rows(lists)
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    later = pd.DataFrame({"user_id": log.user_id[log.click > 0], "item_id": log.item_id[log.click > 0],
                          "timestamp": log.created_at[log.click > 0]})
    params = {"retrievers": "ease,popularity", "candidates": 10, "feedback": str(path)}
    alone = create_scorer("ranker", params).fit(Dataset.from_frame(frame))
    joined = create_scorer("ranker", params).fit(Dataset.from_frame(pd.concat([frame, later], ignore_index=True)))
    assert alone.booster_.tobytes() == joined.booster_.tobytes()
    assert "ease_score" in alone.feature_names_.tolist()


def test_bad_feedback_logs_are_named(tmp_path) -> None:
    dataset = Dataset.from_frame(history())
    untimed = tmp_path / "untimed.csv"
    log_rows([("e1", "u0", ["i0", "i1"], [1])]).drop(columns="created_at").to_csv(untimed, index=False)
    with pytest.raises(DataError, match="'created_at' not found in .*untimed.csv"):
        create_scorer("ranker", {"retrievers": "ease", "feedback": str(untimed)}).fit(dataset)
    early = tmp_path / "early.csv"
    log_rows([("e1", "u0", ["i0", "i1"], [1])]).assign(created_at=START - 400 * 86_400.0).to_csv(early, index=False)
    with pytest.raises(DataError, match="no interaction comes before the first list of .*early.csv"):
        create_scorer("ranker", {"retrievers": "ease", "feedback": str(early)}).fit(dataset)
    strangers = tmp_path / "strangers.csv"
    log_rows([("e1", "x0", ["y0", "y1"], [1])]).to_csv(strangers, index=False)
    with pytest.raises(DataError, match="None of the 2 rows of .*strangers.csv has a user and an item"):
        create_scorer("ranker", {"retrievers": "ease", "feedback": str(strangers)}).fit(dataset)
    with pytest.raises(ConfigError, match="ranker.feedback_weighting"):
        create_scorer("ranker", {"feedback_weighting": "propensity"}).fit(dataset)


def test_the_ranker_learns_from_its_feedback_log_in_a_simulated_world() -> None:
    """The engine's own exploring log makes the ranker better than its retriever and than its carve, by the hidden
    truth, and weighting clicks by their position does better than counting them alike (seed 0 of a small world;
    `tailored benchmark ranker-feedback` runs larger ones)."""
    table = ranker_feedback_benchmark([0], impressions=15_000, users=600, items=300, say=lambda _: None)
    clicks = table.set_index("model")["expected_clicks"]
    weighted = clicks["ranker, feedback log, position weights"]
    assert weighted > 1.05 * clicks["als"], clicks
    assert weighted > clicks["ranker, feedback log, no weights"], clicks
    assert weighted > clicks["ranker, user carve (no log)"], clicks
