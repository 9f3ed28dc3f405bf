"""Explanations: the history item a recommendation is most like, and the stages' reasons joined in order."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tailored.data.dataset import Dataset
from tailored.models import create_scorer
from tailored.pipeline.recommender import Recommender
from tailored.query import parse_context


def test_the_reason_names_the_most_similar_history_item() -> None:
    # a and b are always taken together, c and d too; the target user took a and c only
    rows = [(f"u{u}", item) for u in range(10) for item in ("a", "b")]
    rows += [(f"v{u}", item) for u in range(10) for item in ("c", "d")]
    rows += [("target", "a"), ("target", "c"), ("w", "e")]
    dataset = Dataset.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id"]))
    recommender = Recommender(create_scorer("item-knn")).fit(dataset)
    frame = recommender.recommend(["target"], 2, explain=True).set_index("item_id")
    assert frame.loc["b", "reasons"] == "like a" and frame.loc["d", "reasons"] == "like c"


def test_stage_reasons_follow_the_history_reason() -> None:
    from tailored.rank import LocationAdjuster

    items = pd.DataFrame({"item_id": ["a", "b", "c"], "lat": [0.0, 0.0, np.nan], "lon": [0.0, 0.1, np.nan]})
    rows = [(f"u{u}", item) for u in range(5) for item in ("a", "b")] + [("target", "a")]
    recommender = Recommender(create_scorer("item-knn"), stages=[LocationAdjuster()])
    recommender.fit(Dataset.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id"]), items=items))
    frame = recommender.recommend(["target"], 1, explain=True, context=parse_context(["lat=0", "lon=0"]))
    assert frame["reasons"].tolist() == ["like a; 11.1 km away"]
