"""Vector retrieval: exact top-n equals a full sort; the HNSW graph finds nearly all of it on clustered vectors."""

from __future__ import annotations

import numpy as np

from tailored.rank.candidates import VectorIndex, recall_at


def clustered(n_items: int, factors: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, factors))
    items = centres[rng.integers(50, size=n_items)] + 0.5 * rng.normal(size=(n_items, factors))
    users = centres[rng.integers(50, size=300)] + 0.5 * rng.normal(size=(300, factors))
    return items.astype(np.float32), users.astype(np.float32)


def test_exact_search_is_a_full_sort() -> None:
    items, users = clustered(500, 8, 0)
    index = VectorIndex(items)
    assert not index.approximate
    found, scores = index.search(users[:3], 5)
    expected = np.argsort(-(users[:3] @ items.T), axis=1)[:, :5]
    np.testing.assert_array_equal(found, expected)
    assert (np.diff(scores, axis=1) <= 0).all() and recall_at(index, users) == 1.0


def test_hnsw_finds_nearly_all_of_the_exact_top_10() -> None:
    items, users = clustered(20_000, 32, 1)
    index = VectorIndex(items, kind="hnsw")
    assert index.approximate and recall_at(index, users, 10) >= 0.95
    found, scores = index.search(users[0], 10)
    assert found.shape == (1, 10) and np.isfinite(scores).all()


def test_a_recommender_served_through_the_index_ranks_like_the_scorer() -> None:
    import pandas as pd

    from tailored.data.dataset import Dataset
    from tailored.pipeline.recommender import build_recommender

    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"user_id": rng.integers(0, 300, 6000).astype(str),
                          "item_id": rng.integers(0, 400, 6000).astype(str)})
    recommender = build_recommender("als", {"factors": 16}).fit(Dataset.from_frame(frame))
    users = recommender.users_.external_ids[:50]
    exact = recommender.recommend(users, 10)
    indexed = recommender.with_vector_index(kind="hnsw").recommend(users, 10)
    overlap = exact.merge(indexed, on=["user_id", "item_id"]).shape[0] / len(exact)
    assert overlap >= 0.95 and indexed.groupby("user_id").size().eq(10).all()
    ease = build_recommender("ease").fit(Dataset.from_frame(frame))
    assert ease.with_vector_index().scorer.algorithm == "ease"  # unchanged


def test_the_serving_fast_path_answers_like_the_full_pipeline() -> None:
    import pandas as pd

    from tailored.data.dataset import Dataset
    from tailored.pipeline.recommender import build_recommender
    from tailored.rank.rules import BusinessRules

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"user_id": rng.integers(0, 200, 5000).astype(str),
                          "item_id": rng.integers(0, 300, 5000).astype(str)})
    items = pd.DataFrame({"item_id": np.arange(300).astype(str), "category": np.arange(300) % 4})
    fitted = build_recommender("als", {"factors": 16}).fit(Dataset.from_frame(frame, items=items))
    served = fitted.with_vector_index(kind="exact")
    for user in range(len(served.users_)):
        items_found, scores = served.top_from_index(user, 10)
        _, expected, expected_scores, _ = next(served.recommend_indices(np.array([user]), 10))
        np.testing.assert_array_equal(items_found, expected[0])
        np.testing.assert_allclose(scores, expected_scores[0], rtol=1e-5)
        assert not set(items_found) & set(served.seen_[user].indices)  # seen items excluded
    assert fitted.top_from_index(0, 10) is None  # no index
    assert served.with_stages([BusinessRules(exclude_categories=["1"])]).top_from_index(0, 10) is None  # a stage to run
    assert served.with_items(pd.DataFrame({"item_id": ["new"], "category": [1]})).top_from_index(0, 10) is None
    assert served.top_from_index(-1, 10) is None  # an unknown user
