"""Training records: bias of the training pairs, the quality report, evaluation with intervals and per segment on a
frozen test file, and the difference with the previous record, against values computed by hand."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.monitoring.snapshot import snapshot
from tailored.monitoring.training import record_training, training_record
from tailored.pipeline.recommender import build_recommender
from tailored.registry.model_dir import save_model
from tailored.store.monitoring import trainings

PAIRS = {"u0": ["i0", "i1", "i2"], "u1": ["i0", "i1"], "u2": ["i0"], "u3": ["i0"]}
QUALITY = {"rows": 10, "accepted": 7, "rejected": 3, "findings": [
    {"rule": "duplicates", "field": "user_id", "severity": "warning", "action": "rejected", "count": 3,
     "sample_rows": [1], "sample_values": ["u0"], "message": "3 duplicated rows"},
    {"rule": "missing_ids", "field": "user_id", "severity": "error", "action": "rejected", "count": 0,
     "sample_rows": [], "sample_values": [], "message": ""}]}


@pytest.fixture
def model_dir(tmp_path):
    frame = pd.DataFrame([(user, item) for user, items in PAIRS.items() for item in items],
                         columns=["user_id", "item_id"])
    dataset = Dataset.from_frame(frame)
    save_model(build_recommender("popularity").fit(dataset), tmp_path / "model",
               {"data_fingerprint": dataset.fingerprint()})
    (tmp_path / "model" / "quality.json").write_text(json.dumps(QUALITY))
    return tmp_path / "model"


def test_a_training_record_and_its_difference_with_the_previous_one(events, model_dir, tmp_path) -> None:
    events.put_user("u0", {"segment": "a"})
    events.put_user("u1", {"segment": "a"})
    events.put_user("u2", {"segment": "b"})
    for item, category in (("i0", "x"), ("i1", "x"), ("i2", "y")):
        events.put_item(item, {"category": category})
    (tmp_path / "test.csv").write_text("user_id,item_id\nu2,i1\nu3,i2\n")  # popularity, seen left out: ranks 1, 2
    first = record_training(events, "shop", model_dir, tmp_path / "test.csv", ["hr@10", "mrr@10"], bootstrap=200)
    bias = first["bias"]
    assert (bias["pairs"], bias["users"], bias["items"]) == (7, 4, 3)
    assert bias["popularity_gini"] == pytest.approx(6 / 21)  # pairs per item 4, 2, 1
    assert bias["top1_item_share"] == pytest.approx(4 / 7) and bias["top10_user_share"] == pytest.approx(3 / 7)
    assert bias["activity_skew"] == pytest.approx(1.75 / 1.5)  # pairs per user 3, 2, 1, 1
    assert bias["segments"] == pytest.approx({"a": 5 / 7, "b": 1 / 7, "(none)": 1 / 7})
    assert bias["categories"] == pytest.approx({"x": 6 / 7, "y": 1 / 7})
    assert first["quality"] == {"rows": 10, "accepted": 7, "rejected": 3, "findings": [
        {"rule": "duplicates", "field": "user_id", "severity": "warning", "action": "rejected", "count": 3,
         "message": "3 duplicated rows"}]}
    evaluation = first["evaluation"]
    assert evaluation["hr@10"]["value"] == 1.0 and evaluation["mrr@10"]["value"] == pytest.approx(0.75)
    low, high = evaluation["mrr@10"]["ci"]
    assert 0.5 <= low <= 0.75 <= high <= 1.0
    assert first["segments"]["b"]["mrr@10"] == 1.0 and first["segments"]["(none)"]["mrr@10"] == 0.5
    assert first["diff"] == {}
    (tmp_path / "test2.csv").write_text("user_id,item_id\nu2,i1\nu3,i1\n")  # both at rank 1
    second = record_training(events, "shop", model_dir, tmp_path / "test2.csv", ["hr@10", "mrr@10"], bootstrap=200)
    assert second["diff"] == pytest.approx({"hr@10": 0.0, "mrr@10": 0.25, "popularity_gini": 0.0,
                                            "rejected_share": 0.0})
    stored = trainings(events, model="shop")
    assert [each["fingerprint"] for each in stored] == [first["fingerprint"]] * 2 and len(first["fingerprint"]) == 16
    shown = snapshot(events)["trainings"]
    json.dumps(shown, allow_nan=False)
    assert shown[1]["evaluation"]["mrr@10"]["value"] == 1.0 and shown[1]["diff"]["mrr@10"] == pytest.approx(0.25)
    assert shown[1]["model"] == "shop"


def test_a_model_saved_without_its_data_fingerprint_gets_one_of_its_pairs(model_dir) -> None:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    del manifest["data_fingerprint"]
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    record = training_record(model_dir)
    assert record["fingerprint"].startswith("pairs:") and len(record["fingerprint"]) == 22
    assert record["evaluation"] == {} and record["quality"]["rejected"] == 3
