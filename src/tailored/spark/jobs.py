"""The jobs of `tailored spark ...` and of a job spec with ``engine = "spark"``: check, split, train, recommend,
evaluate and the whole run, composed from the package's modules (io, quality, split, als, model_dir, scoring,
metrics). Orchestration only: every figure comes from those modules, every output is written by `io.write_frame`
(a temporary sibling path renamed into place) or into a staged directory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pandas as pd

from tailored.config import build_dataclass
from tailored.data.columns import ITEM_ID, RANK, SCORE, TIMESTAMP, USER_ID, VALUE
from tailored.data.quality import QualityRules
from tailored.errors import ConfigError, DataError, TailoredError
from tailored.jobs.tasks import ColumnNames

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from tailored.jobs.spec import JobSpec
    from tailored.spark.als import SparkFactors
    from tailored.spark.model_dir import SparkModel

logger = logging.getLogger(__name__)

Step = Callable[[str], None]
ALS_PARAMS = ("factors", "reg", "alpha", "epochs", "seed", "weighting", "confidence_alpha", "decay_half_life_days")
"""What `--param` and a spec's ``[[algorithms]] params`` may set for ``als`` on Spark (`train_als`' keywords)."""
ALGORITHMS = ("als", "item-knn", "popularity")
"""What `tailored spark train` trains (the model directory it writes is the normal one); a job spec on Spark ranks
with factors, so only ``als`` there (`SPEC_ALGORITHMS`)."""
SPEC_ALGORITHMS = ("als",)
WEIGHTING_PARAMS = ("weighting", "confidence_alpha", "decay_half_life_days")
FACTORS_USERS, FACTORS_ITEMS, FACTORS_PARAMS = "users.parquet", "items.parquet", "params.json"
MASTER_TIMEOUT = 5.0


def open_session(master: str = "local[*]", conf: dict[str, str] | None = None) -> SparkSession:
    """`spark_session` after checking that a ``spark://`` master answers: an unreachable standalone master would
    otherwise make the driver retry for a minute before failing with a JVM trace."""
    from tailored.spark.session import spark_session

    if master.startswith("spark://"):
        _check_reachable(master)
    return spark_session(master, conf)


def _check_reachable(master: str) -> None:
    """A ConfigError unless one of the ``host:port`` of a ``spark://h1:p1,h2:p2`` URL accepts a TCP connection."""
    failures = []
    for address in master.removeprefix("spark://").split(","):
        parsed = urlsplit(f"spark://{address}")
        try:
            port = parsed.port or 7077
        except ValueError:
            raise ConfigError(f"--master {master}: {address!r} is not host:port (e.g. spark://host:7077).") from None
        try:
            socket.create_connection((parsed.hostname or "", port), timeout=MASTER_TIMEOUT).close()
            return
        except OSError as error:
            failures.append(f"{parsed.hostname}:{port} ({error.strerror or error})")
    raise ConfigError(f"Cannot reach the Spark master {master}: {', '.join(failures)}. Start it "
                      "($SPARK_HOME/sbin/start-master.sh), check the host and port (7077 by default), or run on this "
                      "machine with --master local[*].")


@contextlib.contextmanager
def spark_errors(what: str) -> Iterator[None]:
    """Spark's own errors (a path that does not exist, a column Spark cannot resolve, a failed stage) as a DataError
    naming ``what`` was being done and Spark's first line, so that the CLI exits 2 with a message, not a trace."""
    from pyspark.errors import PySparkException
    from py4j.protocol import Py4JError

    try:
        yield
    except TailoredError:
        raise
    except (PySparkException, Py4JError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"Spark failed while {what}: {first[:400]}") from error


def columns_of(columns: ColumnNames, header: list[str]) -> dict[str, str | None]:
    """`io.read_interactions` keywords for ``columns``: the value and time columns left at their default names are
    read when the file has them and skipped when it does not (as the local commands do)."""
    value = columns.value if columns.value in header or columns.value != VALUE else None
    time_column = columns.time if columns.time in header or columns.time != TIMESTAMP else None
    return {"user_col": columns.user, "item_col": columns.item, "value_col": value, "time_col": time_column}


