"""Algorithm-specific checks for the ranking scorers (the generic contract lives in test_contract.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.errors import DataError
from tailored.models.base import create_scorer
from tailored.pipeline.recommender import Recommender
from tailored.data.transforms import recency_weighted
from tailored.models.knn import prune_columns, reweight


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    """200 users in two taste groups over 60 items, with timestamps."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(200):
        group = user % 2
        pool = np.arange(30) + 30 * group
        items = rng.choice(pool, size=12, replace=False)
        rows += [(f"u{user}", f"i{item}", 1.0, 1000 + t) for t, item in enumerate(items)]
    return Dataset.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"]))


@pytest.mark.parametrize("similarity", ["cosine", "rp3beta"])
def test_item_knn_keeps_at_most_neighbors_per_item(dataset: Dataset, similarity: str) -> None:
    scorer = create_scorer("item-knn", {"neighbors": 5, "similarity": similarity}).fit(dataset)
    per_item = np.diff(scorer.similarity_.tocsc().indptr)
    assert per_item.max() <= 5
    assert per_item.min() > 0
    assert scorer.similarity_.diagonal().sum() == 0


def test_prune_columns_keeps_the_largest() -> None:
    block = np.array([[0.9, 0.1], [0.5, 0.7], [0.2, 0.8], [0.0, -1.0]])
    pruned = prune_columns(block, 2).toarray()
    np.testing.assert_array_equal(pruned, [[0.9, 0.0], [0.5, 0.7], [0.0, 0.8], [0.0, 0.0]])


def test_a_sparse_block_is_pruned_by_its_entries_to_the_same_neighbours() -> None:
    block = sp.random(3000, 40, density=0.01, random_state=0, format="csc")  # below DENSE_SHARE: the sparse path
    block.data -= 0.3  # some negative similarities, never kept
    np.testing.assert_array_equal(prune_columns(block, 5).toarray(), prune_columns(block.toarray(), 5).toarray())
    assert prune_columns(block, 5).getnnz(axis=0).max() == 5


def _column_values(matrix: sp.spmatrix) -> list[list[float]]:
    """Each column's values, sorted."""
    columns = sp.csc_matrix(matrix)
    bounds = zip(columns.indptr[:-1], columns.indptr[1:])
    return [sorted(np.round(columns.data[start:stop], 5)) for start, stop in bounds]


