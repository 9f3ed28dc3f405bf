"""Similar items blend collaborative and attribute similarity; new items are matched on attributes."""

from __future__ import annotations

import pandas as pd

from tailored.data.dataset import Dataset
from tailored.models import create_scorer
from tailored.pipeline import Recommender
from tailored.similar import similar_items
from tests.models.test_contract import OWN_ITEMS, planted_groups


def test_similar_items_share_the_group_and_new_items_use_attributes() -> None:
    train, _, items = planted_groups()
    recommender = Recommender(create_scorer("ease")).fit(Dataset.from_frame(train, items=items))
    group = dict(zip(items["item_id"], items["category"]))
    frame = similar_items(recommender, ["i0", "i25"], k=5)
    assert frame.groupby("item_id").size().to_dict() == {"i0": 5, "i25": 5}
    assert "i0" not in set(frame[frame["item_id"] == "i0"]["similar_item_id"])
    for query, rows in frame.groupby("item_id"):
        assert all(group[i] == group[query] for i in rows["similar_item_id"]), rows
        assert rows["score"].is_monotonic_decreasing
    extended = recommender.with_items(pd.DataFrame({"item_id": ["fresh"], "category": ["group1"]}))
    fresh = similar_items(extended, ["fresh"], k=5)
    assert all(group[i] == "group1" for i in fresh["similar_item_id"])
    assert int(fresh["similar_item_id"].str[1:].astype(int).min()) >= OWN_ITEMS