def read(spark: SparkSession, path: str | Path, columns: ColumnNames = ColumnNames(), parse: bool = True) -> DataFrame:
    """The interactions at ``path`` (a CSV or Parquet file or folder) in the canonical columns; ``parse=False`` keeps
    value and time as read, for the quality rules to tell unparsable cells from empty ones."""
    from tailored.spark.io import read_interactions

    with spark_errors(f"reading {path}"):
        header = read_interactions(spark, str(path), user_col=columns.user, item_col=columns.item).columns
        return read_interactions(spark, str(path), **columns_of(columns, header), parse=parse)


def read_table(spark: SparkSession, path: Path, what: str, needed: tuple[str, ...]) -> DataFrame:
    """A small table (lists, user ids) as written by `io.write_frame` or by hand: CSV for a ``.csv`` file or a folder
    of CSV parts, Parquet otherwise; a missing path or column is a DataError naming it."""
    if not path.exists():
        raise DataError(f"{what} {path} does not exist.")
    parts = [path] if path.is_file() else sorted(path.glob("*.csv")) + sorted(path.glob("*.parquet"))
    csv = bool(parts) and parts[0].suffix.lower() == ".csv"
    with spark_errors(f"reading {path}"):
        frame = (spark.read.csv(str(path), header=True, inferSchema=True) if csv else spark.read.parquet(str(path)))
    missing = [name for name in needed if name not in frame.columns]
    if missing:
        raise DataError(f"{what} {path} has no column {', '.join(repr(n) for n in missing)} (columns: "
                        f"{frame.columns}); write it with those names.")
    return frame


def read_users(spark: SparkSession, path: Path, user_col: str = USER_ID) -> DataFrame:
    """The user ids of ``path`` (a ``user_col`` column) as a ``user_id`` frame."""
    from pyspark.sql import functions as F

    frame = read_table(spark, path, "--users", (user_col,))
    return frame.select(F.col(user_col).cast("string").alias(USER_ID)).distinct()


def read_lists(spark: SparkSession, path: Path) -> DataFrame:
    """Recommendation lists (``user_id, item_id, rank``[, ``score``]) written by `spark recommend` or `recommend`."""
    return read_table(spark, path, "--recommendations", (USER_ID, ITEM_ID, RANK))


def rejected_path(output: Path) -> Path:
    """Where the rejected rows of ``output`` go: ``NAME.rejected.SUFFIX`` beside it (as `tailored check`)."""
    return output.with_name(f"{output.stem}.rejected{output.suffix}")


def output_format(path: Path) -> str:
    """csv for a ``.csv`` path, parquet otherwise (a ``.parquet`` path or a folder)."""
    return "csv" if path.suffix.lower() == ".csv" else "parquet"


@dataclass
class CheckSummary:
    """Rows read, accepted and rejected, and the rejected rows per reason."""

    rows: int
    clean: int
    rejected: int
    reasons: dict[str, int]

    def to_frame(self) -> pd.DataFrame:
        rows = [{"reason": reason, "rows": count} for reason, count in sorted(self.reasons.items())]
        return pd.DataFrame(rows or [{"reason": "(none)", "rows": 0}])


def check(spark: SparkSession, interactions: Path, columns: ColumnNames, rules: QualityRules,
          output: Path | None = None) -> CheckSummary:
    """The quality rules on ``interactions``; with ``output`` the accepted rows are written there and the rejected
    ones, with their reasons, beside it (`rejected_path`)."""
    from tailored.spark.io import write_frame
    from tailored.spark.quality import check_quality

    frame = read(spark, interactions, columns, parse=False).cache()
    with spark_errors(f"checking {interactions}"):
        result = check_quality(frame, rules)
        counts = {reason: int(count) for reason, count in result.counts.items()}
        clean = result.clean.count()
        if output is not None:
            write_frame(result.clean, output, fmt=output_format(output))
            write_frame(result.rejected, rejected_path(output), fmt=output_format(output))
        total = frame.count()
    frame.unpersist()
    return CheckSummary(total, clean, total - clean, counts)


