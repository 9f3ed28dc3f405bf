"""`tailored spark ...`: the local commands' pipeline on Spark (check, split, train, recommend, evaluate, run) with
their flags plus ``--master`` and ``--conf``. The work happens in `tailored.spark.jobs`; every error (bad input, no
Java, a master that cannot be reached, a Spark failure) exits 2 with its message."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tailored.cli import options
from tailored.cli.common import (console, exactly_one, handle_errors, parse_params, print_table, refuse_overwrite,
                                 say, show_tuning, step_reporter, stdout, trial_reporter)
from tailored.cli.options import (FixedParams, ItemCol, RuleOption, TimeCol, TuneTimeout, UserCol,
                                  ValidationMethod, ValueCol)
from tailored.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from tailored.jobs.spec import JobSpec
    from tailored.jobs.tasks import ColumnNames
    from tailored.spark.jobs import SparkJobResult

app = typer.Typer(help="The pipeline on Spark DataFrames (the `spark` extra): check, split, train, tune, recommend, "
                       "evaluate, run. --master local[*] (default), spark://host:7077, yarn or k8s://https://host:443.",
                  no_args_is_help=True)

Master = Annotated[str, typer.Option(
    "--master", help="Spark master: local[*] (this machine), spark://host:7077, yarn, k8s://https://host:443.")]
Conf = Annotated[list[str] | None, typer.Option(
    "--conf", help="Spark setting KEY=VALUE (repeatable), e.g. spark.executor.memory=8g.")]
Data = Annotated[Path, typer.Option(
    "--interactions", help="Interactions: a CSV or Parquet file, or a folder of Parquet (or CSV) parts.")]
Format = Annotated[str, typer.Option("--format", help="Output format: parquet (folders of parts) or csv.")]


def _session(master: str, conf: list[str] | None) -> SparkSession:
    from tailored.spark.jobs import open_session
    from tailored.spark.session import parse_conf

    with step_reporter(f"starting Spark on {master}") as step:
        step("session")
        return open_session(master, parse_conf(conf or []))


def _columns(user_col: str, item_col: str, value_col: str, time_col: str) -> ColumnNames:
    from tailored.jobs.tasks import ColumnNames

    return ColumnNames(user=user_col, item=item_col, value=value_col, time=time_col)


@app.command()
@handle_errors
def check(
    interactions: Data,
    output: Annotated[Path | None, typer.Option(
        "--output", help="Write the accepted rows here (.parquet folder or .csv); rejected rows, with their "
                         "reasons, go beside it (NAME.rejected.SUFFIX).")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write the counts as JSON.")] = None,
    rule: RuleOption = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    value_col: ValueCol = "value",
    time_col: TimeCol = "timestamp",
    strict: Annotated[bool, typer.Option("--strict", help="Exit with code 2 when any row is rejected.")] = False,
    master: Master = "local[*]",
    conf: Conf = None,
) -> None:
    """The quality rules of `tailored check` (missing, duplicate, invalid, future, outlier...) as DataFrame
    operations: rows per reason, accepted rows and rejected rows (kept, with their reasons)."""
    from tailored.data.io import write_text
    from tailored.errors import DataError
    from tailored.spark import jobs

    rules = options.quality_rules(rule)
    rejected = jobs.rejected_path(output) if output is not None else None
    refuse_overwrite({"--output": output, "--output (its rejected rows)": rejected, "--report": report},
                     {"--interactions": interactions})
    spark = _session(master, conf)
    summary = jobs.check(spark, interactions, _columns(user_col, item_col, value_col, time_col), rules, output)
    stdout.print(f"quality of {interactions}: {summary.rows:,} rows, {summary.clean:,} accepted, "
                 f"{summary.rejected:,} rejected", highlight=False, soft_wrap=True)
    print_table(summary.to_frame(), title="rejected rows per reason")
    if output is not None:
        console.print(f"[green]wrote[/] {summary.clean:,} accepted rows to {output} and {summary.rejected:,} rejected "
                      f"rows (with reasons) to {rejected}")
    if report is not None:
        write_text(json.dumps(vars(summary), indent=2), report)
    if strict and summary.rejected:
        raise DataError(f"{summary.rejected:,} rows of {interactions} break the quality rules (--strict): "
                        + ", ".join(f"{reason} {count:,}" for reason, count in sorted(summary.reasons.items())))


@app.command()
@handle_errors
def split(
    interactions: Data,
    output_dir: Annotated[Path, typer.Option(
        "--output-dir", help="Folder for train, test[, valid] (.parquet folders or .csv) and split.json.")],
    method: Annotated[str, typer.Option(
        "--method", help="per_user, random, leave_last_out, leave_one_out_random, temporal, cold_users, "
                         "cold_items.")] = "per_user",
    test_fraction: Annotated[float | None, typer.Option("--test-fraction")] = None,
    fraction: Annotated[float | None, typer.Option(
        "--fraction", help="Share of users/items held out (cold-start splits).")] = None,
    cutoff: Annotated[str | None, typer.Option("--cutoff", help="Temporal cut (ISO date or unix seconds).")] = None,
    horizon_days: Annotated[float | None, typer.Option(
        "--horizon-days", help="Temporal: test = the H days after the cut.")] = None,
    valid_fraction: Annotated[float | None, typer.Option(
        "--valid-fraction", help="Carve a validation set from training only.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (random splitters; default 42).")] = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    value_col: ValueCol = "value",
    time_col: TimeCol = "timestamp",
    output_format: Format = "parquet",
    master: Master = "local[*]",
    conf: Conf = None,
) -> None:
    """Split interactions on Spark: the same seed gives the same rows as `tailored split` on the same data."""
    from tailored.spark import jobs

    for name in ("train", "test", "valid"):
        refuse_overwrite({"--output-dir": output_dir / f"{name}.{output_format}"}, {"--interactions": interactions})
    settings = {"test_fraction": test_fraction, "fraction": fraction, "cutoff": cutoff, "horizon_days": horizon_days,
                "seed": seed}
    spark = _session(master, conf)
    table = jobs.split(spark, interactions, output_dir, method, settings, valid_fraction,
                       _columns(user_col, item_col, value_col, time_col), output_format)
    print_table(table, title=f"{method} split")
    console.print(f"[green]saved[/] to {output_dir}")


@app.command()
@handle_errors
def train(
    interactions: Data,
    model_dir: Annotated[Path, typer.Option(
        "--model-dir", help="The model directory (the normal format: `tailored recommend`, `serve` and the registry "
                            "load it).")],
    algorithm: Annotated[str, typer.Option(
        "--algorithm", help="Algorithm on Spark: als, item-knn or popularity.")] = "als",
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    value_col: ValueCol = "value",
    time_col: TimeCol = "timestamp",
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="Parameter NAME=VALUE (repeatable): the local algorithm's (als: factors, reg, alpha, epochs, "
                        "seed) and weighting, confidence_alpha, decay_half_life_days.")] = None,
    params_file: Annotated[Path | None, typer.Option(
        "--params-file", help="JSON parameters (e.g. from tune).")] = None,
    factors_dir: Annotated[Path | None, typer.Option(
        "--factors-dir", help="Also write the factors as Parquet here, for `tailored spark recommend --factors-dir` "
                              "at any scale.")] = None,
    check: options.CheckOption = True,
    rule: RuleOption = None,
    master: Master = "local[*]",
    conf: Conf = None,
) -> None:
    """Train on Spark (als: MLlib implicit ALS with the local parameters mapped; item-knn: distributed co-occurrence;
    popularity) and save the normal model directory; rows a quality rule rejects are left out and counted."""
    from tailored.spark import jobs
    from tailored.spark.model_dir import write_model_dir

    refuse_overwrite({"--model-dir": model_dir, "--factors-dir": factors_dir},
                     {"--interactions": interactions, "--params-file": params_file})
    params = parse_params(param, params_file)
    jobs.algorithm_params(algorithm, params)
    if factors_dir is not None and algorithm != "als":
        raise ConfigError(f"--factors-dir writes ALS factors; {algorithm} has none (its model directory is all).")
    rules = options.quality_rules(rule)
    spark = _session(master, conf)
    frame, summary = jobs.checked(spark, interactions, _columns(user_col, item_col, value_col, time_col), rules,
                                  check)
    if summary is not None and summary.rejected:
        say(f"quality: {summary.clean:,} rows accepted, {summary.rejected:,} rejected ("
            + ", ".join(f"{reason} {count:,}" for reason, count in sorted(summary.reasons.items())) + ")")
    start = time.perf_counter()
    factors = jobs.train(spark, frame, algorithm, params)
    with jobs.spark_errors(f"writing {model_dir}"):
        write_model_dir(factors, frame, model_dir)
        if factors_dir is not None:
            jobs.save_factors(factors, factors_dir)
    console.print(f"[green]saved[/] {algorithm} model to {model_dir} in {time.perf_counter() - start:.1f} s"
                  + (f"; factors in {factors_dir}" if factors_dir is not None else ""))


@app.command()
@handle_errors
def tune(
    interactions: Data,
    output: Annotated[Path, typer.Option("--output", help="JSON file for the best parameters.")],
    algorithm: Annotated[str, typer.Option("--algorithm", help="Algorithm on Spark: als.")] = "als",
    metric: Annotated[str, typer.Option("--metric", help="ndcg@10, hr@10, recall@20, ...")] = "ndcg@10",
    trials: Annotated[int, typer.Option("--trials", min=1)] = 20,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    validation: ValidationMethod = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    value_col: ValueCol = "value",
    time_col: TimeCol = "timestamp",
    param: FixedParams = None,
    timeout: TuneTimeout = None,
    check: options.CheckOption = True,
    rule: RuleOption = None,
    master: Master = "local[*]",
    conf: Conf = None,
) -> None:
    """`tailored tune` on Spark: Optuna on a validation split carved from the training file only (the same rows as
    locally), each trial trained, ranked and measured on Spark; one line per trial. The JSON feeds `tailored spark
    train --params-file`."""
    from tailored.config import json_safe
    from tailored.data.io import write_text
    from tailored.spark import jobs
    from tailored.spark.tune import ALGORITHM, tune_als

    if algorithm != ALGORITHM:
        raise ConfigError(f"Algorithm '{algorithm}' is not tuned on Spark; valid: {ALGORITHM}.")
    refuse_overwrite({"--output": output}, {"--interactions": interactions})
    fixed = jobs.algorithm_params(algorithm, parse_params(param))
    rules = options.quality_rules(rule)
    spark = _session(master, conf)
    frame, _ = jobs.checked(spark, interactions, _columns(user_col, item_col, value_col, time_col), rules, check)
    with jobs.spark_errors("tuning"):
        result = tune_als(frame, metric, trials, seed, validation, fixed or None,
                          on_trial=trial_reporter(trials, metric), timeout=timeout)
    write_text(json.dumps(json_safe(result.best_params), indent=2), output)
    show_tuning(result, output)


@app.command()
@handle_errors
def recommend(
    output: Annotated[Path | None, typer.Option("--output", help="Output: a .parquet folder or a .csv.")] = None,
    db: Annotated[str | None, typer.Option(
        "--db", help="Or a table of this database (SQLAlchemy URL: sqlite:///FILE.db, postgresql://...) for CRM "
                     "campaigns, replaced in one transaction.")] = None,
    table: Annotated[str, typer.Option("--table", help="The --db table.")] = "recommendations",
    model_dir: Annotated[Path | None, typer.Option(
        "--model-dir", help="A factor model directory (als...), read on the driver.")] = None,
    factors_dir: Annotated[Path | None, typer.Option(
        "--factors-dir", help="Factors written by `spark train --factors-dir` (never collected to the "
                              "driver).")] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Number of recommendations per user.")] = 10,
    users: Annotated[Path | None, typer.Option(
        "--users", help="Only these users: a file or folder with a user_id column.")] = None,
    all_users: Annotated[bool, typer.Option("--all-users", help="Recommend for every training user.")] = False,
    interactions: Annotated[Path | None, typer.Option(
        "--interactions", help="Items to exclude per user (the training interactions); default with --model-dir: "
                               "the model's own.")] = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    master: Master = "local[*]",
    conf: Conf = None,
) -> None:
    """Top-k for every user (or those of --users) by blocked matrix products on the executors, the items each
    user already has excluded: user_id,item_id,rank,score."""
    from tailored.spark import jobs
    from tailored.spark.io import write_frame

    exactly_one(users, all_users, "Give exactly one of --users FILE or --all-users.")
    exactly_one(output, db, "Give exactly one of --output FILE or --db URL.")
    exactly_one(model_dir, factors_dir, "Give exactly one of --model-dir DIR or --factors-dir DIR.")
    if factors_dir is not None and interactions is None:
        raise ConfigError("--factors-dir needs --interactions (the training interactions, whose items are excluded "
                          "from each user's list).")
    refuse_overwrite({"--output": output}, {"--model-dir": model_dir, "--factors-dir": factors_dir, "--users": users,
                                            "--interactions": interactions})
    spark = _session(master, conf)
    columns = _columns(user_col, item_col, "value", "timestamp")
    with jobs.spark_errors("loading the factors"):
        if model_dir is not None:
            user_factors, item_factors, seen = jobs.factors_from_model(spark, model_dir)
        else:
            user_factors, item_factors = jobs.load_factors(spark, factors_dir)
        if interactions is not None:
            seen = jobs.read(spark, interactions, columns)
        wanted = jobs.read_users(spark, users, user_col) if users is not None else None
    lists = jobs.recommend(user_factors, item_factors, seen, k, wanted)
    if db is not None:
        from tailored.spark.scoring import write_table

        with jobs.spark_errors(f"writing the table {table}"):
            rows = write_table(lists, db, table)
        console.print(f"[green]wrote[/] {rows:,} recommendations to the table {table} of {db}")
        return
    with jobs.spark_errors(f"writing {output}"):
        write_frame(lists, output, fmt=jobs.output_format(output))
        rows = jobs.read_table(spark, output, "--output", ()).count()
    console.print(f"[green]wrote[/] {rows:,} recommendations to {output}")


@app.command()
@handle_errors
def evaluate(
    test: Annotated[Path, typer.Option("--test", help="Test interactions (file or folder).")],
    recommendations: Annotated[Path, typer.Option(
        "--recommendations", help="user_id,item_id,rank lists (file or folder).")],
    train_file: Annotated[Path | None, typer.Option(
        "--train", help="Training interactions (the catalogue, for coverage and Gini).")] = None,
    metric: Annotated[list[str] | None, typer.Option("--metric", help="Metric NAME@K (repeatable).")] = None,
    output: Annotated[Path | None, typer.Option("--output", help="Write the metrics (.json or .csv).")] = None,
    master: Master = "local[*]",
    conf: Conf = None,
) -> None:
    """The engine's metrics (precision, recall, NDCG, MAP, HR, MRR, coverage, Gini) on Spark: equal to `tailored
    evaluate` on the same lists and test set."""
    import pandas as pd

    from tailored.data.io import write_text
    from tailored.spark import jobs
    from tailored.spark.metrics import DEFAULT_METRICS

    if output is not None and output.suffix.lower() not in (".json", ".csv"):
        raise ConfigError(f"--output must be a .json or .csv file, got {output}.")
    names = list(metric or DEFAULT_METRICS)
    if train_file is None:
        names = [name for name in names if name.split("@")[0] not in ("coverage", "gini")] if metric is None else names
    refuse_overwrite({"--output": output}, {"--test": test, "--recommendations": recommendations,
                                            "--train": train_file})
    spark = _session(master, conf)
    truth = jobs.read(spark, test)
    lists = jobs.read_lists(spark, recommendations)
    catalogue = jobs.read(spark, train_file) if train_file is not None else None
    values = jobs.evaluate(lists, truth, catalogue, names)
    table = pd.DataFrame({"metric": list(values), "value": list(values.values())})
    print_table(table, title="evaluation (Spark)", digits=6)
    if output is not None and output.suffix.lower() == ".json":
        write_text(table.to_json(orient="records", indent=2), output)
    elif output is not None:
        write_text(table.to_csv(index=False), output)


@app.command()
@handle_errors
def run(
    spec_file: Annotated[Path, typer.Argument(help="TOML job spec (see configs/).", metavar="SPEC")],
    master: Annotated[str | None, typer.Option(
        "--master", help="Spark master (default: the spec's [job] spark master, else local[*]).")] = None,
    conf: Conf = None,
) -> None:
    """Run a job spec on Spark (whatever its engine): check -> split -> train -> evaluate -> save the best model (the
    normal model directory), with a report next to it."""
    from tailored.jobs.spec import load_spec
    from tailored.spark.session import parse_conf

    run_spec(load_spec(spec_file), spec_file, master, parse_conf(conf or []) or None)


def run_spec(spec: JobSpec, spec_file: Path, master: str | None = None, conf: dict[str, str] | None = None) -> None:
    """Run ``spec`` (read from ``spec_file``) on Spark and print what `tailored run` prints: `tailored spark run`,
    and `tailored run` for a spec with ``engine = "spark"``."""
    from tailored.jobs.spec import resolve
    from tailored.spark.jobs import run_spark_job

    refuse_overwrite({"[job] output": resolve(spec, spec.output)},
                     {"[data] interactions": resolve(spec, spec.data.interactions), "SPEC": spec_file})
    with step_reporter(f"spark run {spec_file}") as step:
        result = run_spark_job(spec, step, master, conf)
    show_job(result, spec.split.method, spec.show_users)


def show_job(result: SparkJobResult, method: str, show_users: int) -> None:
    """What `tailored run` prints, for a `SparkJobResult`."""
    quality = result.quality
    console.print(f"quality: {quality.clean:,} rows accepted, {quality.rejected:,} rejected (reasons in "
                  f"{result.output / 'rejected.csv'})")
    print_table(result.split, title=f"{method} split")
    print_table(result.summary(), title="test metrics (Spark)")
    print_table(result.recommendations, title=f"recommendations from {result.best} for {show_users} users")
    stdout.print(f"saved model to {result.output / 'model'}; report: {result.output / 'report.md'}")


@handle_errors
def benchmark(
    part: Annotated[list[str] | None, typer.Option(
        "--part", help="same-answers, scale, side-by-side (repeatable; default: all three).")] = None,
    data_dir: Annotated[Path, typer.Option(
        "--data-dir", help="The ml-100k-splits folder (P1.train.csv, P1.test.csv) for same-answers.")
    ] = Path("../shared/data/ml-100k-splits"),
    users: Annotated[int, typer.Option("--users", min=1, help="Scale: generated users.")] = 2_000_000,
    items: Annotated[int, typer.Option("--items", min=1, help="Scale: generated items.")] = 200_000,
    interactions: Annotated[int, typer.Option(
        "--interactions", min=1, help="Scale: generated interactions.")] = 50_000_000,
    side_interactions: Annotated[int, typer.Option(
        "--side-interactions", min=1, help="Side by side: interactions (users and items scaled from --users, "
                                           "--items in the same ratio).")] = 5_000_000,
    factors: Annotated[int, typer.Option("--factors", min=1)] = 64,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="ALS iterations.")] = 10,
    k: Annotated[int, typer.Option("--k", min=1)] = 10,
    split_method: Annotated[str, typer.Option("--split", help="Split method of the scale runs.")] = "per_user",
    work_dir: Annotated[Path, typer.Option(
        "--work-dir", help="Where the generated data and the lists are written (kept: a rerun reuses the data).")
    ] = Path("runs/spark-benchmark"),
    master: Master = "local[*]",
    conf: Conf = None,
) -> None:
    """Spark against one machine: same answers (MLlib ALS through the normal `recommend` vs the local als on
    MovieLens 100K P1, NDCG@10), scale (generated data: check, split, ALS, top-k for every user; stage times and the
    driver's peak memory) and a side by side with the single-machine path. Figures only."""
    from tailored.benchmarks import spark as bench
    from tailored.spark.session import parse_conf

    chosen = part or ["same-answers", "scale", "side-by-side"]
    unknown = sorted(set(chosen) - {"same-answers", "scale", "side-by-side"})
    if unknown:
        raise ConfigError(f"--part {unknown} unknown; choose from same-answers, scale, side-by-side.")
    if "same-answers" in chosen and not (data_dir / "P1.train.csv").exists():
        raise ConfigError(f"{data_dir} has no P1.train.csv: pass --data-dir with the ml-100k-splits folder.")
    settings = {"spark.driver.memory": "12g", **parse_conf(conf or [])}
    spark = _session(master, [f"{key}={value}" for key, value in settings.items()])
    start = time.perf_counter()
    if "same-answers" in chosen:
        table = bench.same_answers(spark, data_dir, say=say)
        print_table(table, title=f"same answers on MovieLens 100K P1 ({table.attrs['params']})")
        stdout.print(f"NDCG@10 spark - local: {table.attrs['ndcg_difference']:+.4f}")
    runs = [("scale", users, items, interactions, False)] if "scale" in chosen else []
    if "side-by-side" in chosen:
        ratio = side_interactions / interactions
        runs.append(("side-by-side", max(1, round(users * ratio)), max(1, round(items * ratio)), side_interactions,
                     True))
    for name, run_users, run_items, rows, local in runs:
        title = f"{run_users:,} users x {run_items:,} items x {rows:,} interactions"
        result = bench.side_by_side(spark, run_users, run_items, rows, work_dir, factors, epochs, k, split_method,
                                    local, say=say)
        seconds = result["generate_seconds"]
        made = "reused the Parquet of an earlier run" if seconds is None else f"generated in {seconds:.1f} s"
        stdout.print(f"{name}: {title}: {made} ({work_dir})")
        print_table(result["spark"], title=f"{name} on Spark ({master}): {title}", digits=2)
        _print_memory("Spark driver", result["spark_memory"].figures())
        if local:
            print_table(result["local"], title=f"{name} on one machine: {title}", digits=2)
            _print_memory("one machine", result["local_memory"].figures())
            print_table(bench.compare(result["spark"], result["local"]), title="seconds per stage", digits=2)
    stdout.print(f"total {time.perf_counter() - start:.1f} s")


def _print_memory(what: str, figures: dict[str, float]) -> None:
    for name, value in figures.items():
        if what == "one machine" and "JVM" in name:
            continue
        stdout.print(f"{what}: {name:<40} {value:.2f}")
