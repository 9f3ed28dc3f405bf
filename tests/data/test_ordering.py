"""Canonical orders (`tailored.data.ordering`): the same interactions in any row order sort the same way."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tailored.data.dataset import Dataset
from tailored.data.idmap import IdMap
from tailored.data.ordering import id_ranks, time_ordered


def test_ids_that_are_all_numbers_sort_numerically_others_as_text() -> None:
    assert id_ranks(IdMap(np.array(["10", "2", "1"]))).tolist() == [2, 1, 0]
    assert id_ranks(IdMap(np.array(["b10", "b2", "a"]))).tolist() == [1, 2, 0]


def test_each_users_timeline_breaks_ties_by_item_id_whatever_the_row_order() -> None:
    frame = pd.DataFrame({"user_id": ["u", "u", "u", "v", "v"], "item_id": ["10", "2", "7", "10", "2"],
                          "timestamp": [5, 5, 1, 3, 3]})

    def timelines(rows: pd.DataFrame) -> list[tuple[str, str]]:
        dataset = Dataset.from_frame(rows)
        users, items = time_ordered(dataset)
        return list(zip(dataset.users.ids(users), dataset.items.ids(items)))

    expected = [("u", "7"), ("u", "2"), ("u", "10"), ("v", "2"), ("v", "10")]
    assert sorted(timelines(frame)) == sorted(expected)
    for seed in range(5):
        shuffled = timelines(frame.sample(frac=1.0, random_state=seed))
        assert [pair for pair in shuffled if pair[0] == "u"] == expected[:3]
        assert [pair for pair in shuffled if pair[0] == "v"] == expected[3:]
