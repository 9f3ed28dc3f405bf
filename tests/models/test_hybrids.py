"""The neural hybrids (`ncf`, `two-tower`): side features, unknown values, wrong weights, retrieval vectors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.models import create_scorer
from tailored.models.demographic import DemographicScorer
from tailored.models.base import standardize
from tailored.models.neural.training import from_arrays
from tailored.pipeline.recommender import Recommender
from tests.models.test_contract import planted_groups, planted_users
from tests.conftest import require_extra

require_extra("torch", "torch")
QUICK = {"epochs": 4, "patience": 2}


@pytest.fixture(scope="module")
def planted() -> Dataset:
    train, _, items = planted_groups()
    return Dataset.from_frame(train, users=planted_users(), items=items)


@pytest.mark.parametrize("algorithm", ["ncf", "two-tower"])
def test_unseen_values_missing_columns_and_nan_are_unknown_features(algorithm: str, planted: Dataset) -> None:
    recommender = Recommender(create_scorer(algorithm, QUICK)).fit(planted)
    strangers = pd.DataFrame({"user_id": ["x", "y"], "segment": ["never-seen", np.nan]})  # no 'region' column
    frame = recommender.recommend(["x", "y"], n=5, attributes=strangers)
    assert frame.groupby("user_id").size().to_dict() == {"x": 5, "y": 5}
    # both have no known feature: the same (unknown-id) list
    assert frame[frame.user_id == "x"].item_id.tolist() == frame[frame.user_id == "y"].item_id.tolist()
    items = pd.DataFrame({"item_id": ["n1", "n2"], "category": ["brand-new-category", None], "colour": ["red", "blue"]})
    scores = recommender.scorer.score_new_items(np.array([0, 1]), items)
    assert scores.shape == (2, 2) and np.isfinite(scores).all()
    np.testing.assert_allclose(scores[:, 0], scores[:, 1], rtol=1e-5)  # neither carries a known feature


@pytest.mark.parametrize("algorithm", ["ncf", "two-tower"])
def test_new_users_from_attributes_add_the_scorers_and_the_demographic_scores(algorithm: str, planted: Dataset
                                                                               ) -> None:
    """A new user described by attributes is ranked by the scorer's attribute scores plus the demographic
    fallback's, each standardised over the trained items."""
    recommender = Recommender(create_scorer(algorithm, QUICK)).fit(planted)
    assert isinstance(recommender.fallback_, DemographicScorer)
    newcomers = pd.DataFrame({"user_id": ["new-0", "new-1"], "segment": ["s0", "s1"], "region": ["north", "south"]})
    frame = recommender.recommend(newcomers["user_id"], n=planted.n_items, attributes=newcomers)
    got = frame.pivot(index="user_id", columns="item_id", values="score").loc[newcomers["user_id"], planted.items.ids(
        np.arange(planted.n_items))].to_numpy()
    nothing_masked = np.zeros((1, planted.n_items), bool)
    parts = [standardize(np.asarray(model.score_attributes(newcomers), np.float64), ~nothing_masked)
             for model in (recommender.scorer, recommender.fallback_)]
    np.testing.assert_allclose(got, parts[0] + parts[1], rtol=1e-4, atol=1e-4)
    for part in parts:  # neither alone is what ranked them
        assert not np.allclose(got, part, atol=1e-2)


@pytest.mark.parametrize("algorithm", ["ncf", "two-tower"])
def test_a_quiet_user_of_the_users_table_is_ranked_as_a_new_user_with_the_same_attributes(algorithm: str) -> None:
    """Users in the training users table without any interaction get what new users described by the same
    attributes get (the network's unknown id with their features, plus the demographic model), not the demographic
    model alone nor their never-trained id embeddings."""
    train, _, items = planted_groups()
    quiet = pd.DataFrame({"user_id": ["quiet-0", "quiet-1"], "segment": ["s0", "s1"], "region": ["north", "south"]})
    dataset = Dataset.from_frame(train, users=pd.concat([planted_users(), quiet]), items=items)
    recommender = Recommender(create_scorer(algorithm, QUICK)).fit(dataset)
    assert recommender.cold_user_models() == [algorithm, "demographic"]
    as_quiet = recommender.recommend(quiet["user_id"], n=10)
    as_new = recommender.recommend(["new-0", "new-1"], n=10, attributes=quiet.assign(user_id=["new-0", "new-1"]))
    assert as_quiet["item_id"].tolist() == as_new["item_id"].tolist()
    np.testing.assert_allclose(as_quiet["score"], as_new["score"], rtol=1e-4, atol=1e-4)


