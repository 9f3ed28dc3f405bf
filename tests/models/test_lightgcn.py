"""LightGCN: the normalised bipartite graph, layer combination, negative sampling, what scoring uses, the retraining on
all data, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.models import create_scorer
from tailored.models.base import fitted_state
from tailored.models.neural.lightgcn import (
    LightGCNScorer,
    _graph_tensor,
    _symmetric_matmul,
    normalized_adjacency,
)
from tailored.models.neural.training import sample_negatives
from tests.conftest import require_extra

torch = require_extra("torch", "torch")

FAST = {"factors": 8, "epochs": 5, "validation_fraction": 0.0}


@pytest.fixture(scope="module")
def small() -> Dataset:
    rng = np.random.default_rng(0)
    users, items = np.nonzero(rng.random((30, 20)) < 0.3)
    return Dataset.from_frame(pd.DataFrame({"user_id": users, "item_id": items, "value": 1.0}))


def test_adjacency_is_the_symmetrically_normalised_bipartite_graph() -> None:
    ratings = sp.csr_matrix(np.array([[1, 1, 0], [0, 3, 0]], np.float32))  # item 2 has no interaction
    graph = normalized_adjacency(ratings).toarray()
    user_degree, item_degree = np.array([2, 1]), np.array([1, 2, 0])
    expected = np.zeros((5, 5))
    for u, i in [(0, 0), (0, 1), (1, 1)]:  # any value counts as one edge
        expected[u, 2 + i] = expected[2 + i, u] = 1 / np.sqrt(user_degree[u] * item_degree[i])
    np.testing.assert_allclose(graph, expected, rtol=1e-6)


def test_propagation_is_the_mean_of_layers_zero_to_k() -> None:
    rng = np.random.default_rng(1)
    graph = normalized_adjacency(sp.csr_matrix(rng.random((4, 6)) < 0.5, dtype=np.float32))
    users, items = rng.normal(size=(4, 3)), rng.normal(size=(6, 3))
    module = torch.nn.ParameterDict({"user_embedding": torch.nn.Parameter(torch.tensor(users)),
                                     "item_embedding": torch.nn.Parameter(torch.tensor(items))})
    layers = [np.vstack([users, items])]
    for _ in range(3):
        layers.append(graph.toarray() @ layers[-1])
    dense = _graph_tensor(torch, graph.astype(np.float64))
    for k in range(4):
        combined = LightGCNScorer(layers=k)._propagate(torch, dense, module).detach().numpy()
        np.testing.assert_allclose(combined, sum(layers[: k + 1]) / (k + 1), rtol=1e-10)


def test_symmetric_matmul_has_the_gradient_of_sparse_mm() -> None:
    graph = _graph_tensor(torch, normalized_adjacency(sp.random(5, 7, 0.5, "csr", np.float32, rng=0)))
    dense = torch.randn(12, 4, requires_grad=True)
    weights = torch.randn(12, 4)
    ours, = torch.autograd.grad((_symmetric_matmul(torch)(graph, dense) * weights).sum(), dense)
    reference, = torch.autograd.grad((torch.sparse.mm(graph.to_sparse_coo(), dense) * weights).sum(), dense)
    torch.testing.assert_close(ours, reference)


def test_negatives_are_drawn_uniformly_from_unseen_items() -> None:
    rng = np.random.default_rng(0)
    dense = rng.random((20, 10)) < 0.6
    dense[3] = True  # a user who has seen everything still gets a valid index
    seen = sp.csr_matrix(dense)
    users = np.repeat(np.arange(20), 2000)
    negatives = sample_negatives(rng, users, seen)
    assert ((0 <= negatives) & (negatives < 10)).all()
    others = users != 3
    assert not np.asarray(seen[users[others], negatives[others]]).any()
    counts = sp.csr_matrix((np.ones(others.sum()), (users[others], negatives[others])), shape=(20, 10)).toarray()
    unseen = ~dense
    expected = 2000 / np.maximum(unseen.sum(axis=1, keepdims=True), 1) * unseen
    np.testing.assert_allclose(counts[unseen], expected[unseen], rtol=0.25)


def test_scores_are_dot_products_of_the_propagated_embeddings_only(small: Dataset) -> None:
    scorer = LightGCNScorer(**FAST).fit(small)
    assert set(fitted_state(scorer)) == {"user_factors_", "item_factors_", "item_fold_", "epochs_"}
    assert scorer.user_factors_.shape == (small.n_users, 8) and scorer.item_factors_.shape == (small.n_items, 8)
    np.testing.assert_allclose(scorer.score(np.arange(3)), scorer.user_factors_[:3] @ scorer.item_factors_.T, rtol=1e-6)
    assert (scorer.score(np.array([small.n_users])) == 0).all()  # unknown users score zero; the fallback serves them


def test_a_history_is_folded_in_as_a_node_without_a_layer_zero(small: Dataset, monkeypatch) -> None:
    """``score_rows`` of a training user's own row gives its trained embedding less the share of its own layer 0
    (what a node outside the graph with the same items would get from the propagation)."""
    captured = []
    layers_of = LightGCNScorer._layers
    monkeypatch.setattr(LightGCNScorer, "_layers", lambda *args: captured.append(layers_of(*args)) or captured[-1])
    scorer = LightGCNScorer(**FAST, layers=3).fit(small)
    own_layer_zero = captured[-1][0].detach().numpy()[: small.n_users]
    users = np.array([0, 7, 19])
    expected = (scorer.user_factors_[users] - own_layer_zero[users] / 4) @ scorer.item_factors_.T
    rows = small.matrix()[users] * 5.0  # any value is one edge
    np.testing.assert_allclose(scorer.score_rows(rows), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(scorer.score_rows(rows, np.array([4, 2])), expected[:, [4, 2]], rtol=1e-4, atol=1e-6)
    assert (scorer.score_rows(sp.csr_matrix((1, small.n_items))) == 0).all()  # an empty history has no vector


def test_fixed_epochs_without_a_holdout_and_a_retraining_on_everything_with_one(small: Dataset) -> None:
    assert LightGCNScorer(**FAST).fit(small).epochs_ == 5
    stopped = LightGCNScorer(factors=8, epochs=200, patience=2, validation_fraction=0.2).fit(small)
    assert 1 <= stopped.epochs_ < 200
    # the early-stopped run only picks the epoch count: the kept embeddings are trained on all interactions
    again = LightGCNScorer(factors=8, epochs=stopped.epochs_, validation_fraction=0.0).fit(small)
    np.testing.assert_array_equal(stopped.user_factors_, again.user_factors_)


def test_same_seed_same_factors_other_seed_other_factors(small: Dataset) -> None:
    first, second = (create_scorer("lightgcn", {**FAST, "seed": 3}).fit(small) for _ in range(2))
    np.testing.assert_array_equal(first.user_factors_, second.user_factors_)
    other = create_scorer("lightgcn", {**FAST, "seed": 4}).fit(small)
    assert not np.allclose(first.user_factors_, other.user_factors_)