def checked(spark: SparkSession, interactions: Path, columns: ColumnNames, rules: QualityRules,
            apply_rules: bool) -> tuple[DataFrame, CheckSummary | None]:
    """The interactions after the quality rules (``apply_rules``), cached, and the summary of the check."""
    from tailored.spark.quality import check_quality

    frame = read(spark, interactions, columns, parse=not apply_rules)
    if not apply_rules:
        return frame.cache(), None
    with spark_errors(f"checking {interactions}"):
        result = check_quality(frame, rules)
        clean = result.clean.cache()
        kept, rejected = clean.count(), {reason: int(count) for reason, count in result.counts.items()}
    if kept == 0:
        raise DataError(f"The quality rules rejected every row of {interactions}: nothing to train on. "
                        f"`tailored spark check --interactions {interactions}` lists the reasons.")
    return clean, CheckSummary(kept + sum(rejected.values()), kept, sum(rejected.values()), rejected)


def part_counts(parts: dict[str, DataFrame]) -> pd.DataFrame:
    """rows, users and items of each part (one Spark job per part)."""
    from pyspark.sql import functions as F

    rows = []
    for name, frame in parts.items():
        counted = frame.agg(F.count("*"), F.countDistinct(USER_ID), F.countDistinct(ITEM_ID)).first()
        rows.append({"part": name, "rows": int(counted[0]), "users": int(counted[1]), "items": int(counted[2])})
    return pd.DataFrame(rows)


def split(spark: SparkSession, interactions: Path, output_dir: Path, method: str, settings: dict[str, Any],
          valid_fraction: float | None = None, columns: ColumnNames = ColumnNames(),
          fmt: str = "parquet") -> pd.DataFrame:
    """Split ``interactions`` into ``output_dir``/train, test[, valid] (``.parquet`` folders or ``.csv``) and
    split.json; validation is carved from training only (per_user, as `tailored split --valid-fraction`). Returns
    the counts of each part."""
    from tailored.data.io import write_text
    from tailored.spark.io import write_frame
    from tailored.spark.split import split_by_name as split_frame

    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"--format must be parquet or csv, got {fmt!r}.")
    frame = read(spark, interactions, columns)
    with spark_errors(f"splitting {interactions}"):
        train, test = split_frame(frame, method, **settings)
        parts = {"train": train.cache(), "test": test}
        if valid_fraction is not None:
            seed = settings.get("seed")
            parts["train"], parts["valid"] = split_frame(train, "per_user", test_fraction=valid_fraction,
                                                         seed=42 if seed is None else seed)
        output_dir.mkdir(parents=True, exist_ok=True)
        for name, part in parts.items():
            write_frame(part, output_dir / f"{name}.{fmt}", fmt=fmt)
        table = part_counts({name: spark.read.parquet(str(output_dir / f"{name}.{fmt}")) if fmt == "parquet"
                             else part for name, part in parts.items()})
    given = {key: value for key, value in settings.items() if value is not None}
    write_text(json.dumps({"method": method, "params": given, "valid_fraction": valid_fraction, "source":
                           str(interactions), "counts": table.set_index("part").to_dict("index")}, indent=2),
               output_dir / "split.json")
    return table


def als_params(params: dict[str, Any], where: str = "--param") -> dict[str, Any]:
    """`train_als` keywords from ``--param`` strings or a spec's params (numbers parsed), unknown names refused."""
    unknown = sorted(set(params) - set(ALS_PARAMS))
    if unknown:
        raise ConfigError(f"{where}: {unknown} not understood by ALS on Spark; valid: {', '.join(ALS_PARAMS)}.")
    parsed: dict[str, Any] = {}
    for name, value in params.items():
        if name == "weighting" or value is None or not isinstance(value, str):
            parsed[name] = value
            continue
        try:
            parsed[name] = int(value) if name in ("factors", "epochs", "seed") else float(value)
        except ValueError:
            raise ConfigError(f"{where} {name}={value!r} is not a number.") from None
    return parsed


