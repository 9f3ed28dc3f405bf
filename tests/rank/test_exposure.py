"""Exposure cap over a multi-block run, the long-tail boost's formula, both inside a pipeline, save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.models import create_scorer
from tailored.pipeline.recommender import Recommender
from tailored.rank.base import Catalogue, Request, bare_request
from tailored.rank.diversity import MMRDiversifier
from tailored.rank.exposure import EXPOSURE_TALLY, ExposureCap, LongTailBoost, propensity_scaled
from tailored.registry.model_dir import load_model, save_model

CATALOGUE = Catalogue(np.arange(3))


def block(users: int, tally: dict) -> Request:
    request = bare_request(users, CATALOGUE)
    request.tally = tally
    return request


def test_the_cap_holds_after_every_block_of_a_run() -> None:
    cap, tally = ExposureCap(max_share=0.5), {}
    pools = np.array([[0, 1, 2], [0, 1, 2]])
    # block 1, 2 users: ceil(.5 * 2) = 1 seat each. Both want item 0 first; user 1 wants it more (z-score over
    # its pool 1.41 against 1.22), so user 0 falls back to item 1.
    items, scores = cap.rerank(pools, np.array([[1.0, 0.9, 0.8], [5.0, 0.0, 0.0]]), block(2, tally), 1)
    np.testing.assert_array_equal(items, [[1], [0]])
    np.testing.assert_array_equal(scores, [[0.9], [5.0]])
    # block 2, 2 more users: ceil(.5 * 4) = 2, items 0 and 1 have one seat left each; equal keenness: block order
    items, _ = cap.rerank(pools, np.array([[1.0, 0.9, 0.8]] * 2), block(2, tally), 1)
    np.testing.assert_array_equal(items, [[0], [1]])
    served, shown = tally[EXPOSURE_TALLY]
    assert served == 4 and shown.tolist() == [2, 2, 0]
    # block 3, one user: ceil(.5 * 5) = 3, item 0 is free again
    items, _ = cap.rerank(pools[:1], np.array([[1.0, 0.9, 0.8]]), block(1, tally), 1)
    np.testing.assert_array_equal(items, [[0]])


def test_lists_keep_the_pool_order_and_stay_short_rather_than_break_the_cap() -> None:
    pools = np.array([[0, 1, 2], [0, 1, 2], [2, 0, 1], [0, 1, -1]])
    items, scores = ExposureCap(max_share=0.25).rerank(pools, np.tile([3.0, 2.0, 1.0], (4, 1)), block(4, {}), 2)
    # one seat per item: user 0 takes 0 and 1, user 2 takes 2, users 1 and 3 find nothing left
    np.testing.assert_array_equal(items, [[0, 1], [-1, -1], [2, -1], [-1, -1]])
    assert np.isneginf(scores[items < 0]).all()


def test_a_generous_cap_changes_nothing_and_a_bad_share_is_explained() -> None:
    pools = np.array([[2, 0, 1], [1, 2, 0]])
    items, _ = ExposureCap(max_share=1.0).rerank(pools, np.tile([3.0, 2.0, 1.0], (2, 1)), block(2, {}), 2)
    np.testing.assert_array_equal(items, pools[:, :2])
    with pytest.raises(ConfigError, match="max_share must be positive"):
        ExposureCap(max_share=0.0).rerank(pools, np.ones((2, 3)), block(2, {}), 2)


def test_long_tail_formula() -> None:
    frame = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u1", "u2", "u3"], "item_id": ["a", "a", "a", "b", "c", "c"]})
    stage = LongTailBoost(boost=1.0).fit(Dataset.from_frame(frame))
    assert stage.popularity_.tolist() == [3, 1, 2]  # items a, b, c in order of appearance
    # five items: a, b, c, one added after training (popularity 0) and one excluded (-inf)
    scores = np.array([[3.0, 1.0, 2.8, 0.0, -np.inf]], np.float32)
    adjusted = propensity_scaled(scores, stage.popularity_, 1.0)
    # z-scores of 3, 1, 2.8, 0: mean 1.7, standard deviation sqrt(1.57); the positive ones divided by (1 + p)
    z = (np.array([3.0, 1.0, 2.8, 0.0]) - 1.7) / np.sqrt(1.57)
    np.testing.assert_allclose(adjusted[0, :4], [z[0] / 4, z[1], z[2] / 3, z[3]], rtol=1e-6)
    assert np.isneginf(adjusted[0, 4])
    assert np.argsort(-adjusted[0]).tolist() == [2, 0, 1, 3, 4]  # c (.878 / 3 = .293) overtakes a (1.037 / 4 = .259)


def test_long_tail_keeps_the_head_and_fills_the_rest_from_the_boosted_scores() -> None:
    stage = LongTailBoost(boost=1.0, head_share=0.5)
    stage.popularity_ = np.array([100, 100, 100, 0, 0])
    request = bare_request(1, Catalogue(np.arange(5)))
    request.scores = np.array([[5.0, 4.0, 3.5, 3.25, 0.0]], np.float32)  # mean 3.15: z of 2 and 3 both positive
    items, scores = stage.rerank(np.array([[0, 1, 2, 3]]), request.scores[:, :4], request, 4)
    # head: items 0, 1; item 2's z-score is divided by 101, item 3's (popularity 0) by 1: 3 overtakes 2
    assert items.tolist() == [[0, 1, 3, 2]] and scores.tolist() == [[5.0, 4.0, 3.25, 3.5]]
    assert stage.explain(items, request).tolist() == [["", "", "", ""]]  # all four were in the top 4 already
    three = Dataset.from_frame(pd.DataFrame({"user_id": ["u"] * 3, "item_id": ["a", "b", "c"]}))
    items, _ = LongTailBoost(boost=1.0, head_share=0.0).fit(three).rerank(np.array([[0, 1]]), request.scores[:, :2],
                                                                           request, 2)
    assert items.shape == (1, 2)


def test_long_tail_explains_the_items_it_brought_in() -> None:
    request = bare_request(1, Catalogue(np.arange(3)))
    request.scores = np.array([[3.0, 2.0, 1.0]], np.float32)
    # top 2 before the boost: items 0 and 1; item 2 got in through the boost
    assert LongTailBoost().explain(np.array([[1, 2]]), request).tolist() == [["", "long-tail boost"]]
    assert LongTailBoost().explain(np.array([[1, 2]]), bare_request(1, Catalogue(np.arange(3)))).tolist() == [["", ""]]


def skewed_data() -> Dataset:
    """60 users, 40 items with Zipf-like popularity, attributes in four groups."""
    rng = np.random.default_rng(1)
    weights = 1.0 / np.arange(1, 41)
    rows = [(f"u{user}", f"i{item}") for user in range(60)
            for item in rng.choice(40, 5, replace=False, p=weights / weights.sum())]
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(40)], "group": [f"g{k % 4}" for k in range(40)]})
    return Dataset.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id"]), items=items)


def coverage(lists: pd.DataFrame) -> int:
    return lists["item_id"].nunique()


def test_inside_a_pipeline_the_cap_raises_coverage_over_the_blocks_of_a_run() -> None:
    data = skewed_data()
    users = data.users.ids(np.arange(data.n_users))
    plain = Recommender(create_scorer("popularity")).fit(data).recommend(users, n=5)
    fair = Recommender(create_scorer("popularity"), stages=[ExposureCap(max_share=0.1)], batch_size=16).fit(data)
    fair = fair.recommend(users, n=5)
    assert coverage(fair) >= 2 * coverage(plain)
    assert fair["item_id"].value_counts().max() <= 6  # ceil(.1 * 60 users), over the four blocks of one run


def test_long_tail_alone_recommends_less_popular_items() -> None:
    data = skewed_data()
    users = data.users.ids(np.arange(data.n_users))
    popularity = pd.Series(data.item_counts(), index=data.items.ids(np.arange(data.n_items)))
    plain = Recommender(create_scorer("item-knn")).fit(data).recommend(users, n=5)
    booster = Recommender(create_scorer("item-knn"), stages=[LongTailBoost(boost=1.0, head_share=0.4)]).fit(data)
    boosted = booster.recommend(users, n=5, explain=True)

    def heads(frame: pd.DataFrame) -> pd.Series:
        return frame.groupby("user_id")["item_id"].apply(list).str[:2]

    assert (heads(boosted) == heads(plain)).all()
    assert popularity[boosted["item_id"]].mean() < popularity[plain["item_id"]].mean()
    assert coverage(boosted) > coverage(plain)
    assert boosted["reasons"].str.contains("long-tail boost").any()


def test_save_and_load_give_the_same_lists(tmp_path) -> None:
    data = skewed_data()
    users = data.users.ids(np.arange(data.n_users))
    stages = [LongTailBoost(), MMRDiversifier(diversity=0.5), ExposureCap(max_share=0.2)]
    recommender = Recommender(create_scorer("popularity"), stages=stages).fit(data)
    save_model(recommender, tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert [type(stage) for stage in loaded.stages] == [LongTailBoost, MMRDiversifier, ExposureCap]
    pd.testing.assert_frame_equal(recommender.recommend(users, 5), loaded.recommend(users, 5))


@pytest.mark.movielens
def test_default_long_tail_setting_doubles_coverage_on_the_movielens_validation_carve(ml100k_dir) -> None:
    from tailored.benchmarks.reranking import reranking_tradeoffs

    frame = reranking_tradeoffs(ml100k_dir, settings={"long-tail": [LongTailBoost()]}, validation=True, repeats=1)
    chosen = frame.set_index("setting").loc["long-tail"]
    assert chosen["coverage_ratio"] >= 2.0 and chosen["ndcg_change"] >= -0.05