def test_two_tower_item_vectors_can_be_indexed(planted: Dataset) -> None:
    scorer = create_scorer("two-tower", QUICK).fit(planted)
    assert scorer.item_vectors_.shape == (planted.n_items, scorer.factors)
    users = np.arange(5)
    np.testing.assert_allclose(scorer.score(users), scorer.user_vectors_[users] @ scorer.item_vectors_.T, rtol=1e-5)


def test_weights_of_another_algorithm_are_a_clear_error(planted: Dataset) -> None:
    ncf = create_scorer("ncf", QUICK).fit(planted)
    tower = create_scorer("two-tower", QUICK).fit(planted)
    with pytest.raises(ConfigError, match="another algorithm"):
        from_arrays(tower._build(planted.n_users, planted.n_items), ncf.weights_)


def test_two_fits_on_two_threads_are_identical(ml100k_dir, monkeypatch) -> None:
    """The same seed gives the same model on several threads too (torch's deterministic kernels during training;
    without them two one-epoch fits on MovieLens 100K differed by up to 0.02 in an item vector)."""
    from tailored.data.movielens import load_movielens

    monkeypatch.setenv("TAILORED_NUM_THREADS", "2")
    movielens = load_movielens(ml100k_dir, "100k")
    dataset = Dataset.from_frame(movielens.ratings.assign(value=1.0), items=movielens.items)
    first, second = (create_scorer("two-tower", {"epochs": 1}).fit(dataset) for _ in range(2))
    np.testing.assert_array_equal(first.item_vectors_, second.item_vectors_)
    np.testing.assert_array_equal(first.user_vectors_, second.user_vectors_)


def test_feature_sums_take_dense_embedding_columns_through_a_matrix_product_with_the_same_result() -> None:
    """An item table with an embedding column (384 values per item) next to sparse categories and text: the sum and
    its gradient equal the EmbeddingBag's over every value (the slow path the dense columns now avoid)."""
    import scipy.sparse as sp
    import torch

    from tailored.models.neural.side_features import bag_inputs, feature_sums

    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(200, 384)) * (rng.random((200, 1)) > 0.1)  # a tenth of the items without one
    features = sp.csr_matrix(np.hstack([embedding, sp.random(200, 300, density=0.02, random_state=1).toarray()]),
                             dtype=np.float32)
    bag = torch.nn.EmbeddingBag(features.shape[1], 16, mode="sum")
    gradients = []
    for summed in (bag(*bag_inputs(features)), feature_sums([bag], features)[0]):
        (summed**2).sum().backward()
        gradients.append(bag.weight.grad.clone())
        bag.weight.grad = None
    other = torch.nn.EmbeddingBag(features.shape[1], 16, mode="sum")
    with torch.no_grad():
        for one, both in zip((bag, other), feature_sums([bag, other], features)):  # one split serves both bags
            np.testing.assert_allclose(both.numpy(), one(*bag_inputs(features)).numpy(), atol=1e-4)
    np.testing.assert_allclose(gradients[1].numpy(), gradients[0].numpy(), rtol=1e-4, atol=1e-3)
    bag_calls: list[int] = []
    bag.register_forward_hook(lambda *_: bag_calls.append(1))
    feature_sums([bag], features)[0]
    assert bag_calls == []  # the 384 dense columns went through the product (and the rest through the functional bag)
    feature_sums([bag], features[:, 384:])
    assert bag_calls == [1]  # sparse columns alone: the EmbeddingBag, as before
    assert feature_sums([bag], sp.csr_matrix((3, features.shape[1]), dtype=np.float32))[0].shape == (3, 16)  # no values