def _scorer_params(algorithm: str, params: dict[str, Any], where: str) -> dict[str, Any]:
    """Typed keywords of ``algorithm``'s trainer: the local scorer's hyperparameters (strings converted as `tailored
    train` converts them) and the weighting settings, unknown names refused."""
    from tailored.models.base import create_scorer, params_of

    weighting = {name: params[name] for name in WEIGHTING_PARAMS if name in params}
    for name in ("confidence_alpha", "decay_half_life_days"):
        if isinstance(weighting.get(name), str):
            weighting |= als_params({name: weighting[name]}, where)
    given = {name: value for name, value in params.items() if name not in WEIGHTING_PARAMS}
    allowed = {"popularity": ("half_life_days",)}.get(algorithm)
    try:
        if allowed is not None:  # popularity on Spark takes its half-life only
            unknown = sorted(set(given) - set(allowed))
            if unknown:
                raise ConfigError(f"{unknown} not understood by {algorithm} on Spark; valid: "
                                  f"{', '.join((*allowed, *WEIGHTING_PARAMS))}.")
            return weighting | {name: None if value in (None, "none") else float(value)
                                for name, value in given.items()}
        scorer = create_scorer(algorithm, given)
    except (ConfigError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from None
    return weighting | {name: value for name, value in params_of(scorer).items() if name in given}


def algorithm_params(algorithm: str, params: dict[str, Any], where: str = "--param") -> dict[str, Any]:
    """The training keywords of ``algorithm`` on Spark from ``params``; a ConfigError for an algorithm Spark does
    not train or a parameter it does not take (checked before any data is read)."""
    if algorithm not in ALGORITHMS:
        raise ConfigError(f"Algorithm {algorithm!r} does not run on Spark; valid: {', '.join(ALGORITHMS)} (train the "
                          "others with `tailored train` on one machine).")
    return als_params(params, where) if algorithm == "als" else _scorer_params(algorithm, params, where)


def train(spark: SparkSession, frame: DataFrame, algorithm: str, params: dict[str, Any],
          where: str = "--param") -> SparkModel:
    """The model ``algorithm`` trained on ``frame``: `train_als`' factors, `train_item_knn`'s neighbours or
    `train_popularity`'s scores (`tailored train` runs the other algorithms on one machine)."""
    from tailored.spark.als import train_als
    from tailored.spark.neighbours import train_item_knn
    from tailored.spark.popularity import train_popularity

    keywords = algorithm_params(algorithm, params, where)
    trainer = {"als": train_als, "item-knn": train_item_knn, "popularity": train_popularity}[algorithm]
    with spark_errors(f"training {algorithm}"):
        return trainer(frame, **keywords)


def save_factors(factors: SparkFactors, directory: Path) -> Path:
    """The factors as Parquet (``users.parquet``, ``items.parquet``) and their parameters (``params.json``), written
    into a staged directory that replaces ``directory`` only when complete: the input of `recommend
    --factors-dir` at any scale (the user factors never reach the driver)."""
    from tailored.config import json_safe
    from tailored.data.io import staged_directory
    from tailored.spark.io import write_frame

    with staged_directory(directory) as staging:
        write_frame(factors.users, staging / FACTORS_USERS)
        write_frame(factors.items, staging / FACTORS_ITEMS)
        (staging / FACTORS_PARAMS).write_text(json.dumps(json_safe(factors.params), indent=2))
    return directory


def load_factors(spark: SparkSession, directory: Path) -> tuple[DataFrame, DataFrame]:
    """(users, items) factor frames written by `save_factors`."""
    missing = [name for name in (FACTORS_USERS, FACTORS_ITEMS) if not (directory / name).exists()]
    if missing:
        raise DataError(f"{directory} has no {', '.join(missing)}: it is not a factors directory written by "
                        "`tailored spark train --factors-dir`.")
    return spark.read.parquet(str(directory / FACTORS_USERS)), spark.read.parquet(str(directory / FACTORS_ITEMS))


def factors_from_model(spark: SparkSession, model_dir: Path) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(users, items, seen) frames of a model directory whose scorer keeps factors (``als``, ``mf``, ``bpr``...):
    read on the driver, fine up to a few million users; beyond, train with ``--factors-dir`` and recommend from it."""
    import numpy as np

    from tailored.registry.model_dir import load_model
    from tailored.spark.als import FACTORS

    model = load_model(model_dir)
    scorer = model.scorer
    if not (getattr(scorer, "inner_product", False) and hasattr(scorer, "user_factors_")):
        raise ConfigError(f"{model_dir} holds a {scorer.algorithm} model: Spark scores factor models (als, ...); "
                          "recommend from it with `tailored recommend --model-dir`.")
    users = pd.DataFrame({USER_ID: model.users_.external_ids.astype(str),
                          FACTORS: list(np.asarray(scorer.user_factors_, np.float32))})
    items = pd.DataFrame({ITEM_ID: model.items_.external_ids.astype(str),
                          FACTORS: list(np.asarray(scorer.item_factors_, np.float32))})
    seen = model.seen_.tocoo()
    pairs = pd.DataFrame({USER_ID: model.users_.external_ids.astype(str)[seen.row],
                          ITEM_ID: model.items_.external_ids.astype(str)[seen.col]})
    schema = f"{USER_ID} string, {ITEM_ID} string"
    return (spark.createDataFrame(users, f"{USER_ID} string, {FACTORS} array<float>"),
            spark.createDataFrame(items, f"{ITEM_ID} string, {FACTORS} array<float>"),
            spark.createDataFrame(pairs, schema) if len(pairs) else spark.createDataFrame([], schema))


def recommend(users: DataFrame, items: DataFrame, seen: DataFrame | None, k: int,
              wanted: DataFrame | None = None) -> DataFrame:
    """Top-``k`` lists (``user_id, item_id, rank, score``) of every user in ``users`` (only those of ``wanted``, a
    frame with a ``user_id`` column, when given), the ``seen`` pairs excluded."""
    from tailored.spark.scoring import recommend_all

    if wanted is not None:
        users = users.join(wanted.select(USER_ID).distinct(), USER_ID, "left_semi")
    with spark_errors("scoring"):
        return recommend_all(users, items, seen.select(USER_ID, ITEM_ID) if seen is not None else None, k=k)


def evaluate(recommendations: DataFrame, test: DataFrame, train: DataFrame | None,
             metrics: list[str]) -> dict[str, float]:
    """The engine's metrics of ``recommendations`` against ``test`` (`spark.metrics.evaluate`; coverage and Gini
    over the training items of ``train``)."""
    from tailored.spark.metrics import evaluate as spark_evaluate

    with spark_errors("evaluating"):
        return spark_evaluate(recommendations, test, metrics, train=train)


@dataclass
class SparkJobResult:
    """What a job spec run on Spark produced: the quality counts, the split's counts, each algorithm's metrics and
    fit time, the best one (refitted on all rows and saved to ``output / "model"``) and a few users' lists."""

    quality: CheckSummary
    split: pd.DataFrame
    metrics: dict[str, dict[str, float]]
    fit_seconds: dict[str, float]
    best: str
    recommendations: pd.DataFrame
    output: Path
    steps: dict[str, float] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """One row per algorithm: every metric and the fit time (as `JobResult.summary`)."""
        return pd.DataFrame([{"algorithm": name, **values, "fit_s": self.fit_seconds[name]}
                             for name, values in self.metrics.items()])