def test_item_knn_on_a_wide_catalogue_takes_the_sparse_path_with_the_same_model(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user_id": rng.integers(0, 300, 900), "item_id": rng.integers(0, 2000, 900)})
    dataset = Dataset.from_frame(frame.drop_duplicates())
    for params in ({}, {"similarity": "cosine", "feature_weighting": "bm25"}):
        sparse = create_scorer("item-knn", params | {"neighbors": 3}).fit(dataset).similarity_
        monkeypatch.setattr("tailored.models.knn.DENSE_SHARE", 0.0)  # every block dense
        dense = create_scorer("item-knn", params | {"neighbors": 3}).fit(dataset).similarity_
        monkeypatch.undo()
        assert sparse.nnz > 0 and sparse.diagonal().sum() == 0
        # the same k largest similarities per item; among tied ones either path may keep another item
        assert _column_values(sparse) == _column_values(dense)


def test_item_knn_prefers_the_users_group(dataset: Dataset) -> None:
    for params in ({}, {"similarity": "cosine", "feature_weighting": "bm25", "shrink": 10.0}):
        scores = create_scorer("item-knn", params).fit(dataset).score(np.array([0, 1]))
        group_items = dataset.items.index(np.array([f"i{i}" for i in range(30)]))
        assert scores[0, group_items].sum() > scores[0].sum() / 2 > scores[1, group_items].sum()


def test_bm25_downweights_frequent_terms_and_saturates() -> None:
    documents = sp.csr_matrix(np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [9.0, 0.0]]))
    weighted = reweight(documents, "bm25").toarray()
    # the first term is in every document: idf clipped to 0; the rare one keeps a positive weight
    assert np.all(weighted[:, 0] == 0) and weighted[0, 1] > 0
    # the first term in 2 documents of 5 (of 3, its idf log 3 - log1p 2 is 0 up to rounding, which differs by CPU)
    counts = np.array([[1.0, 1.0], [9.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    tf = reweight(sp.csr_matrix(counts), "bm25").toarray()
    assert tf[0, 0] < tf[1, 0] < 9 * tf[0, 0]  # term frequency saturates
    tfidf = reweight(documents, "tfidf").toarray()
    np.testing.assert_allclose(tfidf[3, 0], 3.0 * (np.log(4) - np.log(5)))


def test_recency_weighting_halves_per_half_life() -> None:
    frame = pd.DataFrame(
        {"user_id": [1, 1, 1, 1, 2], "item_id": [10, 11, 12, 13, 10], "value": 1.0, "timestamp": [5, 3, 3, 1, 0]}
    )
    data = Dataset.from_frame(frame)
    matrix = recency_weighted(data, half_life=1.0).toarray()
    np.testing.assert_allclose(matrix[0], [1.0, 0.5, 0.5, 0.125])  # ties share the weight of their position
    np.testing.assert_allclose(matrix[1], [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(recency_weighted(data).toarray(), data.matrix().toarray())


def test_recency_moves_item_knn_towards_the_latest_item(dataset: Dataset) -> None:
    frame = dataset.to_frame()
    latest = pd.DataFrame({"user_id": ["u0"], "item_id": ["i45"], "value": [1.0], "timestamp": [5000]})
    data = Dataset.from_frame(pd.concat([frame, latest], ignore_index=True))
    other_group = data.items.index(np.array([f"i{i}" for i in range(30, 60)]))
    plain = create_scorer("item-knn", {}).fit(data).score(np.array([0]))[0]
    recent = create_scorer("item-knn", {"recency_half_life": 1.0}).fit(data).score(np.array([0]))[0]
    assert recent[other_group].sum() / recent.sum() > plain[other_group].sum() / plain.sum()


def test_user_knn_uses_at_most_neighbors_users(dataset: Dataset) -> None:
    scorer = create_scorer("user-knn", {"neighbors": 1}).fit(dataset)
    scores = scorer.score(np.array([0]))
    assert np.count_nonzero(scores) <= 12  # one neighbour's 12 items at most
    assert scorer.score(np.array([-1, 10_000])).sum() == 0


def test_user_knn_folds_in_a_new_history_against_the_training_users(dataset: Dataset) -> None:
    """A new row is weighted by the training users' BM25 statistics, compared with every training user by the
    asymmetric cosine, and scored by its ``neighbors`` nearest users' rows (a reference computed densely)."""
    params = {"neighbors": 7, "alpha": 0.3, "shrink": 2.0}
    scorer = create_scorer("user-knn", params).fit(dataset)
    training = dataset.matrix().toarray()
    new = np.zeros((2, dataset.n_items))
    new[0, dataset.items.index(np.array(["i1", "i4", "i7"]))] = 1.0
    new[1, dataset.items.index(np.array(["i31", "i40"]))] = [1.0, 3.0]
    n_users = len(training)
    idf = np.log(n_users) - np.log1p((training != 0).sum(axis=0))
    def bm25(rows: np.ndarray) -> np.ndarray:
        norm = 0.25 + 0.75 * rows.sum(axis=1, keepdims=True) / training.sum(axis=1).mean()
        return np.where(rows != 0, rows * 2.2 / (1.2 * norm + rows) * np.clip(idf, 0, None), 0.0)
    users, queries = bm25(training), bm25(new)
    norms, query_norms = np.linalg.norm(users, axis=1), np.linalg.norm(queries, axis=1)
    cosine = users @ queries.T / (norms[:, None] ** 1.4 * query_norms[None, :] ** 0.6 + 2.0)
    expected = np.zeros_like(new)
    for column in range(2):
        nearest = np.argsort(-cosine[:, column], kind="stable")[:7]
        expected[column] = cosine[nearest, column] @ training[nearest]
    np.testing.assert_allclose(scorer.score_rows(sp.csr_matrix(new)), expected, rtol=1e-6)
    assert expected[1, 30:].sum() > 0 and expected[0, :30].sum() > expected[0, 30:].sum()  # each near its own group


def test_content_scores_a_cold_item_with_attributes() -> None:
    frame = pd.DataFrame({"user_id": [1, 1, 2], "item_id": ["a", "b", "c"], "value": 1.0})
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "cold", "other"],
            "genres": ["Action|Sci-Fi", "Action", "Romance", "Action|Sci-Fi", "Romance|Drama"],
            "title": ["space war", "war games", "love story", "space station", "love letters"],
        }
    )
    data = Dataset.from_frame(frame, items=items)
    scorer = create_scorer("content", {}).fit(data)
    cold, other = data.items.index(np.array(["cold", "other"]))
    scores = scorer.score(np.array([0]))
    assert scores[0, cold] > 0.5 > scores[0, other]
    np.testing.assert_allclose(scorer.score(np.array([0]), np.array([cold, other])), scores[:, [cold, other]])
    assert np.allclose(np.asarray(scorer.item_vectors_.multiply(scorer.item_vectors_).sum(axis=1)), 1.0)


def test_content_without_attributes_says_what_to_do(dataset: Dataset) -> None:
    with pytest.raises(Exception, match="needs item attributes"):
        create_scorer("content", {}).fit(dataset)


@pytest.mark.parametrize("algorithm", ["als", "bpr"])
def test_factor_models_are_deterministic_with_a_seed(dataset: Dataset, algorithm: str) -> None:
    first = create_scorer(algorithm, {"seed": 3, "epochs": 5}).fit(dataset).score(np.arange(5))
    second = create_scorer(algorithm, {"seed": 3, "epochs": 5}).fit(dataset).score(np.arange(5))
    other = create_scorer(algorithm, {"seed": 4, "epochs": 5}).fit(dataset).score(np.arange(5))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("algorithm", ["als", "bpr"])
def test_factor_models_keep_only_arrays(dataset: Dataset, algorithm: str) -> None:
    scorer = create_scorer(algorithm, {"epochs": 2}).fit(dataset)
    state = {k: v for k, v in vars(scorer).items() if k.endswith("_")}
    assert set(state) == {"user_factors_", "item_factors_"}
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert scorer.score(np.array([0]), np.array([3, 1])).shape == (1, 2)


def test_ease_recency_changes_only_the_history(dataset: Dataset) -> None:
    plain = create_scorer("ease", {"reg": 10.0}).fit(dataset)
    recent = create_scorer("ease", {"reg": 10.0, "recency_half_life": 2.0}).fit(dataset)
    np.testing.assert_array_equal(plain.weights_, recent.weights_)
    assert not np.allclose(plain.score(np.array([0])), recent.score(np.array([0])))


def test_recommender_offers_items_known_only_from_attributes_with_content() -> None:
    frame = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x1", "x2", "y1"], "value": 1.0})
    items = pd.DataFrame({"item_id": ["x1", "x2", "y1", "x3", "y2"], "category": ["x", "x", "y", "x", "y"]})
    dataset = Dataset.from_frame(frame, items=items)
    content = Recommender(create_scorer("content")).fit(dataset).recommend(["a"], n=2)
    assert content["item_id"].tolist()[0] == "x3"  # cold, same category as a's history
    ease = Recommender(create_scorer("ease")).fit(dataset).recommend(["a"], n=5)["item_id"].tolist()
    assert ease.index("x3") < ease.index("y2")  # cold items come through the item model: x3 shares a's category
    bare = Recommender(create_scorer("ease")).fit(Dataset.from_frame(frame)).recommend(["a"], n=5)
    assert set(bare["item_id"]) == {"y1"}  # without item attributes only items seen in training are ranked


def test_items_added_in_two_steps_are_all_scored_and_candidates_restrict_the_ranking() -> None:
    frame = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "item_id": ["x1", "x2", "y1", "y2"], "value": 1.0})
    items = pd.DataFrame({"item_id": ["x1", "x2", "y1", "y2"], "category": ["x", "x", "y", "y"]})
    recommender = Recommender(create_scorer("ease")).fit(Dataset.from_frame(frame, items=items))
    once = recommender.with_items(pd.DataFrame({"item_id": ["x3"], "category": ["x"]}))
    twice = once.with_items(pd.DataFrame({"item_id": ["y3", "x3"], "category": ["y", "x"]}))
    ranked = twice.restricted_to(["x3", "y3"]).recommend(["a", "b"], n=2)
    assert ranked.groupby("user_id")["item_id"].first().to_dict() == {"a": "x3", "b": "y3"}
    with pytest.raises(DataError, match="unknown to the model"):
        recommender.restricted_to(["x3"])
    bare = Recommender(create_scorer("ease")).fit(Dataset.from_frame(frame))
    with pytest.raises(DataError, match="without item attributes"):
        bare.with_items(pd.DataFrame({"item_id": ["z"], "category": ["x"]}))


def test_a_visitor_without_history_gets_new_items_by_the_average_taste() -> None:
    """Category x is what most users take: with nothing known of the visitor, the new x item comes first (the item
    model's average training row), where all new items used to tie."""
    frame = pd.DataFrame({"user_id": ["a", "a", "b", "b", "c"], "item_id": ["x1", "x2", "x1", "x2", "y1"],
                          "value": 1.0})
    items = pd.DataFrame({"item_id": ["x1", "x2", "y1"], "category": ["x", "x", "y"]})
    recommender = Recommender(create_scorer("ease")).fit(Dataset.from_frame(frame, items=items))
    new = pd.DataFrame({"item_id": ["y-new", "x-new"], "category": ["y", "x"]})
    ranked = recommender.with_items(new).restricted_to(new["item_id"]).recommend(["visitor"], n=2)
    assert ranked["item_id"].tolist() == ["x-new", "y-new"]
    ridge = recommender.item_model_
    empty = sp.csr_matrix((1, 3), dtype=np.float32)
    mean_row = sp.csr_matrix(ridge.user_items_.mean(axis=0))
    np.testing.assert_allclose(ridge.score_rows(empty), ridge.score_rows(mean_row), rtol=1e-5)
