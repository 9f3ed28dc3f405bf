"""`tailored benchmark spark`: the Spark path's figures.

* same answers: MLlib ALS trained on Spark, written as a normal model directory and ranked by the normal
  `recommend`, against the local ``als`` at the same parameters on MovieLens 100K P1 (NDCG@10 of both, evaluated by
  the local evaluator).
* scale: interactions generated in Spark (`spark.generate`), written to Parquet, then quality check, split, ALS and
  top-k for every user written to Parquet, each stage timed, with the driver's peak memory (the Python process' RSS
  and the JVM's heap in use, sampled every 0.2 s; in local mode the driver JVM also runs the executors' tasks).
* side by side: the same Parquet data through the single-machine path (pandas check, split, ``implicit`` ALS,
  chunked top-k to Parquet), stage by stage.
Figures only: nothing here asserts on time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tailored.data.columns import USER_ID

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Say = Callable[[str], None]
P1_PARAMS = {"factors": 128, "reg": 10.0, "alpha": 1.0, "epochs": 15, "seed": 0}
"""The local ``als`` defaults: the parameters both sides of the same-answers comparison use."""
P1_SCHEMA = "user_id string, item_id string, value double, timestamp long"
"""The columns of the ml-100k-splits files."""
SAMPLE_SECONDS = 0.2
GIB = 1024.0**3


@dataclass
class MemoryPeaks:
    """Peak memory seen while sampling: this Python process' RSS and the JVM heap in use (bytes)."""

    python_rss: int = 0
    jvm_heap_used: int = 0
    samples: int = 0

    def figures(self) -> dict[str, float]:
        return {"driver python RSS peak (GiB)": self.python_rss / GIB,
                "driver JVM heap used peak (GiB)": self.jvm_heap_used / GIB,
                "driver peak, python + JVM heap (GiB)": (self.python_rss + self.jvm_heap_used) / GIB}


@contextlib.contextmanager
def sampling_memory(spark: SparkSession | None) -> Iterator[MemoryPeaks]:
    """Sample the driver's memory in a thread while the block runs (the JVM's only when ``spark`` is given)."""
    import psutil

    peaks, done = MemoryPeaks(), threading.Event()
    process = psutil.Process(os.getpid())
    runtime = spark.sparkContext._jvm.java.lang.Runtime.getRuntime() if spark is not None else None

    def sample() -> None:
        while True:
            peaks.python_rss = max(peaks.python_rss, process.memory_info().rss)
            if runtime is not None:
                with contextlib.suppress(Exception):  # the gateway may be busy closing
                    peaks.jvm_heap_used = max(peaks.jvm_heap_used, runtime.totalMemory() - runtime.freeMemory())
            peaks.samples += 1
            if done.wait(SAMPLE_SECONDS):
                return

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        done.set()
        thread.join()