def run_spark_job(spec: JobSpec, step: Step = lambda message: None, master: str | None = None,
                  conf: dict[str, str] | None = None) -> SparkJobResult:
    """Run a job spec on Spark into ``spec.output``, replaced only when the whole job succeeds: check -> scope ->
    split -> train and evaluate each algorithm -> refit the best on every row -> model directory (the normal format),
    rejected rows, split counts, metrics, report. The session: ``master``/``conf``, else the spec's ``[job] spark``
    table (``master``, ``conf``), else local[*]."""
    from tailored.data.io import staged_directory

    for number, algorithm in enumerate(spec.algorithms, start=1):  # before any data is read
        if algorithm.name not in SPEC_ALGORITHMS:
            raise ConfigError(f"[[algorithms]] number {number}: '{algorithm.name}' does not run in a job spec on "
                              f"Spark; valid: {', '.join(SPEC_ALGORITHMS)} (`tailored spark train --algorithm` also "
                              f"trains {', '.join(a for a in ALGORITHMS if a not in SPEC_ALGORITHMS)}).")
        algorithm_params(algorithm.name, _algorithm_params(algorithm.params),
                         f"[[algorithms]] number {number} ('{algorithm.name}') params")
    settings = dict(spec.spark)
    unknown = sorted(set(settings) - {"master", "conf"})
    if unknown:
        raise ConfigError(f"[job] spark: unknown key(s) {unknown}; valid: master, conf.")
    session = open_session(master or settings.get("master", "local[*]"),
                           {**{k: str(v) for k, v in (settings.get("conf") or {}).items()}, **(conf or {})})
    output = (Path(spec.base_dir) / spec.output).resolve()
    with staged_directory(output) as staging:
        result = _run_into(session, spec, staging, step)
    result.output = output
    return result


