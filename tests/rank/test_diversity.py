"""MMR diversity: hand-computed picks on five items, the knob's two ends, collaborative similarity, a pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.models import create_scorer
from tailored.pipeline.recommender import Recommender
from tailored.rank.base import Catalogue, bare_request, create_stage
from tailored.rank.diversity import MMRDiversifier

# cosine: 0~1 = 1, 0~2 = 2~3 = 1/sqrt(2), 0~3 = 0, 4 is orthogonal to all
FEATURES = sp.csr_matrix(np.array([[1, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]], np.float64))
POOL = np.array([[0, 1, 2, 3, 4]])
SCORES = np.array([[1.0, 0.9, 0.8, 0.6, 0.0]], np.float32)  # relevance after min-max: 1, .9, .8, .6, 0


def rerank(diversity: float, items: np.ndarray = POOL, scores: np.ndarray = SCORES, n: int = 3,
           catalogue: Catalogue | None = None) -> tuple[np.ndarray, np.ndarray]:
    catalogue = catalogue or Catalogue(np.arange(5), features=FEATURES)
    return MMRDiversifier(diversity=diversity).rerank(items, scores, bare_request(len(items), catalogue), n)


def test_hand_computed_mmr_picks() -> None:
    # λ = .5: pick 0 (.5); then 1: .45 - .5 = -.05, 2: .4 - .354 = .046, 3: .3 - 0 = .3, 4: 0 -> 3;
    # then 2 (.046) beats 4 (0) and 1 (-.05).
    items, scores = rerank(0.5)
    np.testing.assert_array_equal(items, [[0, 3, 2]])
    np.testing.assert_allclose(scores, [[1.0, 0.6, 0.8]])  # the original scores of the picked items


def test_no_diversity_keeps_the_order_and_full_diversity_picks_the_most_dissimilar() -> None:
    np.testing.assert_array_equal(rerank(0.0, n=5)[0], POOL)
    # λ = 1: the top item first (every value is 0), then -max similarity: 3 and 4 tie at 0 (3 comes first), then 4
    np.testing.assert_array_equal(rerank(1.0)[0], [[0, 3, 4]])


def test_each_user_of_a_block_independently_and_short_pools() -> None:
    items = np.array([[0, 1, 2, 3, 4], [1, 0, -1, -1, -1], [-1, -1, -1, -1, -1]])
    scores = np.array([[1.0, 0.9, 0.8, 0.6, 0.0], [2.0, 2.0, -np.inf, -np.inf, -np.inf], [-np.inf] * 5], np.float32)
    picked, picked_scores = rerank(0.5, items, scores)
    np.testing.assert_array_equal(picked, [[0, 3, 2], [1, 0, -1], [-1, -1, -1]])
    assert np.isneginf(picked_scores[1:, 2]).all() and np.isneginf(picked_scores[2]).all()


def test_collaborative_similarity_without_attributes() -> None:
    # items 0 and 1 were taken by the same users (cosine 1), item 2 by others; item 3 came after training
    interactions = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], np.float32))
    catalogue = Catalogue(np.arange(4), interactions=interactions)
    items = np.array([[0, 1, 2, 3]])
    scores = np.array([[1.0, 0.9, 0.8, 0.7]], np.float32)
    np.testing.assert_array_equal(rerank(0.5, items, scores, 4, catalogue)[0], [[0, 2, 3, 1]])


def test_invalid_knob_is_explained() -> None:
    with pytest.raises(ConfigError, match=r"diversity must lie in \[0, 1\], got 1.5"):
        rerank(1.5)
    assert isinstance(create_stage("diversity", {"diversity": "0.2"}), MMRDiversifier)


def genre_data() -> Dataset:
    """40 users; 30 items in 3 genres; the 10 "action" items are the most popular."""
    rng = np.random.default_rng(0)
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(30)],
                          "genre": ["action"] * 10 + ["drama"] * 10 + ["comedy"] * 10})
    weights = np.r_[np.full(10, 6.0), np.full(10, 2.0), np.full(10, 1.0)]
    rows = [(f"u{user}", f"i{item}") for user in range(40)
            for item in rng.choice(30, 6, replace=False, p=weights / weights.sum())]
    return Dataset.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id"]), items=items)


def test_inside_a_pipeline_lists_mix_genres() -> None:
    data = genre_data()
    users = data.users.ids(np.arange(data.n_users))
    ids = data.item_attributes.index.map(lambda i: data.items.ids(np.array([i]))[0])
    genre = dict(zip(ids, data.item_attributes["genre"]))

    def genres_per_list(recommender: Recommender) -> float:
        lists = recommender.fit(data).recommend(users, n=4)
        return float(lists.assign(genre=lists["item_id"].map(genre)).groupby("user_id")["genre"].nunique().mean())

    plain = genres_per_list(Recommender(create_scorer("popularity")))
    diverse = genres_per_list(Recommender(create_scorer("popularity"), stages=[MMRDiversifier(diversity=0.7)]))
    assert diverse > plain
