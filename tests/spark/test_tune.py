"""`tailored spark tune`: the validation rows are the local `tune`'s, the defaults are the first trial and the best
is never below them, and the parameters it writes train a model with `tailored spark train --params-file`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tailored.cli import app
from tailored.data.dataset import Dataset
from tailored.data.transforms import resolve_weighting
from tailored.errors import ConfigError
from tailored.split import carve_validation
from tailored.spark.tune import carve, tune_als
from tests.cli.helpers import flat


def planted(seed: int = 5) -> pd.DataFrame:
    """Two taste groups over two halves of the catalogue, counts with a tail (so the weightings differ)."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 60, 1500)
    items = (users % 2) * 20 + rng.integers(0, 20, 1500)
    frame = pd.DataFrame({"user_id": [f"u{u}" for u in users], "item_id": [f"i{i}" for i in items],
                          "value": rng.geometric(0.5, 1500).astype(float),
                          "timestamp": 1_700_000_000 + rng.integers(0, 10 * 86_400, 1500)})
    return frame.drop_duplicates(["user_id", "item_id", "timestamp"], ignore_index=True)


def test_the_validation_rows_are_the_local_carve(spark) -> None:
    frame = planted()
    local = carve_validation(Dataset.from_frame(frame), method="per_user", seed=3)
    _, valid = carve(spark.createDataFrame(frame), "per_user", 3)
    got = valid.toPandas()[["user_id", "item_id", "timestamp"]].sort_values(["user_id", "item_id", "timestamp"])
    want = local.test.to_frame()[["user_id", "item_id", "timestamp"]].astype({"user_id": str, "item_id": str})
    pd.testing.assert_frame_equal(got.reset_index(drop=True),
                                  want.sort_values(["user_id", "item_id", "timestamp"]).reset_index(drop=True),
                                  check_dtype=False)


def test_the_defaults_come_first_and_the_best_is_not_below_them(spark) -> None:
    result = tune_als(spark.createDataFrame(planted()), "ndcg@5", trials=3, seed=3,
                      fixed={"factors": 4, "epochs": 2})
    first = result.trials.iloc[0]
    assert first["params_reg"] == 10.0 and first["params_alpha"] == 1.0  # the local als defaults
    local_train = carve_validation(Dataset.from_frame(planted()), method="per_user", seed=3).train
    assert first["params_weighting"] == resolve_weighting("auto", local_train, explicit=False)[0]  # auto's pick first
    assert set(result.trials["params_weighting"]) <= {"raw", "log1p", "binary", "confidence"}
    assert len(result.trials) == 3 and result.validation == "validation/per_user"
    assert result.best_value >= result.default_value == pytest.approx(first["value"])
    assert 0 < result.best_value <= 1 and result.best_params["factors"] == 4
    with pytest.raises(ConfigError, match="rating predictions"):
        tune_als(spark.createDataFrame(planted()), "rmse")


def test_the_command_writes_parameters_that_spark_train_reads(spark, tmp_path: Path) -> None:
    planted().to_csv(tmp_path / "orders.csv", index=False)
    runner, env = CliRunner(), {"COLUMNS": "300", "NO_COLOR": "1"}
    result = runner.invoke(app, ["spark", "tune", "--interactions", str(tmp_path / "orders.csv"), "--output",
                                 str(tmp_path / "best.json"), "--trials", "2", "--metric", "hr@5", "--param",
                                 "factors=4", "--param", "epochs=2", "--master", "local[2]"], env=env)
    printed = flat(result.output)
    assert result.exit_code == 0, printed
    assert "trial 1/2" in printed and "validation (validation/leave_last_out) hr@5" in printed
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["factors"] == 4 and best["epochs"] == 2 and "reg" in best
    trained = runner.invoke(app, ["spark", "train", "--interactions", str(tmp_path / "orders.csv"), "--model-dir",
                                  str(tmp_path / "model"), "--params-file", str(tmp_path / "best.json"),
                                  "--master", "local[2]"], env=env)
    assert trained.exit_code == 0, flat(trained.output)
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["params"]["reg"] == pytest.approx(best["reg"])
    refused = runner.invoke(app, ["spark", "tune", "--interactions", str(tmp_path / "orders.csv"), "--output",
                                  str(tmp_path / "other.json"), "--algorithm", "ease"], env=env)
    assert refused.exit_code == 2 and "not tuned on Spark; valid: als" in flat(refused.output)