def _run_into(spark: SparkSession, spec: JobSpec, output: Path, step: Step) -> SparkJobResult:
    from tailored.data.io import write_table
    from tailored.jobs.spec import dump_spec, resolve
    from tailored.spark.io import write_frame
    from tailored.spark.model_dir import write_model_dir
    from tailored.spark.quality import check_quality

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = time.perf_counter() - clock
        clock = time.perf_counter()

    step("reading data")
    raw = _spec_data(spark, spec)
    step("checking quality")
    rules = build_dataclass(QualityRules, spec.quality, "quality")
    with spark_errors("checking quality"):
        result = check_quality(raw, rules)
        clean = _scope(result.clean, spec).cache()
        write_frame(result.rejected, output / "rejected.csv", fmt="csv")
        kept, rejected = clean.count(), {reason: int(count) for reason, count in result.counts.items()}
    if kept == 0:
        raise DataError("No interactions are left after the quality rules and the scope filters; loosen them.")
    quality = CheckSummary(kept + sum(rejected.values()), kept, sum(rejected.values()), rejected)
    lap("check")
    step(f"splitting {kept:,} interactions ({spec.split.method})")
    settings = {key: value for key, value in vars(spec.split).items() if key != "method"}
    with spark_errors("splitting"):
        from tailored.spark.split import split_by_name as split_frame

        train_part, test_part = split_frame(clean, spec.split.method, strict=False, **settings)
        train_part, test_part = train_part.cache(), test_part.cache()
        counts = part_counts({"train": train_part, "test": test_part})
    lap("split")
    k = max([spec.k, *(int(name.split("@")[1]) for name in spec.metrics if "@" in name)])
    metrics, fit_seconds = {}, {}
    labels = _labels([algorithm.name for algorithm in spec.algorithms])
    for number, (label, algorithm) in enumerate(zip(labels, spec.algorithms), start=1):
        step(f"training and evaluating {label} ({number} of {len(spec.algorithms)})")
        where = f"[[algorithms]] number {number} ('{algorithm.name}') params"
        start = time.perf_counter()
        factors = train(spark, train_part, algorithm.name, _algorithm_params(algorithm.params), where)
        factors.users.cache().count()
        fit_seconds[label] = time.perf_counter() - start
        seen = train_part if spec.evaluate.exclude_seen else None
        lists = recommend(factors.users, factors.items, seen, k, wanted=test_part)
        metrics[label] = evaluate(lists, test_part, train_part, list(spec.metrics))
        factors.users.unpersist()
    lap("train and evaluate")
    if spec.select_by not in next(iter(metrics.values())):
        raise ConfigError(f"[job] select_by = '{spec.select_by}' is not one of the job's metrics; pick one.")
    best = max(metrics, key=lambda name: metrics[name][spec.select_by])
    step(f"refitting {best} on all {kept:,} interactions and saving it")
    chosen = spec.algorithms[labels.index(best)]
    factors = train(spark, clean, chosen.name, _algorithm_params(chosen.params), "[[algorithms]] params")
    with spark_errors("writing the model directory"):
        write_model_dir(factors, clean, output / "model")
    lap("refit and save")
    step(f"writing sample recommendations for {spec.show_users} users and the report")
    sample_users = clean.select(USER_ID).distinct().orderBy(USER_ID).limit(spec.show_users)
    seen = clean if spec.evaluate.exclude_seen else None
    sample = (recommend(factors.users, factors.items, seen, spec.k, wanted=sample_users)
              .orderBy(USER_ID, RANK).toPandas()[[USER_ID, ITEM_ID, SCORE, RANK]])
    write_table(sample, output / "recommendations.csv")
    counts.to_csv(output / "split.csv", index=False)
    job = SparkJobResult(quality, counts, metrics, fit_seconds, best, sample, output, timings)
    job.summary().to_csv(output / "metrics.csv", index=False)
    (output / "job.toml").write_text(dump_spec(spec))
    (output / "report.md").write_text(_report(job, spec, str(resolve(spec, spec.data.interactions) or "synthetic")))
    lap("report")
    return job


