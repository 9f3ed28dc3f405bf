"""The evaluator on a hand-computed case, against an independent implementation of PROTOCOLS.md, and its options."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError, DataError
from tailored.eval.evaluator import evaluate, evaluate_lists
from tailored.eval.significance import paired_test
from tailored.models.popularity import PopularityScorer
from tailored.pipeline.recommender import Recommender
from tailored.split import Split

LOG3 = math.log2(3)
# training popularity: A 4, B 3, D 2, C 1
TRAIN = pd.DataFrame(
    {
        "user_id": ["u1", "u1", "u2", "u2", "u2", "u3", "u3", "u4", "u4", "u4"],
        "item_id": ["A", "B", "A", "B", "C", "A", "D", "A", "B", "D"],
        "value": [1.0] * 10,
    }
)
# u5 has no training row; E is outside the training catalogue
TEST = pd.DataFrame(
    {"user_id": ["u1", "u2", "u3", "u3", "u5"], "item_id": ["C", "D", "B", "E", "A"],
     "value": [4.0, 2.0, 5.0, 3.0, 1.0]}
)
USERS = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u4", "u5"], "gender": ["F", "M", "F", "M", "M"]})


def _split() -> Split:
    dataset = Dataset.from_frame(pd.concat([TRAIN, TEST], ignore_index=True), users=USERS)
    rows = np.arange(len(dataset))
    return Split(train=dataset.subset(rows < len(TRAIN)), test=dataset.subset(rows >= len(TRAIN)), name="toy")


# Popularity lists at k=2, seen items excluded:
#   u1 (seen A, B)    -> [D, C]  test {C}     hits [0, 1]
#   u2 (seen A, B, C) -> [D]     test {D}     hits [1]
#   u3 (seen A, D)    -> [B, C]  test {B, E}  hits [1, 0]   (E can never be hit, still counted)
#   u5 (no training)  -> fallback [A, B]      test {A}     hits [1, 0]
EXPECTED = {
    "precision@2": (0.5 + 0.5 + 0.5 + 0.5) / 4,
    "recall@2": (1 + 1 + 0.5 + 1) / 4,
    "hr@2": 1.0,
    "ndcg@2": (1 / LOG3 + 1 + 1 / (1 + 1 / LOG3) + 1) / 4,
    "mrr@2": (0.5 + 1 + 1 + 1) / 4,
    "coverage@2": 4 / 4,
}


def test_evaluate_matches_hand_computation() -> None:
    split = _split()
    report = evaluate(Recommender(PopularityScorer()).fit(split.train), split, metrics=list(EXPECTED), bootstrap=0)
    assert dict(zip(report.table["metric"], report.table["value"], strict=True)) == pytest.approx(EXPECTED)
    assert report.per_user.index.tolist() == ["u1", "u2", "u3", "u5"]
    assert report.per_user["ndcg@2"].tolist() == pytest.approx([1 / LOG3, 1, 1 / (1 + 1 / LOG3), 1])
    assert report.info["users"] == 4 and report.info["k"] == 2


def test_unknown_users_count_with_the_fallback() -> None:
    split = _split()
    recommender = Recommender(PopularityScorer()).fit(Dataset.from_frame(TRAIN))  # u5 unknown to this model
    report = evaluate(recommender, split, metrics=list(EXPECTED), bootstrap=0)
    assert report.info["unknown_users"] == 1
    assert dict(zip(report.table["metric"], report.table["value"], strict=True)) == pytest.approx(EXPECTED)


def test_evaluate_lists_gives_the_same_figures_from_files() -> None:
    split = _split()
    recommender = Recommender(PopularityScorer()).fit(split.train)
    from_files = evaluate_lists(recommender.recommend(["u1", "u2", "u3", "u4", "u5"], 2), TEST, TRAIN, list(EXPECTED))
    direct = evaluate(recommender, split, metrics=list(EXPECTED), bootstrap=0)
    pd.testing.assert_frame_equal(from_files.to_frame(), direct.to_frame())


def test_bootstrap_intervals_resample_users() -> None:
    split = _split()
    recommender = Recommender(PopularityScorer()).fit(split.train)
    report = evaluate(recommender, split, metrics=["ndcg@2"], bootstrap=200, seed=5)
    values = report.per_user["ndcg@2"].to_numpy()
    means = values[np.random.default_rng(5).integers(0, 4, (200, 4))].mean(axis=1)
    row = report.table.iloc[0]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    again = evaluate(Recommender(PopularityScorer()).fit(split.train), split, metrics=["ndcg@2"], bootstrap=200, seed=5)
    pd.testing.assert_frame_equal(report.to_frame(), again.to_frame())
    assert paired_test(report.per_user["ndcg@2"], again.per_user["ndcg@2"]).t_pvalue == 1.0


def test_segments_break_down_by_a_user_attribute() -> None:
    split = _split()
    report = evaluate(Recommender(PopularityScorer()).fit(split.train), split, metrics=["ndcg@2", "coverage@2"],
                      bootstrap=0, segments="gender")
    segments = report.segments.set_index("gender")
    # F: u1, u3; M: u2, u5 (u4 has no test row)
    assert segments.loc["F", "users"] == 2 and segments.loc["M", "users"] == 2
    assert segments.loc["F", "ndcg@2"] == pytest.approx((1 / LOG3 + 1 / (1 + 1 / LOG3)) / 2)
    assert segments.loc["M", "coverage@2"] == pytest.approx(3 / 4)  # u2 [D], u5 [A, B]: 3 of the 4 catalogue items
    with pytest.raises(ConfigError, match="Segment column 'age' is not a user attribute; available: \\['gender'\\]"):
        evaluate(Recommender(PopularityScorer()).fit(split.train), split, metrics=["ndcg@2"], segments="age")


def test_sampled_negatives_are_labelled_and_rank_among_unseen_items() -> None:
    split = _split()
    report = evaluate(Recommender(PopularityScorer()).fit(split.train), split, metrics=["hr@1"], bootstrap=0,
                      sampled_negatives=1, seed=0)
    # u1: C vs the only eligible negative D (2 > 1) -> miss; u2: no eligible negative -> D alone -> hit;
    # u3: B vs C -> hit; u5: A (most popular) beats any negative -> hit
    assert report.value("hr@1 (sampled 1 negatives)") == pytest.approx(0.75)
    assert report.per_user["hr@1 (sampled 1 negatives)"].tolist() == [0.0, 1.0, 1.0, 1.0]
    assert report.value("hr@1") == pytest.approx(0.75)  # full ranking: u1 [D] misses, u2 [D], u3 [B], u5 [A] hit


@dataclass(eq=False)
class ConstantRatingScorer:
    """Predicts 3.0 for every pair: an explicit scorer for the rating metrics."""

    explicit: ClassVar[bool] = True
    handles_cold_users: ClassVar[bool] = True
    handles_cold_items: ClassVar[bool] = False

    def fit(self, dataset: Dataset) -> ConstantRatingScorer:
        self.n_items_ = dataset.n_items
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        return np.zeros((len(users), self.n_items_))

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.full(len(users), 3.0)


def test_rating_metrics_for_explicit_scorers_cover_every_test_pair() -> None:
    split = _split()
    report = evaluate(Recommender(ConstantRatingScorer()).fit(split.train), split, metrics=["ndcg@2"], bootstrap=50)
    # errors 3 - (4, 2, 5, 3, 1) = -1, 1, -2, 0, 2 (E and u5 predicted too): RMSE sqrt(10 / 5), MAE 6 / 5
    assert report.value("rmse") == pytest.approx(math.sqrt(2))
    assert report.value("mae") == pytest.approx(1.2)
    # the RMSE interval pools each drawn user's squared errors and pair count (u1, u2, u3, u5), then takes the root
    drawn = np.random.default_rng(42).integers(0, 4, (50, 4))
    rmse = np.sqrt(np.array([1.0, 1.0, 4.0, 4.0])[drawn].sum(axis=1) / np.array([1, 1, 2, 1])[drawn].sum(axis=1))
    row = report.table.set_index("metric").loc["rmse"]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(np.quantile(rmse, [0.025, 0.975])))
    with pytest.raises(ConfigError, match="rmse measures predicted ratings, but algorithm 'popularity' ranks items"):
        evaluate(Recommender(PopularityScorer()).fit(split.train), split, metrics=["rmse"])


def test_report_formats() -> None:
    split = _split()
    report = evaluate(Recommender(PopularityScorer()).fit(split.train), split, metrics=["hr@2"], bootstrap=0)
    assert report.to_markdown().splitlines()[:3] == [
        "| metric | value | ci_low | ci_high |", "|---|---|---|---|", "| hr@2 | 1.0000 | nan | nan |"
    ]
    assert report.to_dict()["metrics"] == {"hr@2": {"value": 1.0, "ci_low": None, "ci_high": None}}


def test_evaluate_lists_rejects_bad_input() -> None:
    recs = pd.DataFrame({"user_id": ["u1", "u1"], "item_id": ["A", "A"], "rank": [1, 2]})
    with pytest.raises(DataError, match="1 recommendations repeat an item for the same user"):
        evaluate_lists(recs, TEST, TRAIN, ["ndcg@2"])
    with pytest.raises(DataError, match="The recommendations frame lacks column\\(s\\) \\['rank'\\]"):
        evaluate_lists(recs.drop(columns="rank"), TEST, TRAIN, ["ndcg@2"])


def _reference(recs: pd.DataFrame, test: pd.DataFrame, train: pd.DataFrame, k: int) -> dict[str, float]:
    """PROTOCOLS.md, written out with plain Python loops."""
    relevant: dict[object, set] = defaultdict(set)
    for user, item in zip(test["user_id"], test["item_id"], strict=True):
        relevant[user].add(item)
    ranked: dict[object, list] = defaultdict(list)
    rows = zip(recs["user_id"], recs["item_id"], recs["rank"], strict=True)
    for user, item, _ in sorted(rows, key=lambda r: (str(r[0]), r[2])):
        ranked[user].append(item)
    catalogue = set(train["item_id"])
    sums = defaultdict(float)
    shown: dict[object, int] = defaultdict(int)
    for user, truth in relevant.items():
        top = ranked[user][:k]
        for item in top:
            shown[item] += 1
        hits = [item in truth for item in top]
        sums["precision"] += sum(hits) / k
        sums["recall"] += sum(hits) / len(truth)
        sums["hr"] += any(hits)
        dcg = sum(1 / math.log2(r + 2) for r, hit in enumerate(hits) if hit)
        sums["ndcg"] += dcg / sum(1 / math.log2(r + 2) for r in range(min(len(truth), k)))
        sums["mrr"] += next((1 / (r + 1) for r, hit in enumerate(hits) if hit), 0.0)
    result = {f"{name}@{k}": total / len(relevant) for name, total in sums.items()}
    result[f"coverage@{k}"] = len(shown) / len(catalogue)
    counts = [shown.get(item, 0) for item in catalogue]
    total = sum(counts)
    mean_difference = sum(abs(a - b) for a in counts for b in counts)
    result[f"gini@{k}"] = mean_difference / (2 * len(counts) * total) if total else 0.0
    return result


@pytest.mark.parametrize("seed", range(6))
def test_evaluate_lists_equals_an_independent_implementation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 8))

    def pairs(n: int, users: int, items: int) -> pd.DataFrame:
        frame = pd.DataFrame({"user_id": rng.integers(0, users, n), "item_id": rng.integers(0, items, n)})
        return frame.drop_duplicates().reset_index(drop=True)

    train, test = pairs(150, 20, 30), pairs(60, 25, 35)  # some test users and items never trained on
    recs = pairs(200, 28, 40)
    recs["rank"] = rng.permutation(len(recs)) * 3 + 1  # only the order within a user matters
    recs = recs.sample(frac=1.0, random_state=seed)
    metrics = [f"{name}@{k}" for name in ("precision", "recall", "hr", "ndcg", "mrr", "coverage", "gini")]
    report = evaluate_lists(recs, test, train, metrics)
    expected = _reference(recs, test, train, k)
    for name in metrics:
        assert report.value(name) == pytest.approx(expected[name], abs=1e-9), name
