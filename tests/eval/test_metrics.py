"""Every metric on a hand-computed 3-user case, and hypothesis properties of the ranking metrics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from tailored.errors import ConfigError
from tailored.eval.metrics import RankedLists, mae, metric, rmse

LOG3 = np.log2(3)


def _toy() -> RankedLists:
    """Three users, top-3 lists over items 0..9 (items 0 and 9 have no training interactions).

    A: [1, 2, 3], relevant {1, 3}        -> hits [1, 0, 1]
    B: [4, 5, 6], relevant {6, 9}        -> hits [0, 0, 1]  (9 is outside the catalogue: counted, never hit)
    C: [2, 4, -], relevant {7}           -> hits [0, 0]     (only two items returned)
    """
    items = np.array([[1, 2, 3], [4, 5, 6], [2, 4, -1]])
    relevant = sp.csr_matrix((np.ones(4), ([0, 0, 1, 2], [1, 3, 6, 7])), shape=(3, 10))
    popularity = np.array([0, 5, 4, 3, 2, 1, 1, 1, 1, 0])
    features = sp.csr_matrix(np.array([[0, 0], [1, 0], [0, 1], [1, 0], [1, 1], [0, 1], [0, 1], [1, 0], [1, 0], [0, 0]]))
    return RankedLists(items, relevant, np.array([2, 2, 1]), popularity, n_train_users=10, item_features=features)


GOLDEN = {
    # hits / 3: A 2/3, B 1/3, C 0
    "precision@3": [2 / 3, 1 / 3, 0.0],
    # hits / |relevant|: A 2/2, B 1/2, C 0/1
    "recall@3": [1.0, 0.5, 0.0],
    "hr@3": [1.0, 1.0, 0.0],
    # A: (1/log2 2 + 1/log2 4) / (1 + 1/log2 3) = 1.5 / 1.63093; B: (1/log2 4) / (1 + 1/log2 3) = 0.5 / 1.63093
    "ndcg@3": [1.5 / (1 + 1 / LOG3), 0.5 / (1 + 1 / LOG3), 0.0],
    # first hit at rank 1, 3, none
    "mrr@3": [1.0, 1 / 3, 0.0],
    # A: (1/1 + 2/3) / min(2, 3); B: (1/3) / 2
    "map@3": [(1 + 2 / 3) / 2, 1 / 6, 0.0],
    # -log2(popularity / 10) averaged over the returned items: A 5,4,3; B 2,1,1; C 4,2
    "novelty@3": [
        -(np.log2(0.5) + np.log2(0.4) + np.log2(0.3)) / 3,
        -(np.log2(0.2) + 2 * np.log2(0.1)) / 3,
        -(np.log2(0.4) + np.log2(0.2)) / 2,
    ],
    "popularity@3": [(5 + 4 + 3) / 3, (2 + 1 + 1) / 3, (4 + 2) / 2],
    # 1 - mean pairwise cosine: A {1:(1,0), 2:(0,1), 3:(1,0)} sims 0, 1, 0; B {4:(1,1), 5,6:(0,1)} sims .7071, .7071, 1;
    # C {2:(0,1), 4:(1,1)} sim .7071
    "diversity@3": [1 - 1 / 3, 1 - (2 / np.sqrt(2) + 1) / 3, 1 - 1 / np.sqrt(2)],
}


@pytest.mark.parametrize("name", GOLDEN)
def test_per_user_metrics_match_hand_computation(name: str) -> None:
    np.testing.assert_allclose(metric(name)(_toy()), GOLDEN[name], rtol=1e-12)


def test_catalogue_metrics_match_hand_computation() -> None:
    lists = _toy()
    # items shown {1, 2, 3, 4, 5, 6} over the 8 catalogue items 1..8
    assert metric("coverage@3")(lists) == pytest.approx(6 / 8)
    # exposure of items 1..8: 1, 2, 1, 2, 1, 1, 0, 0 -> sorted 0 0 1 1 1 1 2 2, sum 8, n 8
    # sum((2i - n - 1) x_i) = -3 - 1 + 1 + 3 + 5*2 + 7*2 = 24 -> 24 / (8 * 8) = 0.375
    assert metric("gini@3")(lists) == pytest.approx(0.375)
    # cut at 1: items {1, 4, 2}: coverage 3/8
    assert metric("coverage@1")(lists) == pytest.approx(3 / 8)


def test_rating_metrics() -> None:
    # errors -1, 1, -2, 0, 2: squared 1, 1, 4, 0, 4 -> mean 2; absolute mean 6/5
    predictions, truth = np.full(5, 3.0), np.array([4, 2, 5, 3, 1])
    assert rmse(predictions, truth) == pytest.approx(np.sqrt(2))
    assert mae(predictions, truth) == pytest.approx(1.2)


def test_unknown_metric_names_list_the_choices() -> None:
    with pytest.raises(ConfigError, match="Unknown metric 'ndgc@10'. Use NAME@K with NAME one of precision"):
        metric("ndgc@10")


@st.composite
def ranked(draw: st.DrawFn) -> RankedLists:
    n_users, n_items, k = draw(st.integers(1, 6)), draw(st.integers(3, 15)), draw(st.integers(1, 6))
    rows, relevant_rows, relevant_cols = [], [], []
    for user in range(n_users):
        shown = draw(st.lists(st.integers(0, n_items - 1), unique=True, max_size=k))
        rows.append(shown + [-1] * (k - len(shown)))
        truth = draw(st.sets(st.integers(0, n_items - 1), min_size=1, max_size=n_items))
        relevant_rows += [user] * len(truth)
        relevant_cols += sorted(truth)
    relevant = sp.csr_matrix((np.ones(len(relevant_rows)), (relevant_rows, relevant_cols)), shape=(n_users, n_items))
    n_relevant = np.bincount(relevant_rows, minlength=n_users)
    return RankedLists(np.array(rows), relevant, n_relevant, np.ones(n_items), n_users)


@settings(max_examples=150, deadline=None)
@given(lists=ranked())
def test_ranking_metric_properties(lists: RankedLists) -> None:
    k = lists.items.shape[1]
    ndcg = metric(f"ndcg@{k}")(lists)
    assert np.all((ndcg >= 0) & (ndcg <= 1 + 1e-12))
    recalls = np.array([metric(f"recall@{cut}")(lists) for cut in range(1, k + 1)])
    assert np.all(np.diff(recalls, axis=0) >= 0)
    precision = metric(f"precision@{k}")(lists)
    np.testing.assert_allclose(precision * k, recalls[-1] * lists.n_relevant)
    hits = metric(f"hr@{k}")(lists)
    assert np.array_equal(hits > 0, recalls[-1] > 0) and np.all(metric(f"mrr@{k}")(lists) <= hits)


@settings(max_examples=100, deadline=None)
@given(n_relevant=st.integers(1, 8), k=st.integers(1, 8), extra=st.integers(0, 5))
def test_ndcg_is_one_when_the_first_positions_are_all_relevant(n_relevant: int, k: int, extra: int) -> None:
    n_items = n_relevant + extra + k
    relevant = sp.csr_matrix((np.ones(n_relevant), (np.zeros(n_relevant, int), np.arange(n_relevant))),
                             shape=(1, n_items))
    shown = np.r_[np.arange(min(k, n_relevant)), n_relevant + extra + np.arange(k - min(k, n_relevant))]
    lists = RankedLists(shown[None, :], relevant, np.array([n_relevant]), np.ones(n_items), 1)
    assert metric(f"ndcg@{k}")(lists)[0] == pytest.approx(1.0)
