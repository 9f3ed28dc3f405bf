"""The splitters reproduce the shared MovieLens 100K benchmark files P1, P2 and P6 row for row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.split import Split, check_leakage, split_cold_users, split_leave_last_out, split_per_user

pytestmark = pytest.mark.movielens

SPLITTERS = {"P1": split_per_user, "P2": split_leave_last_out, "P6": split_cold_users}


@pytest.fixture(scope="module", params=[int, str], ids=["integer-ids", "text-ids"])
def ratings(request: pytest.FixtureRequest, ml100k_dir: Path) -> Dataset:
    """u.data with ids as integers (pandas' guess) and as text (what the CLI's readers give): same splits."""
    frame = pd.read_csv(ml100k_dir / "u.data", sep="\t", names=["user_id", "item_id", "rating", "timestamp"],
                        dtype={"user_id": request.param, "item_id": request.param})
    positives = frame.drop(columns="rating").assign(value=1.0)
    return Dataset.from_frame(positives[["user_id", "item_id", "value", "timestamp"]])


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({"value": np.float64}).sort_values(["user_id", "item_id"]).reset_index(drop=True)


@pytest.mark.parametrize("protocol", SPLITTERS)
def test_reproduces_the_shared_split(protocol: str, ratings: Dataset, ml100k_splits_dir: Path) -> None:
    split = SPLITTERS[protocol](ratings)
    check_leakage(split)
    for part in ("train", "test"):
        expected = pd.read_csv(ml100k_splits_dir / f"{protocol}.{part}.csv", dtype={"user_id": str, "item_id": str})
        actual = getattr(split, part).to_frame().astype({"user_id": str, "item_id": str})
        pd.testing.assert_frame_equal(_sorted(actual), _sorted(expected), check_dtype=False)


def test_p1_test_counts_are_round_of_a_fifth(ratings: Dataset, ml100k_splits_dir: Path) -> None:
    n = ratings.to_frame().astype({"user_id": str}).groupby("user_id").size()
    held = pd.read_csv(ml100k_splits_dir / "P1.test.csv", dtype={"user_id": str}).groupby("user_id").size()
    held = held.reindex(n.index, fill_value=0)
    half_even = np.maximum(np.rint(0.2 * n), 1)
    half_up = np.maximum(np.floor(0.2 * n + 0.5), 1)
    # 0.2 * n is never exactly halfway for whole n, so both roundings agree and both match the file
    assert (held == half_even).all() and (held == half_up).all()


def test_frozen_split_round_trips(ratings: Dataset, tmp_path: Path) -> None:
    split = split_per_user(ratings)
    split.save(tmp_path)
    restored = Split.load(tmp_path)
    assert restored.test.fingerprint() == split.test.fingerprint()
    assert restored.train.fingerprint() == split.train.fingerprint()
