"""Mult-VAE and Mult-DAE (``multvae``, ``multdae``): fold-in of new histories, the shallow network, KL annealing,
determinism, saving."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tests.conftest import require_extra

require_extra("torch", "torch")

from tailored.data.dataset import Dataset  # noqa: E402
from tailored.models import create_scorer  # noqa: E402
from tailored.models.base import fitted_state  # noqa: E402

FAST = {"epochs": 30, "patience": 5, "hidden": 32, "factors": 16, "batch_size": 20, "learning_rate": 0.01}


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    """120 users in two taste groups over 60 items (30 each); each user has 10 items of their group."""
    rng = np.random.default_rng(0)
    rows = []
    for user in range(120):
        pool = np.arange(30) + 30 * (user % 2)
        rows += [(f"u{user}", f"i{item}", 1.0, t) for t, item in enumerate(rng.choice(pool, 10, replace=False))]
    return Dataset.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"]))


def group_of(dataset: Dataset, items: np.ndarray) -> np.ndarray:
    return np.array([int(item_id[1:]) // 30 for item_id in dataset.items.ids(items)])


@pytest.mark.parametrize("algorithm", ["multvae", "multdae"])
def test_a_new_history_is_folded_in_without_retraining(algorithm: str, dataset: Dataset) -> None:
    scorer = create_scorer(algorithm, FAST).fit(dataset)
    for group in (0, 1):
        history = dataset.items.index(np.array([f"i{item}" for item in range(30 * group, 30 * group + 5)]))
        row = sp.csr_matrix((np.ones(5, np.float32), (np.zeros(5, int), history)), shape=(1, dataset.n_items))
        scores = scorer.score_rows(row)[0]
        scores[history] = -np.inf
        assert (group_of(dataset, np.argsort(-scores)[:10]) == group).all()


@pytest.mark.parametrize("algorithm", ["multvae", "multdae"])
def test_score_is_the_fold_in_of_the_training_row(algorithm: str, dataset: Dataset) -> None:
    scorer = create_scorer(algorithm, FAST).fit(dataset)
    users = np.array([3, 0, 7])
    np.testing.assert_allclose(scorer.score(users), scorer.score_rows(dataset.matrix()[users]), rtol=1e-6)


@pytest.mark.parametrize(("algorithm", "outputs"), [("multvae", 32), ("multdae", 16)])
def test_without_a_hidden_layer_encoder_and_decoder_are_single_linear_maps(
    algorithm: str, outputs: int, dataset: Dataset
) -> None:
    weights = create_scorer(algorithm, {**FAST, "hidden": 0}).fit(dataset).weights_
    shapes = {name: array.shape for name, array in weights.items()}
    assert shapes == {"encoder.0.weight": (outputs, 60), "encoder.0.bias": (outputs,),
                      "decoder.0.weight": (60, 16), "decoder.0.bias": (60,)}


def test_beta_is_annealed_linearly_up_to_its_cap(dataset: Dataset) -> None:
    scorer = create_scorer("multvae", {**FAST, "anneal_steps": 10, "anneal_cap": 0.3})
    assert [scorer._beta(step) for step in (0, 1, 2, 3, 100)] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.3])
    assert scorer.fit(dataset).beta_ == pytest.approx(0.3)
    assert create_scorer("multdae", FAST).fit(dataset).beta_ == 0.0


@pytest.mark.parametrize("algorithm", ["multvae", "multdae"])
def test_same_seed_same_weights_other_seed_other_weights(algorithm: str, dataset: Dataset) -> None:
    first = create_scorer(algorithm, FAST).fit(dataset).weights_
    second = create_scorer(algorithm, FAST).fit(dataset).weights_
    third = create_scorer(algorithm, {**FAST, "seed": 1}).fit(dataset).weights_
    assert all(np.array_equal(first[name], second[name]) for name in first)
    assert not all(np.array_equal(first[name], third[name]) for name in first)


def test_state_is_weights_and_history_only(dataset: Dataset) -> None:
    scorer = create_scorer("multvae", FAST).fit(dataset)
    state = fitted_state(scorer)
    assert set(state) == {"weights_", "user_items_", "epochs_", "beta_"}
    assert all(isinstance(array, np.ndarray) for array in state["weights_"].values())
    assert 1 <= state["epochs_"] <= FAST["epochs"]
    # a scorer restored from the saved state alone rebuilds its network and scores the same
    restored = create_scorer("multvae", FAST)
    for key, value in state.items():
        setattr(restored, key, value)
    np.testing.assert_array_equal(restored.score(np.arange(5)), scorer.score(np.arange(5)))
