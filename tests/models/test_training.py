"""The early-stopping signal of the shared training loop."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tailored.models.neural.training import recall_at


def test_recall_at_k_by_hand_seen_items_excluded() -> None:
    scores = np.array([[0.9, 0.8, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.5, 0.5]], np.float32)
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    relevant = sp.csr_matrix(np.array([[0, 0, 1, 0], [1, 0, 0, 1], [0, 0, 0, 0]]))  # user 2 holds nothing out
    # user 0: item 0 seen, top 2 = items 1, 2 -> 1 hit of min(1, 2); user 1: top 2 = items 3, 2 -> 1 of min(2, 2)
    assert recall_at(lambda users: scores[users], seen, relevant, k=2) == (1.0 + 0.5) / 2


def test_recall_at_k_scores_only_blocks_of_users_with_held_out_items() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random((50, 300)).astype(np.float32)
    seen = sp.random(50, 300, density=0.05, random_state=1, format="csr")
    relevant = sp.random(50, 300, density=0.005, random_state=2, format="csr")
    asked: list[np.ndarray] = []

    def score_users(users: np.ndarray) -> np.ndarray:
        asked.append(users)
        return scores[users]

    whole = recall_at(lambda users: scores[users], seen, relevant, k=10)
    assert 0 < whole < 1
    assert recall_at(score_users, seen, relevant, k=10, chunk=7) == whole
    assert max(len(block) for block in asked) == 7
    holding_out = np.flatnonzero(relevant.getnnz(axis=1))
    assert len(holding_out) < 50 and np.array_equal(np.concatenate(asked), holding_out)


def test_recall_at_k_ranks_a_fixed_sample_past_max_users() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random((50, 300)).astype(np.float32)
    seen = sp.random(50, 300, density=0.05, random_state=1, format="csr")
    relevant = sp.random(50, 300, density=0.005, random_state=2, format="csr")
    asked: list[np.ndarray] = []

    def score_users(users: np.ndarray) -> np.ndarray:
        asked.append(users)
        return scores[users]

    sampled = recall_at(score_users, seen, relevant, k=10, max_users=20)
    sample = np.concatenate(asked)
    assert len(sample) == 20 and np.isin(sample, np.flatnonzero(relevant.getnnz(axis=1))).all()
    assert recall_at(score_users, seen, relevant, k=10, max_users=20) == sampled  # the same users every time
    assert np.array_equal(np.concatenate(asked[len(asked) // 2 :]), sample)
    assert sampled == recall_at(lambda users: scores[sample][users], seen[sample], relevant[sample], k=10)  # = the sample alone