@dataclass
class Stages:
    """Stage name -> seconds and rows, timed one after the other."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    say: Say = lambda text: None

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[dict[str, Any]]:
        """Time the block; it may set ``row["rows"]`` (what the stage produced)."""
        row: dict[str, Any] = {"stage": name, "rows": None}
        start = time.perf_counter()
        yield row
        row["seconds"] = round(time.perf_counter() - start, 2)
        self.rows.append(row)
        rows = "" if row["rows"] is None else f", {row['rows']:,} rows"
        self.say(f"{name}: {row['seconds']:.1f} s{rows}")

    def frame(self) -> pd.DataFrame:
        table = pd.DataFrame(self.rows, columns=["stage", "seconds", "rows"])
        total = pd.DataFrame([{"stage": "total", "seconds": round(table["seconds"].sum(), 2), "rows": None}])
        return pd.concat([table, total], ignore_index=True)


def same_answers(spark: SparkSession, splits_dir: Path, params: dict[str, Any] | None = None,
                 say: Say = lambda text: None) -> pd.DataFrame:
    """NDCG@10 (and recall@10, HR@10) on P1 of MovieLens 100K: ALS trained on Spark and saved as a model directory,
    ranked by the normal `recommend`, beside the local ``als`` at the same parameters; both lists evaluated by the
    local evaluator against P1.test."""
    import tempfile

    from tailored.jobs.evaluate import evaluate_files
    from tailored.jobs.tasks import load_dataset, read_valid, recommend
    from tailored.pipeline.recommender import build_recommender
    from tailored.registry.model_dir import load_model
    from tailored.spark.als import train_als
    from tailored.spark.model_dir import write_model_dir

    params = {**P1_PARAMS, **(params or {})}
    train_path, test_path = splits_dir / "P1.train.csv", splits_dir / "P1.test.csv"
    metrics = ["ndcg@10", "recall@10", "hr@10"]
    test_users = pd.unique(read_valid(test_path)[USER_ID])
    rows = []
    start = time.perf_counter()
    train = spark.read.csv(str(train_path), header=True, schema=P1_SCHEMA).cache()
    factors = train_als(train, **params)
    with tempfile.TemporaryDirectory(prefix="tailored-p1-") as folder:
        write_model_dir(factors, train, Path(folder) / "model")
        model = load_model(Path(folder) / "model")
        lists = recommend(model, test_users, 10)
    report = evaluate_files(test_path, lists, train_path, metrics, bootstrap=0)
    rows.append({"model": "als on Spark (MLlib) -> model dir -> recommend", **_values(report),
                 "seconds": round(time.perf_counter() - start, 2)})
    say(f"spark: ndcg@10 {rows[-1]['ndcg@10']:.4f}")
    start = time.perf_counter()
    local = build_recommender("als", params).fit(load_dataset(train_path))
    report = evaluate_files(test_path, recommend(local, test_users, 10), train_path, metrics, bootstrap=0)
    rows.append({"model": "als on one machine (implicit)", **_values(report),
                 "seconds": round(time.perf_counter() - start, 2)})
    say(f"local: ndcg@10 {rows[-1]['ndcg@10']:.4f}")
    table = pd.DataFrame(rows)
    table.attrs["ndcg_difference"] = float(table["ndcg@10"].iloc[0] - table["ndcg@10"].iloc[1])
    table.attrs["params"] = params
    return table


def _values(report: Any) -> dict[str, float]:
    frame = report.to_frame().set_index("metric")["value"]
    return {name: float(value) for name, value in frame.items()}


def generate_parquet(spark: SparkSession, users: int, items: int, interactions: int, path: Path,
                     seed: int = 0) -> int:
    """Generate the interactions in Spark and write them as a Parquet folder at ``path`` (the benchmark's scratch
    data, overwritten); returns the row count."""
    from tailored.spark.generate import generate_interactions

    generate_interactions(spark, users, items, interactions, seed).write.mode("overwrite").parquet(str(path))
    return interactions


def spark_pipeline(spark: SparkSession, source: Path, output: Path, factors: int = 64, epochs: int = 10,
                   k: int = 10, split_method: str = "per_user", say: Say = lambda text: None
                   ) -> tuple[pd.DataFrame, MemoryPeaks]:
    """check -> split -> ALS -> top-``k`` for every user (Parquet at ``output``) on Spark, each stage run to the end
    (counted or written) before the next starts; the stage table and the driver's memory peaks."""
    from tailored.data.quality import QualityRules
    from tailored.spark.als import train_als
    from tailored.spark.io import write_frame
    from tailored.spark.quality import check_quality
    from tailored.spark.scoring import recommend_all
    from tailored.spark.split import split_by_name

    stages = Stages(say=say)
    with sampling_memory(spark) as peaks:
        with stages.stage("check (quality rules)") as row:
            frame = spark.read.parquet(str(source))
            clean = check_quality(frame, QualityRules()).clean.cache()
            row["rows"] = clean.count()
        with stages.stage(f"split ({split_method})") as row:
            train, test = split_by_name(clean, split_method, seed=42)
            train = train.cache()
            row["rows"] = train.count()
            clean.unpersist()
        with stages.stage(f"ALS ({epochs} iterations, {factors} factors)") as row:
            model = train_als(train, factors=factors, epochs=epochs)
            users = model.users.cache()
            row["rows"] = users.count()
        with stages.stage(f"top-{k} for every user -> Parquet") as row:
            write_frame(recommend_all(users, model.items, train.select(USER_ID, "item_id"), k=k), output)
            row["rows"] = spark.read.parquet(str(output)).count()
    return stages.frame(), peaks


