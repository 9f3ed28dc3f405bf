"""ensemble: rank fusion of catalogued algorithms, checked against the fusion formulas worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.models.base import create_scorer
from tailored.models.base import standardize
from tailored.models.ensemble import reciprocal_ranks
from tailored.pipeline.recommender import Recommender
from tailored.registry.model_dir import load_model, read_manifest, save_model


def test_reciprocal_ranks_rank_unseen_items_first() -> None:
    """Row [0.1, 0.9, 0.5, 0.7] with item 1 seen: unseen order 3, 2, 0, then the seen item 1 last."""
    scores = np.array([[0.1, 0.9, 0.5, 0.7]])
    seen = np.array([[False, True, False, False]])
    np.testing.assert_allclose(reciprocal_ranks(scores, seen, 60.0), [[1 / 63, 1 / 64, 1 / 62, 1 / 61]])


def test_standardised_uses_the_unseen_items_only() -> None:
    scores = np.array([[1.0, 100.0, 3.0, 5.0]])
    seen = np.array([[False, True, False, False]])
    fused = standardize(scores, ~seen)
    unseen = fused[0, [0, 2, 3]]
    np.testing.assert_allclose([unseen.mean(), unseen.std()], [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(unseen, (np.array([1.0, 3.0, 5.0]) - 3.0) / np.std([1.0, 3.0, 5.0]))


@pytest.fixture(scope="module")
def interactions() -> Dataset:
    rng = np.random.default_rng(3)
    rows = {(f"u{u}", f"i{(u % 4) * 5 + j}") for u in range(60) for j in rng.choice(8, 5, replace=False)}
    frame = pd.DataFrame(sorted(rows), columns=["user_id", "item_id"]).assign(value=1.0, timestamp=0)
    return Dataset.from_frame(frame)


def test_fused_scores_are_the_sum_of_the_members_reciprocal_ranks(interactions) -> None:
    ensemble = create_scorer("ensemble", {"members": "ease,item-knn", "rrf_k": 10}).fit(interactions)
    users = np.arange(interactions.n_users)
    seen = interactions.matrix(binary=True).toarray() > 0
    expected = sum(reciprocal_ranks(create_scorer(name).fit(interactions).score(users), seen, 10.0)
                   for name in ("ease", "item-knn"))
    np.testing.assert_allclose(ensemble.score(users), expected, rtol=1e-6)


def test_a_history_row_is_fused_over_the_members_that_fold_it_in(interactions) -> None:
    """``score_rows`` of a training user's own row reproduces ``score``; bpr cannot fold a row in and is left out,
    and an ensemble none of whose members can gives every item the same score."""
    users = np.arange(0, interactions.n_users, 7)
    rows = interactions.matrix(binary=True)[users]
    ensemble = create_scorer("ensemble", {"members": "ease,item-knn"}).fit(interactions)
    np.testing.assert_allclose(ensemble.score_rows(rows), ensemble.score(users), rtol=1e-6)
    with_bpr = create_scorer("ensemble", {"members": "ease,bpr,item-knn"}).fit(interactions)
    np.testing.assert_allclose(with_bpr.score_rows(rows), ensemble.score_rows(rows), rtol=1e-6)
    assert not np.allclose(with_bpr.score(users), ensemble.score(users))  # bpr does rank known users
    only_bpr = create_scorer("ensemble", {"members": "bpr"}).fit(interactions)
    assert (only_bpr.score_rows(rows) == 0).all()


def test_an_ensemble_of_one_ranks_like_its_member(interactions) -> None:
    users = np.arange(interactions.n_users)
    alone = Recommender(create_scorer("ease")).fit(interactions).recommend_indices(users, 5)
    fused = Recommender(create_scorer("ensemble", {"members": "ease"})).fit(interactions).recommend_indices(users, 5)
    for (_, items_alone, _, _), (_, items_fused, _, _) in zip(alone, fused):
        np.testing.assert_array_equal(items_alone, items_fused)


def test_members_are_saved_and_restored(interactions, tmp_path) -> None:
    recommender = Recommender(create_scorer("ensemble", {"members": "ease,popularity", "fusion": "zscore"}))
    recommender.fit(interactions)
    save_model(recommender, tmp_path / "model")
    manifest = read_manifest(tmp_path / "model")
    assert [member["algorithm"] for member in manifest["members"]] == ["ease", "popularity"]
    loaded = load_model(tmp_path / "model")
    assert [type(member).__name__ for member in loaded.scorer.members_] == ["EASEScorer", "PopularityScorer"]
    users = interactions.users.ids(np.arange(10))
    pd.testing.assert_frame_equal(recommender.recommend(users, 5), loaded.recommend(users, 5))


@pytest.mark.parametrize(("params", "message"), [
    ({"members": "ease,no-such-model"}, "Unknown algorithm 'no-such-model'"),
    ({"members": "ease,ensemble"}, "'ensemble' cannot be a member"),
    ({"members": "mf"}, "'mf' cannot be a member"),
    ({"members": " , "}, "names no algorithm"),
    ({"fusion": "average"}, "fusion must be one of rrf, zscore"),
    ({"members": "ease", "rrf_k": 0}, "rrf_k must be positive"),
])
def test_bad_configurations_are_named(params, message, interactions) -> None:
    with pytest.raises(ConfigError, match=message):
        create_scorer("ensemble", params).fit(interactions)
