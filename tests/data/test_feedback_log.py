"""Reading and validating feedback logs (CSV, Parquet, frames) and the Open Bandit Dataset adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailored.data.feedback_log import LOG_COLUMNS, read_feedback_log
from tailored.data.open_bandit import open_bandit_file, read_open_bandit
from tailored.errors import ConfigError, DataError


def log_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "exposure_id": ["a", "a", "b", "b"], "user_id": ["u1", "u1", "007", "007"], "position": [1, 2, 1, 2],
        "item_id": ["i1", "i2", "i2", "i3"], "propensity": [0.5, 0.25, 1.0, 0.125], "policy": "softmax:temperature=0.5",
        "model_version": "v1", "created_at": [10.0, 10.0, 20.5, 20.5], "click": [1, 0, 0, 1], "purchase": [0, 0, 0, 1],
        "revenue": [0.0, 0.0, 0.0, 19.9],
    })


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_log_file_round_trips_with_canonical_types(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"log{suffix}"
    frame = log_frame()
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    log = read_feedback_log(path, reward="revenue")
    assert tuple(log.columns) == LOG_COLUMNS
    assert log["user_id"].tolist() == ["u1", "u1", "007", "007"]  # zero-padded ids kept
    assert log["position"].dtype == np.int64 and log["propensity"].dtype == np.float64
    np.testing.assert_allclose(log["revenue"], [0, 0, 0, 19.9])


def test_only_the_evaluated_reward_and_the_core_columns_are_required() -> None:
    log = read_feedback_log(log_frame()[["exposure_id", "user_id", "position", "item_id", "propensity", "purchase"]],
                            reward="purchase")
    assert list(log.columns) == ["exposure_id", "user_id", "position", "item_id", "propensity", "purchase"]
    with pytest.raises(DataError, match="'click' not found in the given DataFrame"):
        read_feedback_log(log_frame().drop(columns="click"))


def test_a_missing_propensity_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    log_frame().drop(columns="propensity").to_csv(path, index=False)
    with pytest.raises(DataError, match=f"Column 'propensity' not found in {path}: a feedback log has the columns"):
        read_feedback_log(path)


@pytest.mark.parametrize(("value", "problem"), [
    (0.0, "1 propensities outside \\(0, 1\\], e.g. '0.0' \\(line 4; the header is line 1\\)"),
    (1.5, "1 propensities outside \\(0, 1\\], e.g. '1.5' \\(line 4; the header is line 1\\)"),
    ("", "1 empty or NaN values \\(line 4; the header is line 1\\)"),
    ("often", "1 values that are not finite numbers, e.g. 'often' \\(line 4; the header is line 1\\)"),
])
def test_bad_propensities_name_file_column_and_line(tmp_path: Path, value: object, problem: str) -> None:
    frame = log_frame().astype({"propensity": object})
    frame.loc[2, "propensity"] = value
    path = tmp_path / "log.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError, match=f"Column 'propensity' in {path} has {problem}"):
        read_feedback_log(path)


def test_frames_count_rows_from_zero_and_other_columns_are_checked() -> None:
    frame = log_frame()
    frame.loc[[1, 3], "propensity"] = np.nan
    with pytest.raises(DataError, match=r"'propensity' in the given DataFrame has 2 empty or NaN values \(rows 1, 3, "
                                        r"counting from 0\)"):
        read_feedback_log(frame)
    with pytest.raises(DataError, match=r"'position' .* 1 positions that are not whole numbers >= 1.*row 0"):
        read_feedback_log(log_frame().assign(position=[0, 2, 1, 2]))
    with pytest.raises(DataError, match=r"'click' .* 1 values other than 0 and 1, e.g. '2' \(row 3"):
        read_feedback_log(log_frame().assign(click=[1, 0, 0, 2]))
    with pytest.raises(DataError, match=r"'exposure_id' .* 1 rows repeating an \(exposure_id, position\).*row 3"):
        read_feedback_log(log_frame().assign(position=[1, 2, 1, 1]))
    with pytest.raises(DataError, match="'user_id' .* 1 empty values"):
        read_feedback_log(log_frame().assign(user_id=["u1", None, "b", "b"]))
    with pytest.raises(DataError, match="Unknown reward 'clicks'"):
        read_feedback_log(log_frame(), reward="clicks")


def test_open_bandit_sample_reads_from_the_installed_package_as_one_list_per_record() -> None:
    if not _has_obp():
        pytest.skip("obp is not installed")
    raw = pd.read_csv(open_bandit_file("random", "all"), usecols=["item_id", "position", "click", "propensity_score"])
    log = read_feedback_log(read_open_bandit("random", "all"))
    assert len(log) == len(raw) == 10_000 and log["exposure_id"].is_unique
    assert log["click"].mean() == pytest.approx(raw["click"].mean())
    assert set(log["position"]) == {1, 2, 3} and np.allclose(log["propensity"], 1 / 80)
    assert log["item_id"].nunique() == 80 and (log["policy"] == "uniform").all()
    with pytest.raises(ConfigError, match="Unknown Open Bandit policy 'ucb'"):
        open_bandit_file("ucb")


def test_without_obp_the_adapter_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r'pip install "\.\[feedback\]"'):
        read_open_bandit()


def _has_obp() -> bool:
    import importlib.util

    return importlib.util.find_spec("obp") is not None
