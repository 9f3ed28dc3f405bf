"""`tailored benchmark latency`: one row per model directory, the same requests for each, on one thread."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from tailored.cli.benchmark import app
from tailored.data.dataset import Dataset
from tailored.models.base import create_scorer
from tailored.pipeline.recommender import Recommender
from tailored.registry.model_dir import save_model


def test_each_model_directory_gets_its_percentiles_and_the_threads_come_back(tmp_path, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 40, 600)],
                          "item_id": [f"i{i}" for i in rng.integers(0, 30, 600)], "value": 1.0})
    dataset = Dataset.from_frame(frame)
    for algorithm in ("popularity", "item-knn"):
        save_model(Recommender(create_scorer(algorithm)).fit(dataset), tmp_path / algorithm)
    monkeypatch.setenv("TAILORED_NUM_THREADS", "2")
    result = CliRunner().invoke(app, ["latency", "--model-dir", str(tmp_path / "popularity"), "--model-dir",
                                      str(tmp_path / "item-knn"), "--requests", "50"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "Scorer" in line]
    assert len(rows) == 2 and "PopularityScorer" in rows[0] and "ItemKNNScorer" in rows[1], result.output
    for row in rows:
        cells = [cell.strip() for cell in row.split("│") if cell.strip()]
        requests, p50, p99, mean = int(cells[2]), *map(float, cells[3:])
        assert requests == 50 and 0 < p50 <= p99 and mean > 0
    assert os.environ["TAILORED_NUM_THREADS"] == "2"


def test_a_missing_model_directory_is_named(tmp_path) -> None:
    result = CliRunner().invoke(app, ["latency", "--model-dir", str(tmp_path / "nowhere")])
    assert result.exit_code != 0 and "nowhere" in result.output