def _labels(names: list[str]) -> list[str]:
    """The algorithms' names, numbered (``als #2``) where a name comes more than once (two parameter sets)."""
    return [name if names.count(name) == 1 else f"{name} #{names[:position + 1].count(name)}"
            for position, name in enumerate(names)]


def _algorithm_params(params: dict[str, Any]) -> dict[str, Any]:
    """A spec's algorithm params without the Recommender settings that have no meaning on Spark (exclude_seen is the
    job's ``[evaluate]``)."""
    return {key: value for key, value in params.items() if key != "exclude_seen"}


def _spec_data(spark: SparkSession, spec: JobSpec) -> DataFrame:
    """The spec's interactions as a DataFrame: its file or folder, or its synthetic retail data (generated on the
    driver: that generator is small by design)."""
    from tailored.jobs.spec import resolve

    data = spec.data
    if data.synthetic is not None:
        from tailored.data.synthetic import generate_retail

        frame = generate_retail(**data.synthetic).interactions
        return spark.createDataFrame(frame.astype({USER_ID: str, ITEM_ID: str}))
    columns = ColumnNames(user=data.user_col, item=data.item_col, value=data.value_col, time=data.time_col)
    frame = read(spark, resolve(spec, data.interactions), columns, parse=False)
    if data.event_col != "event_type" and data.event_col in frame.columns:
        frame = frame.withColumnRenamed(data.event_col, "event_type")
    return frame


def _scope(clean: DataFrame, spec: JobSpec) -> DataFrame:
    """The spec's scope on Spark: event types weighted (others dropped), the history window, the k-core."""
    from pyspark.sql import functions as F

    data = spec.data
    if data.event_weights:
        if "event_type" not in clean.columns:
            raise DataError("[data] event_weights is set but the interactions have no 'event_type' column.")
        weights = F.create_map(*[item for pair in data.event_weights.items() for item in (F.lit(pair[0]),
                                                                                          F.lit(float(pair[1])))])
        weight = weights[F.col("event_type")]
        value = F.col(VALUE) if VALUE in clean.columns else F.lit(1.0)
        clean = clean.where(weight.isNotNull()).withColumn(VALUE, value * weight)
    if data.history_days is not None or data.min_user_interactions > 1 or data.min_item_interactions > 1:
        from tailored.spark import quality

        if data.history_days is not None:
            clean = quality.history_window(clean, days=data.history_days)
        if data.min_user_interactions > 1 or data.min_item_interactions > 1:
            clean = quality.k_core(clean, data.min_user_interactions, data.min_item_interactions)
    return clean


def _report(job: SparkJobResult, spec: JobSpec, source: str) -> str:
    """report.md: quality, split, metrics per algorithm, the best, sample lists."""
    lines = [f"# Job report (Spark): {Path(spec.output).name}", "", f"Source: {source}", "", "## Quality", "",
             f"{job.quality.rows:,} rows read, {job.quality.clean:,} accepted, {job.quality.rejected:,} rejected "
             "(with their reasons in rejected.csv)", ""]
    lines += [f"- {reason}: {count:,}" for reason, count in sorted(job.quality.reasons.items())]
    lines += ["", f"## Split ({spec.split.method})", "", _markdown(job.split), "",
              "## Metrics (test split)", "", _markdown(job.summary()), "",
              f"Best by {spec.select_by}: **{job.best}**, refitted on all data and saved to `model/` (the normal "
              "model directory: `tailored recommend --model-dir` reads it).", "",
              "## Seconds per step", "", *[f"- {name}: {seconds:.1f}" for name, seconds in job.steps.items()], "",
              "## Sample recommendations", "", "```", job.recommendations.to_string(index=False), "```"]
    return "\n".join(lines) + "\n"


def _markdown(frame: pd.DataFrame) -> str:
    """A pipe table of ``frame`` (floats to 4 decimals)."""
    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)
