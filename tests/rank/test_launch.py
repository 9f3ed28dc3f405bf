from __future__ import annotations

import numpy as np
import pandas as pd

from tailored.data.dataset import Dataset
from tailored.models import create_scorer
from tailored.pipeline.recommender import Recommender
from tailored.rank import Catalogue, NewItemSlots
from tailored.query import parse_context
from tailored.rank.base import bare_request

DAY = 86_400.0


def test_slots_replace_the_lowest_regular_items_and_keep_score_order() -> None:
    now = pd.Timestamp("2026-06-30", tz="UTC").timestamp()
    first_seen = np.array([0.0, 0.0, 0.0, 0.0, now - 3 * DAY, now - 60 * DAY, np.nan])  # 4: 3 days old, 6: no history
    request = bare_request(1, Catalogue(np.array(list("abcdefg")), first_seen=first_seen),
                           parse_context(["date=2026-06-30"]))
    request.scores = np.array([[9.0, 8.0, 7.0, 6.0, 1.0, 5.0, 0.5]], np.float32)
    items, scores = np.array([[0, 1, 2, 3]]), np.array([[9.0, 8.0, 7.0, 6.0]], np.float32)
    reranked, values = NewItemSlots(max_age_days=30, slots=2).rerank(items, scores, request, 4)
    assert reranked.tolist() == [[0, 1, 4, 6]] and values.tolist() == [[9.0, 8.0, 1.0, 0.5]]
    reasons = NewItemSlots().explain(reranked, request)
    assert reasons.tolist() == [["", "", "new item (3 days)", "new item"]]


def test_a_launch_date_column_overrides_first_interactions() -> None:
    catalogue = Catalogue(np.array(["old", "relaunched"]), pd.DataFrame({"launch_date": [None, "2026-06-25"]}),
                          first_seen=np.array([0.0, 0.0]))
    request = bare_request(1, catalogue, parse_context(["date=2026-06-30"]))
    assert NewItemSlots().is_new(request).tolist() == [False, True]


def test_in_a_pipeline_an_item_without_history_gets_a_slot() -> None:
    frame = pd.DataFrame({"user_id": list("aabbcc"), "item_id": ["x", "y", "x", "z", "y", "z"],
                          "timestamp": 1_700_000_000})
    items = pd.DataFrame({"item_id": ["x", "y", "z", "w", "v"], "category": ["c"] * 5})
    recommender = Recommender(create_scorer("popularity"), exclude_seen=False, stages=[NewItemSlots(slots=1)])
    recommender.fit(Dataset.from_frame(frame, items=items))
    lists = recommender.recommend(["a"], 3, context=parse_context(["date=2026-01-01"]))
    assert len(set(lists["item_id"]) & {"w", "v"}) == 1 and len(lists) == 3
