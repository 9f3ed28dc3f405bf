"""`tailored spark ...` through the real command line: in-process (typer's CliRunner, sharing the test session's JVM)
for the commands that run Spark jobs, a subprocess for the errors raised before any JVM starts. Each command on a
tiny CSV, its outputs checked against the local commands' on the same file, and bad input exiting 2 with what to
fix."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tailored.cli import app
from tests.cli.helpers import ENV, TAILORED, flat

SPARK = ["--master", "local[2]", "--conf", "spark.sql.shuffle.partitions=4"]
RUNNER = CliRunner()


def interactions(seed: int = 5, rows: int = 600) -> pd.DataFrame:
    """40 users x 25 items, skewed popularity, 60 days of timestamps; no repeated (user, item, timestamp) row."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"user_id": [f"u{u:02d}" for u in rng.integers(0, 40, rows)],
                          "item_id": [f"i{i:02d}" for i in rng.zipf(1.5, rows) % 25],
                          "value": 1.0, "timestamp": 1_700_000_000 + rng.integers(0, 60 * 86_400, rows)})
    return frame.drop_duplicates(["user_id", "item_id"], ignore_index=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("spark-cli")
    interactions().to_csv(folder / "interactions.csv", index=False)
    return folder


def invoke(*args: object) -> tuple[int, str]:
    result = RUNNER.invoke(app, ["spark", *map(str, args)], env={"COLUMNS": "300", "NO_COLOR": "1"})
    return result.exit_code, flat(result.output)


def test_check_keeps_the_rejected_rows_with_their_reasons(spark, data: Path, tmp_path: Path) -> None:
    frame = interactions()
    bad = pd.concat([frame, frame.iloc[:3], pd.DataFrame({"user_id": ["u01"], "item_id": [None], "value": [1.0],
                                                          "timestamp": [1_700_000_000]})], ignore_index=True)
    bad.to_csv(tmp_path / "bad.csv", index=False)
    code, output = invoke("check", "--interactions", tmp_path / "bad.csv", "--output", tmp_path / "clean.parquet",
                          "--report", tmp_path / "report.json", "--strict", *SPARK)
    assert code == 2 and "4 rows of" in output and "(--strict)" in output  # written, then refused by --strict
    clean = pd.read_parquet(tmp_path / "clean.parquet")
    rejected = pd.read_parquet(tmp_path / "clean.rejected.parquet")
    assert len(clean) == len(frame) and len(rejected) == 4 and "reason" in rejected.columns
    assert rejected["reason"].nunique() == 2  # the three repeated rows share one reason, the missing item another
    assert f"{len(bad):,} rows, {len(frame):,} accepted, 4 rejected" in output
    assert pd.read_json(tmp_path / "report.json", typ="series")["rejected"] == 4


def test_a_missing_column_exits_2_naming_it(spark, data: Path, tmp_path: Path) -> None:
    code, output = invoke("check", "--interactions", data / "interactions.csv", "--item-col", "product", *SPARK)
    assert code == 2 and "product" in output and "interactions.csv" in output
    code, output = invoke("split", "--interactions", tmp_path / "nowhere.csv", "--output-dir", tmp_path / "s", *SPARK)
    assert code == 2 and "nowhere.csv" in output


def test_split_gives_the_local_rows(spark, data: Path, tmp_path: Path) -> None:
    code, output = invoke("split", "--interactions", data / "interactions.csv", "--output-dir", tmp_path / "spark",
                          "--seed", 7, *SPARK)
    assert code == 0, output
    local = RUNNER.invoke(app, ["split", "--interactions", str(data / "interactions.csv"), "--output-dir",
                                str(tmp_path / "local"), "--seed", "7"])
    assert local.exit_code == 0, local.output
    for part in ("train", "test"):
        mine = pd.read_parquet(tmp_path / "spark" / f"{part}.parquet")[["user_id", "item_id"]]
        theirs = pd.read_csv(tmp_path / "local" / f"{part}.csv", dtype=str)[["user_id", "item_id"]]
        assert sorted(map(tuple, mine.to_numpy())) == sorted(map(tuple, theirs.to_numpy()))
    assert (tmp_path / "spark" / "split.json").exists()


def test_train_recommend_evaluate_agree_with_the_local_commands(spark, data: Path, tmp_path: Path) -> None:
    params = ["--param", "factors=4", "--param", "epochs=3", "--param", "reg=0.5", "--param", "seed=1"]
    code, output = invoke("train", "--interactions", data / "interactions.csv", "--model-dir", tmp_path / "model",
                          "--factors-dir", tmp_path / "factors", *params, *SPARK)
    assert code == 0, output
    code, output = invoke("recommend", "--model-dir", tmp_path / "model", "--all-users", "--k", 5, "--output",
                          tmp_path / "from-model.parquet", *SPARK)
    assert code == 0, output
    code, output = invoke("recommend", "--factors-dir", tmp_path / "factors", "--interactions",
                          data / "interactions.csv", "--all-users", "--k", 5, "--output",
                          tmp_path / "from-factors.parquet", *SPARK)
    assert code == 0, output
    local = RUNNER.invoke(app, ["recommend", "--model-dir", str(tmp_path / "model"), "--all-users", "--k", "5",
                                "--output", str(tmp_path / "local.csv")])
    assert local.exit_code == 0, local.output

    def lists(frame: pd.DataFrame) -> dict[str, list[str]]:
        ordered = frame.astype({"user_id": str, "item_id": str}).sort_values(["user_id", "rank"])
        return ordered.groupby("user_id")["item_id"].agg(list).to_dict()

    code, output = invoke("recommend", "--model-dir", tmp_path / "model", "--all-users", "--k", 5, "--db",
                          f"sqlite:///{tmp_path / 'crm.db'}", "--table", "campaign", *SPARK)
    assert code == 0, output
    import sqlalchemy as sa

    with sa.create_engine(f"sqlite:///{tmp_path / 'crm.db'}").connect() as connection:
        from_db = pd.read_sql_table("campaign", connection)
    from_model = pd.read_parquet(tmp_path / "from-model.parquet")
    assert lists(from_model) == lists(pd.read_parquet(tmp_path / "from-factors.parquet")) == lists(from_db)
    assert lists(from_model) == lists(pd.read_csv(tmp_path / "local.csv"))
    assert from_model.groupby("user_id").size().max() == 5

    test = interactions(seed=9).head(200)
    test.to_csv(tmp_path / "test.csv", index=False)
    metrics = ["--metric", "ndcg@5", "--metric", "recall@5", "--metric", "coverage@5"]
    code, output = invoke("evaluate", "--test", tmp_path / "test.csv", "--recommendations", tmp_path / "local.csv",
                          "--train", data / "interactions.csv", "--output", tmp_path / "spark.json", *metrics, *SPARK)
    assert code == 0, output
    local = RUNNER.invoke(app, ["evaluate", "--test", str(tmp_path / "test.csv"), "--recommendations",
                                str(tmp_path / "local.csv"), "--train", str(data / "interactions.csv"), "--output",
                                str(tmp_path / "local.json"), *metrics])
    assert local.exit_code == 0, local.output
    mine = pd.read_json(tmp_path / "spark.json").set_index("metric")["value"]
    theirs = pd.read_json(tmp_path / "local.json").set_index("metric")["value"]
    assert mine.to_dict() == pytest.approx(theirs.loc[mine.index].to_dict(), abs=1e-9)


def test_item_knn_trains_a_normal_model_directory(spark, data: Path, tmp_path: Path) -> None:
    from tailored.registry.model_dir import load_model

    code, output = invoke("train", "--interactions", data / "interactions.csv", "--model-dir", tmp_path / "knn",
                          "--algorithm", "item-knn", "--param", "neighbors=5", *SPARK)
    assert code == 0, output
    model = load_model(tmp_path / "knn")
    assert model.scorer.algorithm == "item-knn" and model.scorer.neighbors == 5
    assert len(model.users_) == interactions()["user_id"].nunique()
    code, output = invoke("recommend", "--model-dir", tmp_path / "knn", "--all-users", "--output",
                          tmp_path / "o.parquet", *SPARK)
    assert code == 2 and "Spark scores factor models" in output and "tailored recommend" in output


def test_bad_options_exit_2_with_the_fix(spark, data: Path, tmp_path: Path) -> None:
    code, output = invoke("train", "--interactions", data / "interactions.csv", "--model-dir", tmp_path / "m",
                          "--algorithm", "ease", *SPARK)
    assert code == 2 and "'ease' does not run on Spark; valid: als, item-knn, popularity" in output
    assert "tailored train" in output
    code, output = invoke("train", "--interactions", data / "interactions.csv", "--model-dir", tmp_path / "m",
                          "--param", "factor=3", *SPARK)
    assert code == 2 and "['factor']" in output and "factors" in output
    code, output = invoke("train", "--interactions", data / "interactions.csv", "--model-dir", tmp_path / "m",
                          "--algorithm", "popularity", "--factors-dir", tmp_path / "f", *SPARK)
    assert code == 2 and "--factors-dir writes ALS factors" in output
    code, output = invoke("check", "--interactions", data / "interactions.csv", "--conf", "spark.driver.memory")
    assert code == 2 and "is not key=value" in output
    code, output = invoke("recommend", "--factors-dir", tmp_path, "--all-users", "--output", tmp_path / "o.parquet",
                          *SPARK)
    assert code == 2 and "--factors-dir needs --interactions" in output


def run_cli(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TAILORED, "spark", *map(str, args)], env=env or ENV, capture_output=True, text=True,
                          timeout=120)


def test_an_unreachable_master_exits_2_before_any_jvm(data: Path) -> None:
    result = run_cli("check", "--interactions", data / "interactions.csv", "--master", "spark://127.0.0.1:1")
    message = flat(result.stderr)
    assert result.returncode == 2, message
    assert "Cannot reach the Spark master spark://127.0.0.1:1" in message and "start-master.sh" in message


def test_no_java_exits_2_naming_the_package(data: Path, tmp_path: Path) -> None:
    env = {key: value for key, value in ENV.items() if key != "JAVA_HOME"}
    env["PATH"] = os.path.dirname(TAILORED)  # the venv's scripts: python and tailored, no java
    result = run_cli("check", "--interactions", data / "interactions.csv", env=env)
    message = flat(result.stderr)
    assert result.returncode == 2, message
    assert "no `java` on PATH" in message and "openjdk-17-jre-headless" in message
