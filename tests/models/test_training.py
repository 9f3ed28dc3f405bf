"""The early-stopping signal of the shared training loop."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tailored.models.neural.training import recall_at


def test_recall_at_k_by_hand_seen_items_excluded() -> None:
    scores = np.array([[0.9, 0.8, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.5, 0.5]], np.float32)
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    relevant = sp.csr_matrix(np.array([[0, 0, 1, 0], [1, 0, 0, 1], [0, 0, 0, 0]]))  # user 2 holds nothing out
    # user 0: item 0 seen, top 2 = items 1, 2 -> 1 hit of min(1, 2); user 1: top 2 = items 3, 2 -> 1 of min(2, 2)
    assert recall_at(lambda users: scores[users], seen, relevant, k=2) == (1.0 + 0.5) / 2


class Recorded:
    """Random scores of 50 users x 300 items (41 users hold items out) that note which users each call asks for."""

    def __init__(self) -> None:
        self.scores = np.random.default_rng(0).random((50, 300)).astype(np.float32)
        self.seen = sp.random(50, 300, density=0.05, random_state=1, format="csr")
        self.relevant = sp.random(50, 300, density=0.005, random_state=2, format="csr")
        self.asked: list[np.ndarray] = []

    def __call__(self, users: np.ndarray) -> np.ndarray:
        self.asked.append(users)
        return self.scores[users]


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


def test_recall_at_k_scores_only_blocks_of_users_with_held_out_items(recorded: Recorded) -> None:
    whole = recall_at(lambda users: recorded.scores[users], recorded.seen, recorded.relevant, k=10)
    assert 0 < whole < 1
    assert recall_at(recorded, recorded.seen, recorded.relevant, k=10, chunk=7) == whole
    assert max(len(block) for block in recorded.asked) == 7
    holding_out = np.flatnonzero(recorded.relevant.getnnz(axis=1))
    assert len(holding_out) == 41 and np.array_equal(np.concatenate(recorded.asked), holding_out)


def test_recall_at_k_ranks_a_fixed_sample_past_max_users(recorded: Recorded) -> None:
    sampled = recall_at(recorded, recorded.seen, recorded.relevant, k=10, max_users=20)
    sample = np.concatenate(recorded.asked)
    assert len(sample) == 20 and np.isin(sample, np.flatnonzero(recorded.relevant.getnnz(axis=1))).all()
    assert recall_at(recorded, recorded.seen, recorded.relevant, k=10, max_users=20) == sampled
    assert np.array_equal(np.concatenate(recorded.asked[len(recorded.asked) // 2 :]), sample)  # the same users again
    alone = recall_at(lambda users: recorded.scores[sample][users], recorded.seen[sample], recorded.relevant[sample],
                      k=10)
    assert sampled == alone  # the mean over the sample's users, nothing else
