"""SASRec (``sasrec``): causal attention, order sensitivity, anonymous sessions, determinism, next-item accuracy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.models import create_scorer
from tailored.models.neural.sasrec import SASRecScorer
from tests.conftest import require_extra

torch = require_extra("torch", "torch")

GROUPS, USERS_PER_GROUP, CHAIN, STEPS = 4, 40, 20, 12


def chains(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Each group walks its own cycle of 20 items; a user takes 12 consecutive steps from a random start.

    Returns the interactions and each user's true next item (the 13th step, an external id).
    """
    rng = np.random.default_rng(seed)
    rows, following = [], []
    for user in range(GROUPS * USERS_PER_GROUP):
        group, start = user // USERS_PER_GROUP, rng.integers(CHAIN)
        steps = group * CHAIN + (start + np.arange(STEPS + 1)) % CHAIN
        rows += [(user, int(item), 1.0, 100 * user + t) for t, item in enumerate(steps[:-1])]
        following.append(steps[-1])
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"])
    return frame, np.array(following)


@pytest.fixture(scope="module")
def fitted() -> tuple[Dataset, np.ndarray, SASRecScorer]:
    frame, following = chains()
    dataset = Dataset.from_frame(frame)
    return dataset, dataset.items.index(following), SASRecScorer(epochs=10, max_length=16).fit(dataset)


def test_predicts_the_next_step_of_each_chain(fitted) -> None:
    dataset, following, scorer = fitted
    scores = scorer.score(np.arange(dataset.n_users))
    seen = dataset.matrix().toarray() > 0
    scores[seen] = -np.inf
    hit_rate = np.mean((np.argsort(-scores, axis=1)[:, :10] == following[:, None]).any(axis=1))
    popular = np.argsort(-np.where(seen, -1, dataset.item_counts()), axis=1)[:, :10]
    assert hit_rate > 0.8 and hit_rate > np.mean((popular == following[:, None]).any(axis=1)) + 0.5


def test_attention_is_causal(fitted) -> None:
    _, _, scorer = fitted
    history = torch.tensor([[-1, -1, 3, 7, 1, 5, 9, 2, 4, 6, 8, 10, 11, 12, 13, 14]])
    changed = history.clone()
    changed[0, 10:] = torch.tensor([30, 31, 32, 33, 34, 35])
    with torch.no_grad():
        outputs, changed_outputs = scorer._module(history), scorer._module(changed)
    torch.testing.assert_close(outputs[:, :10], changed_outputs[:, :10])
    assert not torch.allclose(outputs[:, 10:], changed_outputs[:, 10:])


def test_order_matters(fitted) -> None:
    dataset, _, scorer = fitted
    history = scorer.sequences_[0][scorer.sequences_[0] >= 0]
    forward, backward = scorer.score_sessions([history, history[::-1]])
    assert not np.allclose(forward, backward)
    assert np.argmax(forward) != np.argmax(backward)


def test_anonymous_sessions_score_like_the_users_with_that_history(fitted) -> None:
    dataset, _, scorer = fitted
    sessions = [list(row[row >= 0]) for row in scorer.sequences_[:5]]
    np.testing.assert_allclose(scorer.score_sessions(sessions), scorer.score(np.arange(5)), rtol=1e-5, atol=1e-5)
    items = np.array([4, 0, 9])
    np.testing.assert_allclose(scorer.score_sessions(sessions, items), scorer.score(np.arange(5), items), rtol=1e-5,
                               atol=1e-5)
    unknown_skipped = scorer.score_sessions([[-1] + sessions[0] + [-1], []])
    np.testing.assert_allclose(unknown_skipped[0], scorer.score(np.array([0]))[0], rtol=1e-5, atol=1e-5)
    assert (unknown_skipped[1] == 0).all()


def test_same_seed_same_model_other_seed_other_model() -> None:
    dataset = Dataset.from_frame(chains()[0])
    params = {"epochs": "2", "max_length": "8"}
    first = create_scorer("sasrec", params).fit(dataset).score(np.arange(10))
    again = create_scorer("sasrec", params).fit(dataset).score(np.arange(10))
    other = create_scorer("sasrec", params | {"seed": "1"}).fit(dataset).score(np.arange(10))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_patience_holds_out_the_last_item_and_stops_early_on_it(caplog) -> None:
    frame = chains()[0]
    dataset = Dataset.from_frame(frame)
    with caplog.at_level("INFO", logger="tailored.models.neural.training"):
        scorer = SASRecScorer(epochs=30, max_length=8, learning_rate=0.05, patience=1).fit(dataset)
    scores = [record.getMessage() for record in caplog.records if record.getMessage().startswith("epoch=")]
    assert 1 <= len(scores) < 30
    latest = frame.groupby("user_id")["item_id"].last()  # held out for stopping, yet it ends each stored history
    users, items = dataset.users.index(latest.index.to_numpy()), dataset.items.index(latest.to_numpy())
    np.testing.assert_array_equal(scorer.sequences_[users, -1], items)



def test_without_timestamps_the_rows_give_the_order_and_a_warning_says_so(caplog) -> None:
    frame = chains()[0]  # rows already in time order
    params = {"epochs": "2", "max_length": "8"}
    timed = create_scorer("sasrec", params).fit(Dataset.from_frame(frame))
    with caplog.at_level("WARNING", logger="tailored.data.ordering"):
        untimed = create_scorer("sasrec", params).fit(Dataset.from_frame(frame.drop(columns="timestamp")))
    assert "no timestamps: each user's items are taken in the order of the rows" in caplog.text
    np.testing.assert_array_equal(untimed.sequences_, timed.sequences_)
    np.testing.assert_array_equal(untimed.score(np.arange(10)), timed.score(np.arange(10)))
    backwards = Dataset.from_frame(frame.drop(columns="timestamp").iloc[::-1])
    latest = create_scorer("sasrec", params).fit(backwards).sequences_[backwards.users.index(frame["user_id"]), -1]
    first_rows = frame["item_id"].groupby(frame["user_id"]).transform("first")
    np.testing.assert_array_equal(backwards.items.external_ids[latest], first_rows)
