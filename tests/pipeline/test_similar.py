"""Similar items blend collaborative and attribute similarity; new items are matched on attributes."""

from __future__ import annotations

import pandas as pd

from tailored.data.dataset import Dataset
from tailored.models import create_scorer
from tailored.pipeline.recommender import Recommender
from tailored.pipeline.similar import similar_items
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


def test_image_descriptors_make_same_colour_items_similar(tmp_path) -> None:
    import numpy as np
    from PIL import Image

    from tailored.data.embeddings import image_descriptors

    colours = {"red-a": (210, 30, 30), "red-b": (190, 50, 40), "blue-a": (30, 40, 210), "blue-b": (40, 60, 190)}
    rng = np.random.default_rng(0)
    for name, colour in colours.items():
        noise = rng.normal(0, 10, (40, 40, 3))
        Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)).save(tmp_path / f"{name}.png")
    vectors, failures = image_descriptors([f"{name}.png" for name in colours], root=tmp_path)
    assert not failures
    items = pd.DataFrame({"item_id": list(colours), "image_descriptor": list(vectors)})
    frame = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u4"], "item_id": list(colours)})  # no co-occurrence signal
    recommender = Recommender(create_scorer("popularity")).fit(Dataset.from_frame(frame, items=items))
    first = similar_items(recommender, list(colours), k=1).set_index("item_id")["similar_item_id"].to_dict()
    assert first == {"red-a": "red-b", "red-b": "red-a", "blue-a": "blue-b", "blue-b": "blue-a"}
