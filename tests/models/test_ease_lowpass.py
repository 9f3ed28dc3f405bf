"""ease-lowpass: EASE plus GF-CF's ideal low-pass filter, checked on matrices small enough to work by hand."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tailored.config import available_memory
from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.models.base import create_scorer
from tailored.models.ease import ease_weights, spd_inverse
from tailored.models.ease_lowpass import ideal_lowpass

# Two users, two items: u0 has both items, u1 only item 0. Item degrees (2, 1), user degrees (2, 1).
TINY = sp.csr_matrix(np.array([[1.0, 1.0], [1.0, 0.0]]))


def lowpass(matrix: sp.csr_matrix, factors: int, dense_up_to: int = 5000) -> np.ndarray:
    left, right = ideal_lowpass(matrix, factors, dense_up_to)
    return left @ right


def test_one_factor_low_pass_is_popularity() -> None:
    """The top eigenvector of R~^T R~ is sqrt(d_I) / ||sqrt(d_I)|| (eigenvalue 1) on a connected graph, so with one
    factor D_I^-1/2 v v^T D_I^1/2 = 1 d_I^T / sum(d_I): every row is the items' share of the interactions."""
    np.testing.assert_allclose(lowpass(TINY, 1), [[2 / 3, 1 / 3], [2 / 3, 1 / 3]], atol=1e-12)


def test_full_rank_low_pass_is_the_identity() -> None:
    """With every eigenvector kept V V^T = I, so the filter is D_I^-1/2 I D_I^1/2 = I."""
    np.testing.assert_allclose(lowpass(TINY, 2), np.eye(2), atol=1e-12)
    np.testing.assert_allclose(lowpass(TINY, 10), np.eye(2), atol=1e-12)  # factors clamped to the items


def test_ease_part_matches_the_closed_form_by_hand() -> None:
    """G + reg I = [[3, 1], [1, 2]] for reg = 1; P = [[2, -1], [-1, 3]] / 5; B_01 = -P_01 / P_11 = 1/3,
    B_10 = -P_10 / P_00 = 1/2."""
    np.testing.assert_allclose(ease_weights(TINY, 1.0, "ease"), [[0.0, 1 / 3], [1 / 2, 0.0]], atol=1e-12)


def test_a_large_catalogue_takes_the_low_pass_from_a_truncated_svd_with_the_same_filter() -> None:
    matrix = sp.random(400, 250, density=0.05, random_state=1, format="csr")
    matrix.data[:] = 1.0
    dense, sparse = lowpass(matrix, 8), lowpass(matrix, 8, dense_up_to=0)
    np.testing.assert_allclose(sparse, dense, atol=1e-8)
    np.testing.assert_array_equal(sparse, lowpass(matrix, 8, dense_up_to=0))  # deterministic


def test_the_gram_matrix_is_inverted_in_place() -> None:
    rng = np.random.default_rng(0)
    square = rng.random((23, 23))
    matrix = square @ square.T + np.eye(23)
    expected = np.linalg.inv(matrix)
    inverse = spd_inverse(matrix, "test", block=7)  # blocks that do not divide the size
    np.testing.assert_allclose(inverse, expected, rtol=1e-10, atol=1e-12)
    assert np.shares_memory(inverse, matrix)
    with pytest.raises(ConfigError,
                       match=r"ease: X\^T X \+ reg I with reg=0 is not positive definite.*use a positive reg"):
        ease_weights(sp.csr_matrix((3, 2)), 0.0, "ease")  # no interactions: X^T X = 0


def test_available_memory_is_positive_and_at_most_the_physical_memory() -> None:
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 0 < available_memory() <= physical


@pytest.mark.parametrize("algorithm", ["ease", "ease-lowpass"])
def test_a_catalogue_too_large_for_the_memory_is_refused_before_allocating(algorithm: str, monkeypatch) -> None:
    # 1 MB: 30 items need 10.8 kB, 300 1.1 MB
    monkeypatch.setattr("tailored.config.available_memory", lambda: 1_000_000)
    dataset = Dataset.from_frame(pd.DataFrame({"user_id": np.arange(600) % 50, "item_id": np.arange(600) % 300}))
    with pytest.raises(ConfigError, match=rf"Algorithm '{algorithm}' holds dense items x items matrices: 300 items "
                                          r"need about 0.0 GiB and 0.0 GiB is available.*min_item_interactions.*"
                                          r"item-knn"):
        create_scorer(algorithm).fit(dataset)
    small = pd.DataFrame({"user_id": np.arange(60) % 6, "item_id": np.arange(60) % 30})
    create_scorer(algorithm).fit(Dataset.from_frame(small))


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{i}", 1.0, t) for u in range(60)
            for t, i in enumerate(rng.choice(30, 8, replace=False) + 15 * (u % 2))]
    return Dataset.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"]))


def test_scores_are_the_history_times_ease_plus_weighted_low_pass(dataset: Dataset) -> None:
    matrix = dataset.matrix(binary=True).astype(np.float64)
    scorer = create_scorer("ease-lowpass", {"reg": 50.0, "factors": 4, "lowpass_weight": 0.5}).fit(dataset)
    expected = matrix.toarray() @ (ease_weights(matrix, 50.0, "ease") + 0.5 * lowpass(matrix, 4))
    np.testing.assert_allclose(scorer.score(np.arange(dataset.n_users)), expected, rtol=1e-4, atol=1e-4)


def test_zero_low_pass_weight_is_plain_ease(dataset: Dataset) -> None:
    users = np.arange(dataset.n_users)
    plain = create_scorer("ease", {"reg": 50.0}).fit(dataset).score(users)
    lowpass = create_scorer("ease-lowpass", {"reg": 50.0, "lowpass_weight": 0.0}).fit(dataset).score(users)
    np.testing.assert_allclose(lowpass, plain, rtol=1e-5, atol=1e-5)
