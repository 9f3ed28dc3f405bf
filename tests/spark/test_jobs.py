"""A job spec run on Spark (`run_spark_job`; `tailored run` with ``engine = "spark"``): the output folder holds the
normal model directory, the rejected rows, the split's counts, the metrics and the report; the quality and split
counts are those of the local engine on the same file; a bad spec stops before any data is read and nothing is left
at the output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tailored.cli import app
from tailored.data.dataset import Dataset
from tailored.data.quality import check_quality
from tailored.errors import ConfigError
from tailored.jobs.spec import load_spec
from tailored.jobs.tasks import read_raw_interactions
from tailored.registry.model_dir import load_model
from tailored.spark.jobs import run_spark_job
from tailored.split import split_by_name
from tests.cli.helpers import flat

SPEC = """
[job]
engine = "spark"
spark = {master = "local[2]", conf = {"spark.sql.shuffle.partitions" = "4"}}
output = "runs/job"
metrics = ["ndcg@5", "recall@5", "coverage@5"]
select_by = "ndcg@5"
k = 5
show_users = 2

[data]
interactions = "interactions.csv"

[split]
method = "per_user"
seed = 7

[[algorithms]]
name = "als"
params = {factors = 4, epochs = 3, reg = 0.5, seed = 1}
"""


def write_data(folder: Path) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({"user_id": [f"u{u:02d}" for u in rng.integers(0, 30, 500)],
                          "item_id": [f"i{i:02d}" for i in rng.zipf(1.5, 500) % 20],
                          "value": 1.0, "timestamp": 1_700_000_000 + rng.integers(0, 30 * 86_400, 500)})
    frame = frame.drop_duplicates(["user_id", "item_id"], ignore_index=True)
    bad = pd.concat([frame, frame.iloc[:2]], ignore_index=True)  # two repeated rows for the quality rules
    bad.to_csv(folder / "interactions.csv", index=False)
    return frame


@pytest.fixture(scope="module")
def job(spark, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`tailored run` on the spec, which says engine = "spark" (one run serves every test: each Spark job costs a
    second or more)."""
    folder = tmp_path_factory.mktemp("spark-job")
    write_data(folder)
    (folder / "job.toml").write_text(SPEC)
    result = CliRunner().invoke(app, ["run", str(folder / "job.toml")], env={"COLUMNS": "300", "NO_COLOR": "1"})
    output = flat(result.output)
    assert result.exit_code == 0, output
    return folder, output


def test_the_output_folder_holds_the_model_and_the_report(job) -> None:
    folder, printed = job
    output = folder / "runs" / "job"
    assert "test metrics (Spark)" in printed and f"saved model to {output.resolve() / 'model'}" in printed
    for name in ("report.md", "metrics.csv", "split.csv", "recommendations.csv", "job.toml", "rejected.csv"):
        assert (output / name).exists(), name
    metrics = pd.read_csv(output / "metrics.csv").set_index("algorithm")
    assert metrics.index.tolist() == ["als"] and 0 < metrics.loc["als", "ndcg@5"] <= 1
    assert {"recall@5", "coverage@5", "fit_s"} <= set(metrics.columns)
    model = load_model(output / "model")
    assert model.scorer.algorithm == "als" and model.scorer.factors == 4
    lists = pd.read_csv(output / "recommendations.csv", dtype={"user_id": str, "item_id": str})
    assert lists["user_id"].nunique() == 2 and lists.groupby("user_id").size().max() == 5
    assert set(lists["user_id"]) <= set(model.users_.external_ids)
    report = (output / "report.md").read_text()
    assert "Best by ndcg@5: **als**" in report and "duplicate" in report.lower()
    assert not list(output.parent.glob(".job.*"))  # nothing staged left beside the output


def test_quality_and_split_counts_are_the_local_engines(job) -> None:
    folder, _ = job
    local = check_quality(read_raw_interactions(folder / "interactions.csv"))
    assert len(local.rejected) == 2
    report = (folder / "runs" / "job" / "report.md").read_text()
    assert (f"{len(local.clean) + 2:,} rows read, {len(local.clean):,} accepted, 2 rejected") in report
    split = split_by_name(Dataset.from_frame(local.clean), "per_user", seed=7)
    counts = pd.read_csv(folder / "runs" / "job" / "split.csv").set_index("part")["rows"]
    assert (counts["train"], counts["test"]) == (len(split.train), len(split.test))


def test_a_bad_spec_stops_before_reading_and_writes_nothing(spark, tmp_path: Path) -> None:
    write_data(tmp_path)
    (tmp_path / "job.toml").write_text(SPEC)
    spec = load_spec(tmp_path / "job.toml")
    spec.algorithms[0].name, spec.algorithms[0].params = "ease", {}
    with pytest.raises(ConfigError, match="'ease' does not run in a job spec on Spark; valid: als"):
        run_spark_job(spec, master="local[2]")
    spec.algorithms[0].name, spec.algorithms[0].params = "als", {"factor": 3}
    with pytest.raises(ConfigError, match=r"\['factor'\] not understood"):
        run_spark_job(spec, master="local[2]")
    spec.algorithms[0].params = {}
    spec.spark = {"master": "spark://127.0.0.1:1"}
    with pytest.raises(ConfigError, match="Cannot reach the Spark master"):
        run_spark_job(spec)
    assert not (tmp_path / "runs").exists()


def test_an_unknown_engine_is_refused_and_the_local_runner_leaves_spark_specs_alone(tmp_path: Path) -> None:
    from tailored.jobs.run import run_job

    write_data(tmp_path)
    (tmp_path / "job.toml").write_text(SPEC.replace('engine = "spark"', 'engine = "dask"'))
    with pytest.raises(ConfigError, match="engine = 'dask' is unknown; valid: local, spark"):
        load_spec(tmp_path / "job.toml")
    (tmp_path / "job.toml").write_text(SPEC)
    with pytest.raises(ConfigError, match="engine = 'spark': run it with `tailored run SPEC`"):
        run_job(load_spec(tmp_path / "job.toml"))
    assert not (tmp_path / "runs").exists()
