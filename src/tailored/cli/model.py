"""Commands that make and judge models: train, tune, run, retrain, evaluate, drift, and the catalogues of
algorithms and stages."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tailored.cli import options
from tailored.cli.common import (console, epoch_reporter, handle_errors, parse_params, print_table, progress_bar,
                                 refuse_overwrite, say, show_tuning, step_reporter, stdout, trial_reporter, warn)
from tailored.cli.options import (CheckOption, FixedParams, Interactions, ItemCol, ItemsFile, ModelDir,
                                  PipelineOption, RuleOption, StageOption, TimeCol, TuneTimeout, UserCol, UsersFile,
                                  ValidationMethod, ValueCol, WindowDays)

if TYPE_CHECKING:
    from tailored.data.quality import QualityReport
    from tailored.models.base import Choice, Float, Int

app = typer.Typer()


@app.command()
@handle_errors
def train(
    interactions: Interactions,
    algorithm: Annotated[str, typer.Option("--algorithm", help="Algorithm name (see `tailored algorithms`).")],
    model_dir: ModelDir,
    users: UsersFile = None,
    items: ItemsFile = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    value_col: ValueCol = "value",
    time_col: TimeCol = "timestamp",
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="Hyperparameter or Recommender setting NAME=VALUE (repeatable; see `tailored "
                        "algorithms`).")] = None,
    params_file: Annotated[Path | None, typer.Option(
        "--params-file", help="JSON parameters (e.g. from tune).")] = None,
    stage: StageOption = None,
    pipeline: PipelineOption = None,
    window_days: WindowDays = None,
    context_stages: Annotated[bool, typer.Option(
        "--context-stages/--no-context-stages", help="Learn seasonality and time of day (no change without such "
                                                     "patterns or without a request date).")] = True,
    checkpoint_dir: Annotated[Path | None, typer.Option(
        "--checkpoint-dir", help="Neural models: checkpoint every epoch here; a rerun resumes from it.")] = None,
    basket_col: Annotated[str | None, typer.Option(
        "--basket-col", help="Column grouping interactions into baskets (co-purchase statistics; default: a basket_id "
                             "column when present, else 30-minute sessions).")] = None,
    check: CheckOption = True,
    rule: RuleOption = None,
) -> None:
    """Train an algorithm on an interactions file and save the model to a directory. Rows a quality rule rejects
    (repeated rows, future dates, ids absent from --users/--items...) are left out and listed; rows that cannot be
    read (missing ids, values that are not numbers) stop the command."""
    from tailored.jobs import tasks as jobs
    from tailored.jobs.attributes import attribute_report
    from tailored.models.neural.training import reporting_epochs

    refuse_overwrite({"--model-dir": model_dir, "--checkpoint-dir": checkpoint_dir},
                     {"--interactions": interactions, "--users": users, "--items": items, "--params-file": params_file,
                      "--pipeline": pipeline})
    params = options.pipeline_params(pipeline, algorithm) | parse_params(param, params_file)
    rules = options.quality_rules(rule)
    stages = jobs.training_stages(algorithm, params, options.stages(stage, pipeline), context_stages)
    columns = options.columns(interactions, user_col, item_col, value_col, time_col, basket_col)
    dataset, quality = jobs.training_data(interactions, users, items, columns, rules, check, window_days)
    _warn_rejected(quality)
    with progress_bar(f"training {algorithm} on {len(dataset):,} interactions", "epoch") as bar, reporting_epochs(
        epoch_reporter(bar)
    ):
        try:
            recommender = jobs.train(dataset, algorithm, params, model_dir, {"source": str(interactions)},
                                     stages=stages, checkpoint_dir=checkpoint_dir, quality=quality)
        except KeyboardInterrupt:
            if checkpoint_dir is not None:
                say(f"checkpoints kept in {checkpoint_dir}: the same command resumes after the last finished epoch.")
            raise
    for line in attribute_report(recommender, dataset):
        say(line)
    chosen = "" if recommender.weighting == recommender.weighting_ else f"{recommender.weighting} chose "
    say(f"weighting: {chosen}{recommender.weighting_} ({recommender.weighting_reason_})")
    _quality_saved(quality, model_dir)
    console.print(f"[green]saved[/] {algorithm} model ({dataset.n_users:,} users, {dataset.n_items:,} items) to "
                  f"{model_dir}")


def _warn_rejected(quality: QualityReport | None) -> None:
    """A warning for each quality rule that rejected rows (what, where, how to fix it)."""
    for finding in quality.findings if quality is not None else ():
        if finding.count:
            warn(finding.message)


def _quality_saved(quality: QualityReport | None, model_dir: Path) -> None:
    from tailored.jobs.tasks import QUALITY_REPORT, REJECTED_ROWS

    if quality is not None:
        say(f"quality: {len(quality.clean):,} rows accepted, {len(quality.rejected):,} rejected (reasons in "
            f"{model_dir / REJECTED_ROWS}; report in {model_dir / QUALITY_REPORT})")


@app.command()
@handle_errors
def tune(
    interactions: Interactions,
    algorithm: Annotated[str, typer.Option("--algorithm")],
    output: Annotated[Path, typer.Option("--output", help="JSON file for the best parameters.")],
    metric: Annotated[str, typer.Option("--metric", help="ndcg@10, hr@10, recall@20, rmse, ...")] = "ndcg@10",
    trials: Annotated[int, typer.Option("--trials", min=1)] = 30,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    validation: ValidationMethod = None,
    users: UsersFile = None,
    items: ItemsFile = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    value_col: ValueCol = "value",
    time_col: TimeCol = "timestamp",
    param: FixedParams = None,
    timeout: TuneTimeout = None,
) -> None:
    """Search hyperparameters with Optuna on a validation split carved from the training file only: the defaults
    with each weighting come first, then the search; one line per trial (params, score, best so far, elapsed)."""
    from tailored.config import json_safe
    from tailored.data.io import write_text
    from tailored.jobs import tasks as jobs
    from tailored.jobs.tune import tune as run_tuning

    refuse_overwrite({"--output": output}, {"--interactions": interactions, "--users": users, "--items": items})
    columns = options.columns(interactions, user_col, item_col, value_col, time_col)
    dataset = jobs.load_dataset(interactions, users, items, columns)
    result = run_tuning(dataset, algorithm, metric, trials, seed, validation, parse_params(param) or None,
                        on_trial=trial_reporter(trials, metric), timeout=timeout)
    write_text(json.dumps(json_safe(result.best_params), indent=2), output)
    show_tuning(result, output)


@app.command()
@handle_errors
def run(spec_file: Annotated[Path, typer.Argument(help="TOML job spec (see configs/).", metavar="SPEC")]) -> None:
    """Run a job spec: check -> split -> train -> evaluate -> save the best model, with a report next to it."""
    from tailored.jobs.run import repurchase_note, run_job
    from tailored.jobs.spec import load_spec, resolve

    spec = load_spec(spec_file)
    if spec.engine == "spark":
        from tailored.cli.spark import run_spec

        return run_spec(spec, spec_file)
    data = {f"[data] {name}": resolve(spec, getattr(spec.data, name)) for name in ("interactions", "users", "items")}
    refuse_overwrite({"[job] output": resolve(spec, spec.output)}, {**data, "SPEC": spec_file})
    with step_reporter(f"run {spec_file}") as step:
        result = run_job(spec, step=step)
    quality = result.quality
    console.print(f"quality: {len(quality.clean):,} rows accepted, {len(quality.rejected):,} rejected "
                  f"(reasons in {result.output / 'rejected.csv'})")
    say(repurchase_note(result))
    seen = "; seen items ranked too: repurchases count" if any(result.ranks_seen.values()) else ""
    print_table(result.summary(), title=f"test metrics ({result.split.name} split{seen})")
    print_table(result.recommendations, title=f"recommendations from {result.best} for {spec.show_users} customers")
    console.print(f"[green]saved[/] model to {result.output / 'model'}; report: {result.output / 'report.md'}")


@app.command()
@handle_errors
def retrain(
    interactions: Interactions,
    model_dir: ModelDir,
    window_days: WindowDays = None,
    output_dir: Annotated[Path | None, typer.Option(
        "--output-dir", help="Where to save (default: replace --model-dir).")] = None,
    users: UsersFile = None,
    items: ItemsFile = None,
    check: CheckOption = True,
    rule: RuleOption = None,
) -> None:
    """Retrain a model (same algorithm, parameters and stages) on the recent window of an interactions file, after
    the quality rules (as `tailored train`)."""
    from tailored.jobs import tasks as jobs

    refuse_overwrite({"--output-dir": output_dir or model_dir}, {"--interactions": interactions, "--users": users,
                                                                "--items": items})
    rules = options.quality_rules(rule)
    with console.status("retraining"):
        recommender, quality = jobs.retrain(interactions, model_dir, window_days, output_dir, users, items,
                                            rules=rules, check=check)
    _warn_rejected(quality)
    _quality_saved(quality, output_dir or model_dir)
    console.print(f"[green]saved[/] {recommender.scorer.algorithm} retrained on {recommender.seen_.nnz:,} user-item "
                  f"pairs to {output_dir or model_dir}")


@app.command()
@handle_errors
def evaluate(
    test: Annotated[Path, typer.Option("--test", help="Test interactions file.")],
    recommendations: Annotated[Path | None, typer.Option(
        "--recommendations", help="user_id,item_id,rank file.")] = None,
    model_dir: Annotated[Path | None, typer.Option("--model-dir", help="Recommend with this model instead.")] = None,
    train_file: Annotated[Path | None, typer.Option(
        "--train", help="Training file (catalogue, popularity).")] = None,
    metric: Annotated[list[str] | None, typer.Option("--metric", help="Metric NAME@K (repeatable).")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", help="Write the metrics table (.csv, .parquet or .json).")] = None,
) -> None:
    """Compute metrics of recommendations (from a file or a model) against a test file.

    Ranking metrics use full ranking as recommended (PROTOCOLS.md definitions); rmse/mae need --model-dir.
    """
    from tailored.data.io import check_table_path, write_table, write_text
    from tailored.jobs.evaluate import metrics_table

    json_output = output is not None and output.suffix.lower() == ".json"
    if output is not None and not json_output:
        check_table_path(output)
    refuse_overwrite({"--output": output}, {"--test": test, "--recommendations": recommendations,
                                            "--model-dir": model_dir, "--train": train_file})
    table = metrics_table(test, recommendations, model_dir, train_file, metric)
    print_table(table, title="evaluation", digits=6)
    if json_output:
        write_text(table.to_json(orient="records", indent=2), output)
    elif output is not None:
        write_table(table, output)


@app.command()
@handle_errors
def drift(
    interactions: Interactions,
    model_dir: ModelDir,
    window_days: WindowDays = None,
    output: Annotated[Path | None, typer.Option("--output", help="Also write the report (.csv/.parquet).")] = None,
) -> None:
    """Population stability of item popularity between the training data and recent interactions (with the noise
    floor of the window's size): says when retraining is due."""
    from tailored.data.io import check_table_path, write_table
    from tailored.jobs.monitor import drift_of

    refuse_overwrite({"--output": output and check_table_path(output)}, {"--interactions": interactions,
                                                                          "--model-dir": model_dir})
    report = drift_of(interactions, model_dir, window_days)
    print_table(report.to_frame(), title=f"drift of {interactions} against the training data")
    stdout.print(f"verdict: {report.verdict}")
    if output is not None:
        write_table(report.to_frame(), output)


@app.command()
def algorithms() -> None:
    """List the algorithm catalogue with each parameter's default, then the Recommender settings every algorithm
    takes (also `--param NAME=VALUE`)."""
    import dataclasses

    from tailored.models.base import algorithm_names, hyperparameters, scorer_class
    from tailored.pipeline.settings import RecommenderSettings

    table = Table(title="algorithms")
    for column in ("name", "kind", "parameters (defaults)", "paper / summary"):
        table.add_column(column)
    for name in algorithm_names():
        cls = scorer_class(name)
        params = ", ".join(f"{f.name}={f.default!r}" for f in hyperparameters(cls).values()
                           if f.default is not dataclasses.MISSING)
        summary = " ".join((sys.modules[cls.__module__].__doc__ or "").strip().split("\n\n")[0].split())
        table.add_row(name, "rating" if cls.explicit else "ranking", params, summary)
    stdout.print(table)
    settings = Table(title="recommender settings (every algorithm; --param NAME=VALUE)")
    for column in ("name", "default", "tuned over", "what it does"):
        settings.add_column(column)
    for field in dataclasses.fields(RecommenderSettings):
        tuned = "" if field.metadata["tune"] is None else _range(field.metadata["tune"])
        settings.add_row(field.name, repr(field.default), tuned, field.metadata["help"])
    stdout.print(settings)


def _range(space: Float | Int | Choice) -> str:
    """A tuning range as people read it: ``a, b, c`` for a choice, ``low..high`` (log scale noted) otherwise."""
    from tailored.models.base import Choice

    if isinstance(space, Choice):
        return ", ".join(map(str, space.options))
    return f"{space.low:g}..{space.high:g}" + (" (log)" if space.log else "")


@app.command()
def stages() -> None:
    """List the stages (adjusters change scores, re-rankers pick the final list) with their parameters."""
    import dataclasses

    from tailored.rank.base import STAGES
    from tailored.rank.specs import describe_stages

    table = Table(title="stages")
    for column in ("name", "kind", "parameters (defaults)", "summary"):
        table.add_column(column)
    for name, kind, summary in describe_stages():
        fields = dataclasses.fields(STAGES[name])
        params = ", ".join(f"{f.name}={f.default!r}" for f in fields if f.default is not dataclasses.MISSING)
        table.add_row(name, kind, params, summary)
    stdout.print(table)
