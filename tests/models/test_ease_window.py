"""ease-window: EASE on the Gram matrix of sliding windows over each user's timeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.models.base import create_scorer
from tailored.models.ease_window import window_gram


def timeline(*users: str) -> pd.DataFrame:
    """One user per string, one item per letter, taken one time step apart in the order written."""
    rows = [(u, item, 1.0, t) for u, items in enumerate(users) for t, item in enumerate(items)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"])


def gram_of_explicit_windows(frame: pd.DataFrame, dataset: Dataset, window: int) -> np.ndarray:
    """The definition written out: each user's distinct items in time order (ties by item id), every window of
    `window` consecutive ones (overhanging both ends), their outer products summed and divided by `window`."""
    frame = frame.assign(item=dataset.items.index(frame["item_id"].to_numpy()))
    gram = np.zeros((dataset.n_items, dataset.n_items))
    for _, rows in frame.sort_values(["timestamp", "item_id"], kind="stable").groupby("user_id"):
        history = list(dict.fromkeys(rows["item"]))  # each item once, at its first interaction
        for start in range(1 - window, len(history)):
            counts = np.bincount(history[max(start, 0) : start + window], minlength=dataset.n_items)
            gram += np.outer(counts, counts)
    return gram / window


def test_pairs_count_by_their_distance_in_the_timeline() -> None:
    dataset = Dataset.from_frame(timeline("abc"))
    a, b, c = dataset.items.index(np.array(["a", "b", "c"]))
    gram = window_gram(dataset, 3)
    np.testing.assert_allclose(np.diag(gram), [1.0, 1.0, 1.0])
    assert gram[a, b] == gram[b, a] == gram[b, c] == pytest.approx(2 / 3)  # one step apart
    assert gram[a, c] == gram[c, a] == pytest.approx(1 / 3)  # two steps apart
    assert window_gram(dataset, 2)[a, c] == 0.0  # beyond the window


def test_the_gram_matrix_is_that_of_the_windows_and_positive_semidefinite() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"user_id": rng.integers(0, 12, 300), "item_id": rng.integers(0, 25, 300),
                          "value": 1.0, "timestamp": rng.integers(0, 50, 300)})  # repeats and tied times
    dataset = Dataset.from_frame(frame)
    for window in (2, 5, 40):
        gram = window_gram(dataset, window)
        np.testing.assert_allclose(gram, gram_of_explicit_windows(frame, dataset, window), atol=1e-12)
        assert np.linalg.eigvalsh(gram).min() > -1e-9


def test_the_timeline_follows_the_timestamps_not_the_rows() -> None:
    frame = timeline("abcdef", "fedcba", "ace")
    shuffled = frame.sample(frac=1.0, random_state=0)
    first, second = Dataset.from_frame(frame), Dataset.from_frame(shuffled)
    order = second.items.index(first.items.ids(np.arange(first.n_items)))
    np.testing.assert_allclose(window_gram(second, 3)[np.ix_(order, order)], window_gram(first, 3))


def test_items_taken_at_the_same_time_follow_their_ids_not_the_rows() -> None:
    """The same interactions in two row orders (a file sorted by user and item, a split cut in memory in the order
    of the source) index the items differently; the windows, the weights and the lists are the same."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"user_id": rng.integers(0, 30, 600), "item_id": rng.integers(0, 60, 600),
                          "value": 1.0, "timestamp": rng.integers(0, 4, 600)})  # most of a user's items share a time
    frame = frame.drop_duplicates(["user_id", "item_id"])
    in_file_order = frame.sort_values(["user_id", "item_id"])
    first, second = Dataset.from_frame(frame), Dataset.from_frame(in_file_order)
    assert not np.array_equal(first.items.external_ids, second.items.external_ids)  # other item indices
    order = second.items.index(first.items.ids(np.arange(first.n_items)))
    np.testing.assert_array_equal(window_gram(second, 5)[np.ix_(order, order)], window_gram(first, 5))
    lists = []
    for dataset in (first, second):
        scorer = create_scorer("ease-window", {"window": 5, "reg": 10.0}).fit(dataset)
        users = dataset.users.index(np.arange(30))
        top = np.argsort(-scorer.score(users), axis=1, kind="stable")[:, :10]
        lists.append(dataset.items.ids(top))
    np.testing.assert_array_equal(lists[0], lists[1])


def test_items_taken_together_are_recommended_and_distant_ones_are_not() -> None:
    """Every user takes a and b first and c and d last, six random items apart: a's partner is b, not c or d,
    whereas EASE sees all four always together and cannot tell them apart."""
    rng = np.random.default_rng(0)
    fillers = ["".join(rng.choice(list("efghijklmnopqrst"), 6, replace=False)) for _ in range(40)]
    dataset = Dataset.from_frame(timeline(*("ab" + filler + "cd" for filler in fillers), "a"))
    newcomer = dataset.users.index(np.array([40]))
    b, c, d = dataset.items.index(np.array(["b", "c", "d"]))
    scores = create_scorer("ease-window", {"window": 3, "reg": 10.0}).fit(dataset).score(newcomer)[0]
    assert np.argmax(scores) == b and scores[b] > 10 * max(abs(scores[c]), abs(scores[d]))
    ease = create_scorer("ease", {"reg": 10.0}).fit(dataset).score(newcomer)[0]
    assert ease[c] == pytest.approx(ease[b]) and ease[d] == pytest.approx(ease[b])


def test_without_timestamps_the_rows_give_the_order(caplog) -> None:
    frame = timeline("abcd", "dcba")
    with caplog.at_level("WARNING", logger="tailored.data.ordering"):
        untimed = window_gram(Dataset.from_frame(frame.drop(columns="timestamp")), 2)
    assert "no timestamps: each user's items are taken in the order of the rows" in caplog.text
    np.testing.assert_array_equal(untimed, window_gram(Dataset.from_frame(frame), 2))


def test_a_window_shorter_than_a_pair_is_refused() -> None:
    with pytest.raises(ConfigError, match="ease-window.window must be at least 2 interactions"):
        create_scorer("ease-window", {"window": 1}).fit(Dataset.from_frame(timeline("ab")))
