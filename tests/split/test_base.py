"""Split save/load round trip, the shared rank helper, validation carving."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError, DataError
from tailored.split import Split, carve_validation, split_per_user, split_temporal
from tailored.split.base import rank_within


def test_rank_within_groups() -> None:
    groups = np.array([2, 1, 2, 1, 2])
    keys = np.array([0.5, 0.9, 0.1, 0.3, 0.5])
    # group 1: rows 3 (0.3) then 1 (0.9); group 2: row 2 (0.1), then rows 0 and 4 tied at 0.5 in input order
    assert rank_within(groups, keys).tolist() == [1, 1, 0, 0, 2]
    assert rank_within(np.zeros(0, int), np.zeros(0)).tolist() == []


def _dataset() -> Dataset:
    frame = pd.DataFrame(
        {
            "user_id": ["b", "a", "b", "c", "a", "b", "c", "a"],
            "item_id": ["x01", "y", "y", "x01", "z", "z", "y", "x02"],
            "value": [1.5, 0.1, 3.0, 2.0, 0.7, 1.0, 4.25, 0.3],
            "timestamp": pd.to_datetime([f"2024-01-0{d}" for d in (1, 2, 3, 4, 5, 6, 7, 8)]),
        }
    )
    users = pd.DataFrame({"user_id": ["a", "b", "c", "cold"], "gender": ["F", "M", None, "F"], "age": [21, 34, 56, 18]})
    return Dataset.from_frame(frame, users=users)


def test_save_load_restores_the_split_exactly(tmp_path: Path) -> None:
    split = split_per_user(_dataset(), 0.34, seed=7)
    split = Split(split.train, split.test, valid=split.test, name=split.name, params=split.params,
                  dataset_fingerprint=split.dataset_fingerprint)
    split.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["items.csv", "split.json", "test.csv", "train.csv",
                                                          "users.csv", "valid.csv"]
    manifest = json.loads((tmp_path / "split.json").read_text())
    assert manifest["seed"] == 7 and manifest["counts"]["train"]["rows"] == len(split.train)
    restored = Split.load(tmp_path)
    assert (restored.name, restored.params, restored.dataset_fingerprint) == (split.name, split.params,
                                                                              split.dataset_fingerprint)
    for name, part in split.parts().items():
        again = restored.parts()[name]
        assert again.users == part.users and again.items == part.items
        pd.testing.assert_frame_equal(again.interactions, part.interactions)
        pd.testing.assert_frame_equal(again.user_attributes, part.user_attributes)
        assert again.fingerprint() == part.fingerprint()
    assert "cold" in restored.train.users  # ids known only from attributes survive


def test_load_rejects_edited_files(tmp_path: Path) -> None:
    split_per_user(_dataset(), 0.34, seed=7).save(tmp_path)
    text = (tmp_path / "test.csv").read_text().splitlines()
    (tmp_path / "test.csv").write_text("\n".join(text[:-1]) + "\n")
    with pytest.raises(DataError, match="test.csv differs from the split that was saved"):
        Split.load(tmp_path)
    with pytest.raises(DataError, match="holds no saved split"):
        Split.load(tmp_path / "missing")


def test_temporal_split_with_dates_and_horizon() -> None:
    dataset = _dataset()
    split = split_temporal(dataset, cutoff="2024-01-05", horizon_days=2)
    # train: Jan 1-4; test: Jan 5 and 6 (within 2 days of the cut); Jan 7, 8 fall after the horizon
    assert split.train.to_frame()["timestamp"].dt.day.tolist() == [1, 2, 3, 4]
    assert split.test.to_frame()["timestamp"].dt.day.tolist() == [5, 6]
    assert split.params["cutoff"] == "2024-01-05T00:00:00"
    assert split.params["rows_after_horizon"] == 2
    # Jan 5 (a, z) and Jan 6 (b, z): item z is unseen in training, users a and b are known
    assert split.params["test_rows_unseen_item"] == 2 and split.params["test_items_unseen"] == 1
    assert split.params["test_rows_unseen_user"] == 0


def test_temporal_split_by_fraction_on_unix_seconds() -> None:
    frame = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [1, 2, 1, 3, 1], "timestamp": [10, 20, 30, 30, 50]})
    split = split_temporal(Dataset.from_frame(frame), test_fraction=0.4)
    # round(0.4 * 5) = 2 rows after the cut: sorted times 10 20 30 30 50, cut at the 4th = 30; the tie joins test
    assert split.params["cutoff"] == 30
    assert split.test.to_frame()["timestamp"].tolist() == [30, 30, 50]
    # training holds only user 1 (items 1, 2): users 2 and 3 (3 rows) and item 3 (1 row) are unseen
    assert split.params["test_users_unseen"] == 2 and split.params["test_rows_unseen_user"] == 3
    assert split.params["test_items_unseen"] == 1 and split.params["test_rows_unseen_item"] == 1
    assert split_temporal(Dataset.from_frame(frame), cutoff="1970-01-01 00:00:25").params["cutoff"] == 25.0


def test_carve_validation_uses_training_rows_only() -> None:
    outer = split_per_user(_dataset(), 0.34, seed=1)
    inner = carve_validation(outer, method="per_user", fraction=0.5, seed=2)
    assert inner.name == "validation/per_user"
    both = pd.concat([inner.train.to_frame(), inner.test.to_frame()]).sort_values(["user_id", "item_id"])
    pd.testing.assert_frame_equal(both.reset_index(drop=True),
                                  outer.train.to_frame().sort_values(["user_id", "item_id"]).reset_index(drop=True))
    assert carve_validation(outer.train, method="temporal", fraction=0.5).name == "validation/temporal"
    with pytest.raises(ConfigError, match="Unknown split method 'kfold'. Valid methods: per_user"):
        carve_validation(outer, method="kfold")