def local_pipeline(source: Path, output: Path, factors: int = 64, epochs: int = 10, k: int = 10,
                   split_method: str = "per_user", say: Say = lambda text: None) -> tuple[pd.DataFrame, MemoryPeaks]:
    """The same stages on one machine: pandas read + `check_quality`, `split_by_name`, the local ``als``
    (``implicit``), chunked top-``k`` for every user to one Parquet file."""
    from tailored.data.dataset import Dataset
    from tailored.data.io import write_chunks
    from tailored.data.quality import QualityRules, check_quality
    from tailored.jobs.batch import batch_lists
    from tailored.pipeline.recommender import build_recommender
    from tailored.split import split_by_name

    stages = Stages(say=say)
    with sampling_memory(None) as peaks:
        with stages.stage("check (quality rules)") as row:
            clean = check_quality(pd.read_parquet(source), QualityRules()).clean
            row["rows"] = len(clean)
        with stages.stage(f"split ({split_method})") as row:
            train = split_by_name(Dataset.from_frame(clean), split_method, seed=42).train
            del clean
            row["rows"] = len(train)
        with stages.stage(f"ALS ({epochs} iterations, {factors} factors)") as row:
            model = build_recommender("als", {"factors": factors, "epochs": epochs}).fit(train)
            row["rows"] = len(model.users_)
        with stages.stage(f"top-{k} for every user -> Parquet") as row:
            row["rows"] = write_chunks(batch_lists(model, None, k, chunk_users=20_000), output)
    return stages.frame(), peaks


def side_by_side(spark: SparkSession, users: int, items: int, interactions: int, work_dir: Path,
                 factors: int = 64, epochs: int = 10, k: int = 10, split_method: str = "per_user",
                 local: bool = True, seed: int = 0, say: Say = lambda text: None) -> dict[str, Any]:
    """Generate ``interactions`` rows once (Parquet in ``work_dir``), then the Spark pipeline and (``local``) the
    single-machine one on them. Returns the tables, the memory peaks and the generation time (None: the data of an
    earlier run was reused)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    source = work_dir / f"generated-{users}x{items}x{interactions}-{seed}.parquet"
    generated = None
    if not source.exists():
        say(f"generating {interactions:,} interactions ({users:,} users x {items:,} items) into {source}")
        start = time.perf_counter()
        generate_parquet(spark, users, items, interactions, source, seed)
        generated = time.perf_counter() - start
    say("Spark pipeline")
    spark_table, spark_peaks = spark_pipeline(spark, source, work_dir / "spark-top.parquet", factors, epochs, k,
                                              split_method, say)
    result: dict[str, Any] = {"generate_seconds": generated, "spark": spark_table, "spark_memory": spark_peaks}
    if local:
        say("single-machine pipeline")
        shutil.rmtree(work_dir / "local-top.parquet", ignore_errors=True)
        local_table, local_peaks = local_pipeline(source, work_dir / "local-top.parquet", factors, epochs, k,
                                                  split_method, say)
        result |= {"local": local_table, "local_memory": local_peaks}
    return result


def compare(spark_table: pd.DataFrame, local_table: pd.DataFrame) -> pd.DataFrame:
    """Per stage: Spark seconds, local seconds and their ratio."""
    merged = spark_table[["stage", "seconds"]].merge(local_table[["stage", "seconds"]], on="stage",
                                                     suffixes=(" spark", " local"))
    merged["spark / local"] = np.round(merged["seconds spark"] / merged["seconds local"], 2)
    return merged
