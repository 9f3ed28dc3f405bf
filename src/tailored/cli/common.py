"""`tailored ...`: the command-line face. Parses, validates and formats; the work happens in `jobs`."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from tailored.errors import ConfigError, DataError, TailoredError

app = typer.Typer(help="tailored: a recommendation engine. Data -> quality -> split -> train -> evaluate -> recommend.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
datasets_app = typer.Typer(help="Generate or fetch data sets.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
LOG_WIDTH = 100_000
"""Columns of a console writing to a file, a pipe or a CI log: wide enough never to wrap or cut a table or a line."""


def _console(stderr: bool) -> Console:
    """On a terminal rich fits the window; elsewhere it would assume 80 columns and cut tables: there, unless COLUMNS
    says otherwise, lines keep their full width."""
    stream = sys.stderr if stderr else sys.stdout
    unbounded = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=LOG_WIDTH if unbounded else None)


console = _console(stderr=True)
stdout = _console(stderr=False)

EXIT_BAD_INPUT = 2


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``docker stop``, a job scheduler's time limit): stopped like Ctrl-C."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated


def handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Bad input -> a clear message and exit code 2; Ctrl-C -> exit 130 and SIGTERM -> exit 143 (outputs are written
    atomically). Native thread pools (BLAS, OpenMP) are bounded by TAILORED_NUM_THREADS (default 2)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from threadpoolctl import threadpool_limits

        from tailored.config import num_threads

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
        try:
            with threadpool_limits(num_threads()):
                return command(*args, **kwargs)
        except TailoredError as error:
            console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from error
        except KeyboardInterrupt as stop:
            terminated = isinstance(stop, Terminated)
            console.print(f"[yellow]{'terminated' if terminated else 'interrupted'}[/]: no partial output was written.")
            raise typer.Exit(128 + (signal.SIGTERM if terminated else signal.SIGINT)) from None
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, previous)

    return wrapper


class LogProgress(Progress):
    """Progress for a log file or a CI job (stderr not a terminal): instead of a live bar, a plain line
    ``description: unit done/total (note), elapsed`` at most every ``interval`` seconds and when a task completes."""

    def __init__(self, description: str, unit: str, interval: float = 2.0) -> None:
        super().__init__(console=console, disable=True)
        self.description, self.unit, self.interval, self.printed = description, unit, interval, -math.inf

    def update(self, task_id: TaskID, **changes: Any) -> None:  # type: ignore[override]
        super().update(task_id, **changes)
        task, now = next(task for task in self.tasks if task.id == task_id), time.monotonic()
        complete = task.total is not None and task.completed >= task.total
        if not complete and now - self.printed < self.interval:
            return
        self.printed = now
        unit = f"{self.unit} " if self.unit else ""
        done = f"{task.completed:,.0f}" + ("" if task.total is None else f"/{task.total:,.0f}")
        note = f" ({task.fields['note']})" if task.fields.get("note") else ""
        console.print(f"{self.description}: {unit}{done}{note}, {task.elapsed or 0:.0f} s", markup=False,
                      highlight=False, soft_wrap=True)


def progress_bar(description: str, unit: str = "") -> Progress:
    """A live bar on a terminal, `LogProgress` lines elsewhere. Updates may carry a ``note`` (the log line shows it)."""
    if not sys.stderr.isatty():
        return LogProgress(description, unit)
    return Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn(),
                    console=console, transient=True)


@contextlib.contextmanager
def step_reporter(description: str) -> Iterator[Callable[[str], None]]:
    """Reports the steps of a long job: a spinner naming the current one on a terminal; in a log or a CI job (stderr
    not a terminal), one plain line per step, ``description: step, elapsed``."""
    if sys.stderr.isatty():
        with console.status(description) as status:
            yield status.update
        return
    start = time.monotonic()

    def say(step: str) -> None:
        console.print(f"{description}: {step}, {time.monotonic() - start:.0f} s", markup=False, highlight=False,
                      soft_wrap=True)

    yield say


def epoch_reporter(bar: Progress) -> Callable[[int, int, float | None, str], None]:
    """Moves a task of ``bar`` with the neural training loops' epochs, noting their stage and held-out score."""
    task = bar.add_task("train", total=None)

    def report(epoch: int, epochs: int, score: float | None, stage: str) -> None:
        recall = "" if score is None else f"held-out recall {score:.4f}"
        bar.update(task, completed=epoch, total=epochs, note=", ".join(part for part in (stage, recall) if part))

    return report


def parse_params(values: list[str] | None, params_file: Path | None = None) -> dict[str, Any]:
    """``--param NAME=VALUE`` pairs (and an optional JSON file, e.g. written by `tailored tune`)."""
    params: dict[str, Any] = {}
    if params_file is not None:
        try:
            params |= json.loads(params_file.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(f"Cannot read parameters from {params_file}: {error}") from error
    for value in values or []:
        name, sep, raw = value.partition("=")
        if not sep or not name:
            raise ConfigError(f"--param expects NAME=VALUE, got {value!r}.")
        params[name.strip()] = raw.strip()
    return params


def _known_items(recommender: Any, ids: Any, source: Path, hint: str) -> Any:
    """The query item ``ids`` the model knows; the others are skipped with a warning naming them (none known: an
    error, with ``hint``)."""
    known = recommender.items_.index(ids, missing="mask") >= 0
    unknown = ", ".join(map(repr, ids[~known][:5].tolist())) + (", ..." if (~known).sum() > 5 else "")
    if not known.any():
        raise DataError(f"None of the {len(ids):,} item id(s) of {source} is known to the model (e.g. {unknown}); {hint}.")
    if not known.all():
        console.print(f"[yellow]warning:[/] {source}: {int((~known).sum()):,} item id(s) unknown to the model skipped: "
                      f"{escape(unknown)} ({hint}).", highlight=False, soft_wrap=True)
    return ids[known]


def refuse_overwrite(outputs: dict[str, Path | None], inputs: dict[str, Path | None]) -> None:
    """Before any work, refuse an output that would destroy an input: the same file (symbolic and hard links
    included), a folder holding it (an output folder such as --model-dir is replaced as a whole) or a path inside an
    input folder (a model directory). Keys are the options as the user typed them; None entries are not given."""
    given = {option: (path, Path(path).resolve()) for option, path in inputs.items() if path is not None}
    for output_option, output in outputs.items():
        if output is None:
            continue
        target = Path(output).resolve()
        for input_option, (path, source) in given.items():
            same = target == source or (target.exists() and source.exists() and os.path.samefile(target, source))
            relation = ("is" if same else "holds" if source.is_relative_to(target)
                        else "is inside" if target.is_relative_to(source) else None)
            if relation is not None:
                raise ConfigError(f"{output_option} {output} {relation} the input {input_option} {path}: writing it would "
                                  "destroy the input. Choose another output path.")


def print_table(frame: Any, title: str | None = None, digits: int = 4) -> None:
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), justify="right" if frame[column].dtype.kind in "fiu" else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row))
    stdout.print(table)


# ---- options shared by commands ---------------------------------------------------------------------------------
Interactions = Annotated[Path, typer.Option("--interactions", help="Interactions file (.csv or .parquet).")]
UsersFile = Annotated[Optional[Path], typer.Option("--users", help="User attributes file (user_id + attributes).")]
ItemsFile = Annotated[Optional[Path], typer.Option("--items", help="Item attributes file (item_id + attributes).")]
UserCol = Annotated[str, typer.Option("--user-col", help="Column holding user ids.")]
ItemCol = Annotated[str, typer.Option("--item-col", help="Column holding item ids.")]
ValueCol = Annotated[str, typer.Option("--value-col", help="Column holding the value (rating, count); 1 if absent.")]
TimeCol = Annotated[str, typer.Option("--time-col", help="Column holding timestamps (unix seconds or ISO dates).")]
ModelDir = Annotated[Path, typer.Option("--model-dir", help="Model directory written by `tailored train`.")]
Output = Annotated[Path, typer.Option("--output", help="Output file (.csv or .parquet).")]
QueryItems = Annotated[Path, typer.Option("--items", help="Query items: an item_id column (attribute columns describe new items for `similar`).")]
PerItem = Annotated[int, typer.Option("--k", min=1, help="Items per query item.")]
StageOption = Annotated[Optional[list[str]], typer.Option("--stage", help="Stage NAME or NAME:KEY=VALUE,... (repeatable; see `tailored stages`).")]
PipelineOption = Annotated[Optional[Path], typer.Option("--pipeline", help="TOML pipeline spec: [[stage]] tables in order.")]
WindowDays = Annotated[Optional[float], typer.Option("--window-days", help="Only the last N days of the interactions.")]


def build_stages(options: list[str] | None, pipeline: Path | None) -> list[Any]:
    """Stages from ``--stage`` options, then from a ``--pipeline`` spec."""
    from tailored.rank.specs import load_pipeline, parse_stage_option, stage_from_entry

    stages = [stage for option in options or [] for stage in stage_from_entry(parse_stage_option(option), Path.cwd())]
    return stages + (load_pipeline(pipeline) if pipeline is not None else [])


def _columns(interactions: Path, user_col: str, item_col: str, value_col: str, time_col: str,
             basket_col: str | None = None) -> Any:
    """The interaction columns the options name, checked against the file's header before any work: a column not
    there is named with the option that gave it (value and time columns left at their defaults may be absent)."""
    from tailored.data.io import SUPPORTED_SUFFIXES, read_columns
    from tailored.jobs.tasks import ColumnNames

    if interactions.is_file() and interactions.suffix.lower() in SUPPORTED_SUFFIXES:  # else the reader says why not
        header = read_columns(interactions)
        given = {"--user-col": user_col, "--item-col": item_col, "--value-col": value_col, "--time-col": time_col,
                 "--basket-col": basket_col}
        optional = {"--value-col": "value", "--time-col": "timestamp"}  # defaults that may be absent
        missing = [f"'{name}' ({option})" for option, name in given.items()
                   if name is not None and name not in header and name != optional.get(option)]
        if missing:
            raise DataError(f"Column {', '.join(missing)} not found in {interactions}; available columns: {header}. "
                            "Pass the names your file uses.")
    return ColumnNames(user=user_col, item=item_col, value=value_col, time=time_col, basket=basket_col)


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
    param: Annotated[Optional[list[str]], typer.Option("--param", help="Hyperparameter NAME=VALUE (repeatable).")] = None,
    params_file: Annotated[Optional[Path], typer.Option("--params-file", help="JSON parameters (e.g. from tune).")] = None,
    stage: StageOption = None,
    pipeline: PipelineOption = None,
    window_days: WindowDays = None,
    context_stages: Annotated[bool, typer.Option("--context-stages/--no-context-stages", help="Learn seasonality and time of day (no change without such patterns or without a request date).")] = True,
    checkpoint_dir: Annotated[Optional[Path], typer.Option("--checkpoint-dir", help="Neural models: checkpoint every epoch here; a rerun resumes from it.")] = None,
    basket_col: Annotated[Optional[str], typer.Option("--basket-col", help="Column grouping interactions into baskets (co-purchase statistics; default: a basket_id column when present, else 30-minute sessions).")] = None,
) -> None:
    """Train an algorithm on an interactions file and save the model to a directory."""
    from tailored.jobs import tasks as jobs
    from tailored.models.neural.training import reporting_epochs
    from tailored.pipeline.recommender import build_recommender

    refuse_overwrite({"--model-dir": model_dir, "--checkpoint-dir": checkpoint_dir},
                     {"--interactions": interactions, "--users": users, "--items": items, "--params-file": params_file,
                      "--pipeline": pipeline})
    params = parse_params(param, params_file)
    build_recommender(algorithm, params)  # validate the names and parameters before reading data
    stages = build_stages(stage, pipeline)
    if context_stages:
        from tailored.rank.specs import with_context_stages

        stages = with_context_stages(stages)
    dataset = jobs.load_dataset(interactions, users, items, _columns(interactions, user_col, item_col, value_col, time_col,
                                                                     basket_col))
    if window_days is not None:
        from tailored.data.transforms import history_window

        dataset = history_window(dataset, days=window_days)
    with progress_bar(f"training {algorithm} on {len(dataset):,} interactions", "epoch") as bar, reporting_epochs(
        epoch_reporter(bar)
    ):
        try:
            recommender = jobs.train(dataset, algorithm, params, model_dir, {"source": str(interactions)},
                                     stages=stages, checkpoint_dir=checkpoint_dir)
        except KeyboardInterrupt:
            if checkpoint_dir is not None:
                console.print(f"checkpoints kept in {escape(str(checkpoint_dir))}: the same command resumes after the "
                              "last finished epoch.", highlight=False, soft_wrap=True)
            raise
    for line in jobs.attribute_report(recommender, dataset):
        console.print(escape(line), highlight=False, soft_wrap=True)
    chosen = "" if recommender.weighting == recommender.weighting_ else f"{recommender.weighting} chose "
    console.print(f"weighting: {chosen}{recommender.weighting_} ({escape(recommender.weighting_reason_)})", highlight=False, soft_wrap=True)
    console.print(f"[green]saved[/] {algorithm} model ({dataset.n_users:,} users, {dataset.n_items:,} items) to {model_dir}")


@app.command()
@handle_errors
def recommend(
    model_dir: ModelDir,
    output: Output,
    k: Annotated[int, typer.Option("--k", min=1, help="Number of recommendations per user.")] = 10,
    users: Annotated[Optional[Path], typer.Option("--users", help="File with a user_id column (and attributes of new users).")] = None,
    all_users: Annotated[bool, typer.Option("--all-users", help="Recommend for every training user.")] = False,
    items: Annotated[Optional[Path], typer.Option("--items", help="New items (item_id + attribute columns) to add to the catalogue.")] = None,
    candidates: Annotated[Optional[Path], typer.Option("--candidates", help="Rank only the item ids of this file (an item_id column).")] = None,
    context: Annotated[Optional[list[str]], typer.Option("--context", help="Request context KEY=VALUE (repeatable): date=2026-12-15T19:30, lat=, lon=, radius_km=, recent=ID|ID, device=. Default date: now.")] = None,
    calendar: Annotated[Optional[Path], typer.Option("--calendar", help="Events calendar (TOML) adjusting the scores; built-in French retail events included.")] = None,
    rules: Annotated[Optional[Path], typer.Option("--rules", help="Business rules (TOML): filters, pinned/promoted items, repurchase cycles, max share.")] = None,
    stage: StageOption = None,
    pipeline: PipelineOption = None,
    explain: Annotated[bool, typer.Option("--explain", help="Add a reasons column (history item, event, season, rule...).")] = False,
) -> None:
    """Write the top-k items per user (user_id,item_id,score,rank,model[,reasons]), training items excluded. New users
    described by attribute columns in --users and new items described in --items are scored from their attributes.
    --calendar, --rules, --stage and --pipeline add request-time stages after the model's own."""
    from tailored.jobs import tasks as jobs
    from tailored.data.io import check_table_path, write_table

    if (users is None) == (not all_users):
        raise ConfigError("Give exactly one of --users FILE or --all-users.")
    check_table_path(output)
    refuse_overwrite({"--output": output}, {"--model-dir": model_dir, "--users": users, "--items": items,
                                            "--candidates": candidates, "--calendar": calendar, "--rules": rules,
                                            "--pipeline": pipeline})
    from tailored.data.io import read_attributes
    from tailored.query import parse_context
    from tailored.rank.specs import check_request_time, load_stage_file
    from tailored.registry.model_dir import fit_added_stages, load_model

    request_context = parse_context(context or [])
    stages = build_stages(stage, pipeline)
    check_request_time(stages)
    stages += load_stage_file("calendar", calendar) if calendar is not None else []
    stages += load_stage_file("rules", rules) if rules is not None else []
    user_ids, attributes = jobs.read_users(users) if users is not None else (None, None)
    new_items = read_attributes(items, id_column="item_id") if items is not None else None
    candidate_ids = jobs.read_item_ids(candidates) if candidates is not None else None
    from tailored.pipeline.recommender import short_lists, short_lists_message, undescribed_message

    model = load_model(model_dir)
    stages = fit_added_stages(model, stages)
    for problem in model.attribute_problems(attributes) if attributes is not None else []:
        console.print(f"[yellow]warning:[/] {users}: {problem}.")
    for problem in model.item_attribute_problems(new_items) if new_items is not None else []:
        console.print(f"[yellow]warning:[/] {items}: {escape(problem)}.")
    undescribed = model.undescribed_users(user_ids, attributes, request_context) if users is not None else []
    if len(undescribed):
        console.print(f"[yellow]warning:[/] {users}: {escape(undescribed_message(undescribed, model.fallback_.algorithm))}")
    with progress_bar("recommending") as bar:
        task = bar.add_task("recommend", total=None)
        frame = jobs.recommend(model, user_ids, k, progress=lambda done, total: bar.update(task, completed=done, total=total),
                               attributes=attributes, items=new_items, candidates=candidate_ids,
                               context=request_context, stages=stages, explain=explain)
    write_table(frame, output)
    short = short_lists(frame, k, None if user_ids is None else user_ids)
    if short:
        console.print(f"[yellow]warning:[/] {short_lists_message(short, k)}")
    console.print(f"[green]wrote[/] {len(frame):,} recommendations for {frame['user_id'].nunique():,} users to {output}")


@app.command()
@handle_errors
def predict(
    model_dir: ModelDir,
    pairs: Annotated[Path, typer.Option("--pairs", help="File with user_id,item_id columns.")],
    output: Output,
) -> None:
    """Predict a value (rating for explicit models, score otherwise) for each user-item pair."""
    from tailored.jobs import tasks as jobs
    from tailored.data.io import check_table_path, read_table, write_table

    check_table_path(output)
    refuse_overwrite({"--output": output}, {"--model-dir": model_dir, "--pairs": pairs})
    frame = jobs.predict(model_dir, read_table(pairs))
    write_table(frame, output)
    console.print(f"[green]wrote[/] {len(frame):,} predictions to {output}")


@app.command()
@handle_errors
def tune(
    interactions: Interactions,
    algorithm: Annotated[str, typer.Option("--algorithm")],
    output: Annotated[Path, typer.Option("--output", help="JSON file for the best parameters.")],
    metric: Annotated[str, typer.Option("--metric", help="ndcg@10, hr@10, recall@20, rmse, ...")] = "ndcg@10",
    trials: Annotated[int, typer.Option("--trials", min=1)] = 30,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    validation: Annotated[Optional[str], typer.Option("--validation", help="Validation split method: per_user, random, leave_last_out, temporal, ... (default: fits the metric).")] = None,
    users: UsersFile = None,
    items: ItemsFile = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    value_col: ValueCol = "value",
    time_col: TimeCol = "timestamp",
    param: Annotated[Optional[list[str]], typer.Option("--param", help="Parameter held fixed NAME=VALUE.")] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", help="Start no trial after this many seconds (the running one finishes).")] = None,
) -> None:
    """Search hyperparameters with Optuna on a validation split carved from the training file only: the defaults
    with each weighting come first, then the search; one line per trial (params, score, best so far, elapsed)."""
    from tailored.jobs import tasks as jobs
    from tailored.jobs.tune import TrialReport
    from tailored.jobs.tune import tune as run_tuning

    def report(trial: TrialReport) -> None:
        params = " ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                          for key, value in trial.params.items())
        console.print(f"trial {trial.number + 1}/{trials} {params}: {metric} {trial.value:.4f} (best {trial.best_value:.4f}, "
                      f"trial {trial.best_number + 1}) {trial.elapsed:.1f} s", highlight=False, soft_wrap=True)

    refuse_overwrite({"--output": output}, {"--interactions": interactions, "--users": users, "--items": items})
    dataset = jobs.load_dataset(interactions, users, items, _columns(interactions, user_col, item_col, value_col, time_col))
    result = run_tuning(dataset, algorithm, metric, trials, seed, validation, parse_params(param) or None,
                        on_trial=report, timeout=timeout)
    from tailored.config import json_safe
    from tailored.data.io import write_text

    write_text(json.dumps(json_safe(result.best_params), indent=2), output)
    console.print(
        f"validation ({result.validation}) {result.metric}: defaults {result.default_value:.4f} -> best "
        f"{result.best_value:.4f} with {result.best_params}; written to {output}"
    )


@app.command()
@handle_errors
def evaluate(
    test: Annotated[Path, typer.Option("--test", help="Test interactions file.")],
    recommendations: Annotated[Optional[Path], typer.Option("--recommendations", help="user_id,item_id,rank file.")] = None,
    model_dir: Annotated[Optional[Path], typer.Option("--model-dir", help="Recommend with this model instead.")] = None,
    train_file: Annotated[Optional[Path], typer.Option("--train", help="Training file (catalogue, popularity).")] = None,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", help="Metric NAME@K (repeatable).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", help="Write the metrics table (.csv, .parquet or .json).")] = None,
) -> None:
    """Compute metrics of recommendations (from a file or a model) against a test file.

    Ranking metrics use full ranking as recommended (PROTOCOLS.md definitions); rmse/mae need --model-dir.
    """
    import pandas as pd

    from tailored.jobs import tasks as jobs
    from tailored.data.columns import USER_ID
    from tailored.data.io import check_table_path
    from tailored.eval.evaluator import parse_metrics
    from tailored.models.base import scorer_class
    from tailored.registry.model_dir import load_model, read_manifest

    if (recommendations is None) == (model_dir is None):
        raise ConfigError("Give exactly one of --recommendations FILE or --model-dir DIR.")
    scorer = scorer_class(read_manifest(model_dir)["algorithm"]) if model_dir is not None else None
    ranking, rating = parse_metrics(metric or ["ndcg@10", "hr@10", "recall@10", "precision@10", "map@10", "mrr@10"], scorer)
    if rating and model_dir is None:
        raise ConfigError("rmse and mae need predictions: pass --model-dir DIR instead of --recommendations.")
    if output is not None and output.suffix.lower() != ".json":
        check_table_path(output)
    refuse_overwrite({"--output": output}, {"--test": test, "--recommendations": recommendations,
                                            "--model-dir": model_dir, "--train": train_file})
    table = pd.DataFrame(columns=["metric", "value", "ci_low", "ci_high"])
    truth = jobs.read_valid(test) if model_dir is not None else test  # read once: the users to rank and the truth
    model = load_model(model_dir) if model_dir is not None else None  # loaded once for lists and predictions
    if ranking:
        source = recommendations
        if model is not None:  # every test user, whatever number of test rows each has
            source = jobs.recommend(model, pd.unique(truth[USER_ID]), max(m.k for m in ranking))
        table = jobs.evaluate_files(truth, source, train_file, [m.name for m in ranking]).to_frame()
    if rating:
        errors = jobs.rating_errors(model, truth)
        rows = pd.DataFrame({"metric": [m.name for m in rating], "value": [errors[m.name] for m in rating]})
        table = rows if table.empty else pd.concat([table, rows], ignore_index=True)
    print_table(table, title="evaluation", digits=6)
    if output is not None:
        from tailored.data.io import write_table, write_text

        if output.suffix.lower() == ".json":
            write_text(table.to_json(orient="records", indent=2), output)
        else:
            write_table(table, output)


def main() -> None:
    app()


def _print_version(requested: bool) -> None:
    if requested:
        from tailored import __version__

        stdout.print(f"tailored {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    pass


@datasets_app.command("movielens")
@handle_errors
def datasets_movielens(
    variant: Annotated[Optional[str], typer.Option(
        "--variant", help="100k (default), 1m, 10m, 20m, 25m, 32m or latest-small; detected from --data-dir's files.")] = None,
    cache_dir: Annotated[Path, typer.Option("--cache-dir", help="Where archives are cached and extracted.")] = Path("data"),
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="Mirror of the GroupLens archives.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(
        "--data-dir", help="An extracted MovieLens folder to read instead of downloading (with --output-dir).")] = None,
    output_dir: Annotated[Optional[Path], typer.Option(
        "--output-dir", help="Write interactions.csv, items.csv and users.csv / tags.csv here, the inputs of "
                             "`tailored train` and `tailored split`.")] = None,
) -> None:
    """Download a MovieLens archive (checksum verified, cached); prints the extracted folder, or with --output-dir
    writes it as the command line's CSV inputs."""
    from tailored.data.movielens import BASE_URL, download_movielens, load_movielens

    if data_dir is not None and output_dir is None:
        raise ConfigError("--data-dir names a folder to convert: pass --output-dir too.")
    folder = data_dir
    if folder is None:
        variant = variant or "100k"
        with progress_bar(f"downloading ml-{variant}") as bar:
            task = bar.add_task("download", total=None)
            folder = download_movielens(variant, cache_dir, base_url or BASE_URL,
                                        progress=lambda done, total: bar.update(task, completed=done, total=total))
        if output_dir is None:
            stdout.print(str(folder))
            return
    movielens = load_movielens(folder, variant)
    written = movielens.write(output_dir)
    ratings = movielens.ratings
    console.print(f"[green]wrote[/] {len(ratings):,} ratings of {ratings['user_id'].nunique():,} users and "
                  f"{ratings['item_id'].nunique():,} items (MovieLens {movielens.variant}) to {output_dir}: "
                  + ", ".join(path.name for path in written))


@app.command()
def algorithms() -> None:
    """List the algorithm catalogue with each parameter's default."""
    import dataclasses

    from tailored.models.base import algorithm_names, hyperparameters, scorer_class

    table = Table(title="algorithms")
    for column in ("name", "kind", "parameters (defaults)", "paper / summary"):
        table.add_column(column)
    for name in algorithm_names():
        cls = scorer_class(name)
        params = ", ".join(f"{f.name}={f.default!r}" for f in hyperparameters(cls).values() if f.default is not dataclasses.MISSING)
        summary = " ".join((sys.modules[cls.__module__].__doc__ or "").strip().split("\n\n")[0].split())
        table.add_row(name, "rating" if cls.explicit else "ranking", params, summary)
    stdout.print(table)


@app.command()
@handle_errors
def check(
    interactions: Interactions,
    users: UsersFile = None,
    items: ItemsFile = None,
    output: Annotated[Optional[Path], typer.Option("--output", help="Write the accepted rows here (.csv/.parquet); rejected rows go beside it.")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write the full report as JSON.")] = None,
    rule: Annotated[Optional[list[str]], typer.Option("--rule", help="Quality rule NAME=VALUE, e.g. min_value=1, max_count_zscore=7.")] = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    value_col: ValueCol = "value",
    time_col: TimeCol = "timestamp",
    strict: Annotated[bool, typer.Option("--strict", help="Exit with code 2 when any error-level rule fires.")] = False,
) -> None:
    """Report data problems (missing, duplicate, invalid, future, outlier, unknown ids) and the data's biases."""
    from tailored.jobs import tasks as jobs
    from tailored.config import build_dataclass
    from tailored.data.io import check_table_path, write_table
    from tailored.data.quality import QualityRules

    rules = build_dataclass(QualityRules, parse_params(rule), "quality rule")
    rejected_path = None if output is None else check_table_path(output).with_name(f"{output.stem}.rejected{output.suffix}")
    refuse_overwrite({"--output": output, "--output (its rejected rows)": rejected_path, "--report": report},
                     {"--interactions": interactions, "--users": users, "--items": items})
    result = jobs.check(interactions, users, items, _columns(interactions, user_col, item_col, value_col, time_col), rules)
    stdout.print(result.to_markdown())
    if output is not None:
        write_table(result.clean, output)
        result.write_rejected(rejected_path)
        console.print(f"[green]wrote[/] {len(result.clean):,} accepted rows to {output} and "
                      f"{len(result.rejected):,} rejected rows (with reasons) to {rejected_path}")
    if report is not None:
        from tailored.data.io import write_text

        write_text(result.to_json(), report)
    if strict:
        result.raise_for_errors()


@datasets_app.command("synthetic")
@handle_errors
def datasets_synthetic(
    output_dir: Annotated[Path, typer.Option("--output-dir", help="Folder for interactions.csv, customers.csv, products.csv, complements.csv.")],
    customers: Annotated[int, typer.Option("--customers", min=10)] = 2000,
    products: Annotated[int, typer.Option("--products", min=47)] = 500,
    days: Annotated[int, typer.Option("--days", min=1)] = 730,
    start: Annotated[str, typer.Option("--start", help="First day (ISO date).")] = "2024-01-01",
    seed: Annotated[int, typer.Option("--seed")] = 42,
) -> None:
    """Generate the seeded synthetic retail data set (two years of purchases and views, a few malformed rows)."""
    from tailored.data.synthetic import generate_retail

    data = generate_retail(n_customers=customers, n_products=products, start=start, days=days, seed=seed)
    data.write(output_dir)
    console.print(f"[green]wrote[/] {len(data.interactions):,} interactions, {len(data.customers):,} customers and "
                  f"{len(data.products):,} products to {output_dir}")


@datasets_app.command("scale")
@handle_errors
def datasets_scale(
    output: Output,
    users: Annotated[int, typer.Option("--users", min=1)] = 1_000_000,
    items: Annotated[int, typer.Option("--items", min=1)] = 100_000,
    per_user: Annotated[float, typer.Option("--per-user", min=1, help="Mean interactions per user.")] = 8.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Generate a large implicit-feedback set (user_id,item_id) for load tests: taste groups, Zipf popularity."""
    from tailored.data.io import check_table_path, write_table
    from tailored.data.synthetic import generate_scale

    check_table_path(output)
    frame = generate_scale(users, items, per_user, seed=seed)
    write_table(frame, output)
    console.print(f"[green]wrote[/] {len(frame):,} interactions of {users:,} users and {items:,} items to {output}")


@app.command()
@handle_errors
def run(spec_file: Annotated[Path, typer.Argument(help="TOML job spec (see configs/).", metavar="SPEC")]) -> None:
    """Run a job spec: check -> split -> train -> evaluate -> save the best model, with a report next to it."""
    from tailored.jobs.run import repurchase_note, run_job
    from tailored.jobs.spec import load_spec, resolve

    spec = load_spec(spec_file)
    refuse_overwrite({"[job] output": resolve(spec, spec.output)},
                     {**{f"[data] {name}": resolve(spec, getattr(spec.data, name)) for name in ("interactions", "users", "items")},
                      "SPEC": spec_file})
    with step_reporter(f"run {spec_file}") as step:
        result = run_job(spec, step=step)
    quality = result.quality
    console.print(f"quality: {len(quality.clean):,} rows accepted, {len(quality.rejected):,} rejected "
                  f"(reasons in {result.output / 'rejected.csv'})")
    console.print(repurchase_note(result), markup=False, highlight=False, soft_wrap=True)
    seen = "; seen items ranked too: repurchases count" if any(result.ranks_seen.values()) else ""
    print_table(result.summary(), title=f"test metrics ({result.split.name} split{seen})")
    print_table(result.recommendations, title=f"recommendations from {result.best} for {spec.show_users} customers")
    console.print(f"[green]saved[/] model to {result.output / 'model'}; report: {result.output / 'report.md'}")


@app.command()
@handle_errors
def similar(
    model_dir: ModelDir,
    items: QueryItems,
    output: Output,
    k: PerItem = 10,
) -> None:
    """Write the k most similar items of each query item (item_id,similar_item_id[,title],score,rank): collaborative
    and attribute similarity blended."""
    from tailored.data.io import check_table_path, read_attributes, write_table
    from tailored.registry.model_dir import load_model
    from tailored.rank.explain import with_titles
    from tailored.pipeline.similar import SIMILAR_ITEM_ID, similar_items

    check_table_path(output)
    refuse_overwrite({"--output": output}, {"--model-dir": model_dir, "--items": items})
    table = read_attributes(items, id_column="item_id")
    recommender = load_model(model_dir)
    if table.shape[1] > 1:
        for problem in recommender.item_attribute_problems(table):
            console.print(f"[yellow]warning:[/] {items}: {escape(problem)}.")
        recommender = recommender.with_items(table)
    query = _known_items(recommender, table["item_id"].astype(str).unique(), items,
                         "describe new items with attribute columns in --items")
    frame = similar_items(recommender, query, k)
    write_table(with_titles(frame, recommender.catalogue, SIMILAR_ITEM_ID), output)
    console.print(f"[green]wrote[/] {len(frame):,} similar items for {frame['item_id'].nunique():,} items to {output}")


@app.command()
@handle_errors
def complementary(
    model_dir: ModelDir,
    items: QueryItems,
    output: Output,
    k: PerItem = 10,
    min_count: Annotated[int, typer.Option("--min-count", min=1, help="Baskets a pair must share to count.")] = 5,
    backfill: Annotated[bool, typer.Option("--backfill/--no-backfill", help="Fill short lists with the most bought items.")] = True,
) -> None:
    """Write the items bought together with each query item, ranked by confidence x sqrt(lift), then (--backfill)
    the most bought items (item_id,complementary_item_id[,title],score,lift,confidence,support,rank,source)."""
    from tailored.jobs import tasks as jobs
    from tailored.pipeline.complementary import COMPLEMENTARY_ITEM_ID, complementary_items
    from tailored.data.io import check_table_path, write_table
    from tailored.rank.explain import with_titles
    from tailored.registry.model_dir import load_model

    check_table_path(output)
    refuse_overwrite({"--output": output}, {"--model-dir": model_dir, "--items": items})
    recommender = load_model(model_dir)
    query = _known_items(recommender, jobs.read_item_ids(items), items, "complements need purchase history")
    frame = complementary_items(recommender, query, k, min_count, backfill)
    write_table(with_titles(frame, recommender.catalogue, COMPLEMENTARY_ITEM_ID), output)
    console.print(f"[green]wrote[/] {len(frame):,} complements for {frame['item_id'].nunique():,} items to {output}")


@app.command()
@handle_errors
def drift(
    interactions: Interactions,
    model_dir: ModelDir,
    window_days: WindowDays = None,
    output: Annotated[Optional[Path], typer.Option("--output", help="Also write the report (.csv/.parquet).")] = None,
) -> None:
    """Population stability of item popularity between the training data and recent interactions (with the noise
    floor of the window's size): says when retraining is due."""
    from tailored.jobs import tasks as jobs
    from tailored.data.io import check_table_path, write_table
    from tailored.monitoring.drift import drift_report, recent_window
    from tailored.registry.model_dir import load_model

    refuse_overwrite({"--output": output and check_table_path(output)}, {"--interactions": interactions,
                                                                          "--model-dir": model_dir})
    report = drift_report(load_model(model_dir), recent_window(jobs.read_valid(interactions), window_days))
    print_table(report.to_frame(), title=f"drift of {interactions} against the training data")
    stdout.print(f"verdict: {report.verdict}")
    if output is not None:
        write_table(report.to_frame(), output)


@app.command()
@handle_errors
def retrain(
    interactions: Interactions,
    model_dir: ModelDir,
    window_days: WindowDays = None,
    output_dir: Annotated[Optional[Path], typer.Option("--output-dir", help="Where to save (default: replace --model-dir).")] = None,
    users: UsersFile = None,
    items: ItemsFile = None,
) -> None:
    """Retrain a model (same algorithm, parameters and stages) on the recent window of an interactions file."""
    from tailored.jobs import tasks as jobs

    refuse_overwrite({"--output-dir": output_dir or model_dir}, {"--interactions": interactions, "--users": users,
                                                                "--items": items})
    with console.status("retraining"):
        recommender = jobs.retrain(interactions, model_dir, window_days, output_dir, users, items)
    console.print(f"[green]saved[/] {recommender.scorer.algorithm} retrained on {recommender.seen_.nnz:,} user-item pairs "
                  f"to {output_dir or model_dir}")


@app.command()
@handle_errors
def embed(
    items: Annotated[Path, typer.Option("--items", help="Items file (item_id + attribute columns).")],
    output: Annotated[Path, typer.Option("--output", help="Parquet file: the items with their embedding columns.")],
    text_columns: Annotated[str, typer.Option("--text-columns", help="Text columns to embed together (comma-separated); '' for none.")] = "title",
    image_column: Annotated[Optional[str], typer.Option("--image-column", help="Column holding image paths.")] = None,
    image_root: Annotated[Optional[Path], typer.Option("--image-root", help="Folder the image paths are relative to.")] = None,
    vectors: Annotated[Optional[Path], typer.Option("--vectors", help="Embeddings from any model: a .npy matrix (rows in the items file's order) or a .npz with item_id and vectors arrays.")] = None,
    vectors_column: Annotated[str, typer.Option("--vectors-column", help="Name of the column the --vectors become.")] = "image_embedding",
) -> None:
    """Add multimodal item features: a MiniLM text embedding, colour-texture image descriptors and/or embeddings
    computed by any other model (offline)."""
    from tailored.jobs import tasks as jobs
    from tailored.data.io import write_table

    if output.suffix.lower() != ".parquet":
        raise ConfigError(f"--output must be a .parquet file (embedding columns hold arrays), got {output}.")
    refuse_overwrite({"--output": output}, {"--items": items, "--vectors": vectors, "--image-root": image_root})
    columns = [name.strip() for name in text_columns.split(",") if name.strip()]
    with progress_bar("embedding") as bar:
        task = bar.add_task("embed", total=None)
        table, failures = jobs.embed_items(items, columns, image_column, image_root,
                                           progress=lambda what, done, total: bar.update(
                                               task, completed=done, total=total, note=f"item {what}"),
                                           vectors=vectors, vectors_column=vectors_column)
    write_table(table, output)
    for row, reason in list(failures.items())[:5]:
        console.print(f"[yellow]warning:[/] item {table['item_id'].iloc[row]!r} (row {row + 2}): {reason}; zero image descriptor")
    if len(failures) > 5:
        console.print(f"[yellow]warning:[/] {len(failures) - 5} more item(s) without a readable image")
    console.print(f"[green]wrote[/] {len(table):,} items with embedding columns to {output}")


@app.command()
@handle_errors
def split(
    interactions: Interactions,
    output_dir: Annotated[Path, typer.Option("--output-dir", help="Folder for train.csv, test.csv[, valid.csv], split.json.")],
    method: Annotated[str, typer.Option("--method", help="per_user, random, leave_last_out, leave_one_out_random, temporal, cold_users, cold_items.")] = "per_user",
    test_fraction: Annotated[Optional[float], typer.Option("--test-fraction")] = None,
    fraction: Annotated[Optional[float], typer.Option("--fraction", help="Share of users/items held out (cold-start splits).")] = None,
    cutoff: Annotated[Optional[str], typer.Option("--cutoff", help="Temporal cut (ISO date or unix seconds).")] = None,
    horizon_days: Annotated[Optional[float], typer.Option("--horizon-days", help="Temporal: test = the H days after the cut.")] = None,
    valid_fraction: Annotated[Optional[float], typer.Option("--valid-fraction", help="Carve a validation set from training only.")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (random splitters; default 42).")] = None,
    users: Annotated[Optional[Path], typer.Option("--users", help="User attributes (user_id + attributes): also write "
                                                  "users_train.csv and users_new.csv, the users only test holds.")] = None,
    items: Annotated[Optional[Path], typer.Option("--items", help="Item attributes (item_id + attributes): also write "
                                                  "items_train.csv and items_new.csv, the items only test holds.")] = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    value_col: ValueCol = "value",
    time_col: TimeCol = "timestamp",
) -> None:
    """Split interactions (frozen to disk for reuse) and prove that no test interaction is in training. With --users
    / --items, their rows are cut in two as well: the new users/items (in test, not in training) for `recommend
    --users/--items`, the others for `train --users/--items`."""
    import pandas as pd

    from tailored.jobs import tasks as jobs
    from tailored.data.columns import ITEM_ID, USER_ID
    from tailored.data.io import PARQUET_SUFFIXES, read_attributes, write_table
    from tailored.split import Split, carve_validation, check_leakage, split_by_name
    from tailored.split.cold_start import attributes_by_part

    written = ["train.csv", "test.csv", "valid.csv", "users.csv", "items.csv", "split.json"] + [
        f"{kind}_{part}{suffix}" for kind in ("users", "items") for part in ("train", "new") for suffix in (".csv", ".parquet")]
    for name in written:  # the files written into --output-dir
        refuse_overwrite({"--output-dir": output_dir / name}, {"--interactions": interactions, "--users": users,
                                                               "--items": items})
    dataset = jobs.load_dataset(interactions, columns=_columns(interactions, user_col, item_col, value_col, time_col))
    attributes = {  # kind -> (table, id column, the suffix its two parts are written with: Parquet stays Parquet)
        kind: (read_attributes(source, column), column, ".parquet" if source.suffix.lower() in PARQUET_SUFFIXES else ".csv")
        for kind, source, column in (("users", users, USER_ID), ("items", items, ITEM_ID)) if source is not None
    }
    settings = {"test_fraction": test_fraction, "fraction": fraction, "cutoff": cutoff, "horizon_days": horizon_days, "seed": seed}
    result = split_by_name(dataset, method, **settings)
    if valid_fraction is not None:
        carved = carve_validation(result, fraction=valid_fraction, seed=42 if seed is None else seed)
        result = Split(carved.train, result.test, carved.test, result.name, result.params, result.dataset_fingerprint)
    leakage = check_leakage(result)
    result.save(output_dir)
    print_table(pd.DataFrame(result.counts).T.reset_index(names="part"), title=f"{method} split")
    console.print(f"[green]no leakage[/] ({leakage}); saved to {output_dir}")
    for kind, (table, column, suffix) in attributes.items():
        trained, new = attributes_by_part(result, table, column)
        write_table(trained, output_dir / f"{kind}_train{suffix}")
        write_table(new, output_dir / f"{kind}_new{suffix}")
        console.print(f"{kind}_train{suffix}: {len(trained):,} {kind} for `train --{kind}`; {kind}_new{suffix}: "
                      f"{len(new):,} new {kind} (in test, not in training) for `recommend --{kind}`")


@app.command()
@handle_errors
def benchmark(
    suite: Annotated[str, typer.Argument(help="Benchmark suite: movielens-100k or movielens-100k-reranking.")],
    data_dir: Annotated[Path, typer.Option("--data-dir", help="The ml-100k folder (u.data, u.item, u1.base, ...).")],
    algorithm: Annotated[Optional[list[str]], typer.Option("--algorithm", help="These algorithms (repeatable); default: all but the torch models.")] = None,
    validation: Annotated[bool, typer.Option("--validation", help="Score on validation carved from each training part.")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", help="Also write the table (.csv/.parquet).")] = None,
) -> None:
    """movielens-100k: every algorithm on the MovieLens protocols P1 (NDCG@10), P2 (HR@10), item cold start
    (Recall@20 vs random), new users' first 5 events as a session, alone and with the users' attributes (NDCG@10)
    and P3 (RMSE), with fit times and epochs. movielens-100k-reranking: the diversity and
    exposure stages' accuracy/coverage trade-off on P1 and their overhead per user (first --algorithm, default ease)."""
    from tailored.benchmarks import movielens as suites
    from tailored.benchmarks.reranking import reranking_tradeoffs
    from tailored.data.io import check_table_path
    from tailored.models.neural.training import reporting_epochs

    if output is not None:
        check_table_path(output)
    start = time.perf_counter()
    part = "validation" if validation else "test"
    if suite == "movielens-100k":
        with progress_bar("benchmark: training", "epoch") as bar, reporting_epochs(epoch_reporter(bar)):
            table = suites.movielens_100k(data_dir, algorithm, validation,
                                          on_row=lambda row: console.print(describe_row(row)))
        for protocol, rows in table.groupby("protocol", sort=False):
            print_table(rows.dropna(axis=1, how="all").drop(columns="protocol").assign(params=rows["params"].astype(str)),
                        title=f"{protocol} ({part})")
        table = table.astype({"params": str})
    elif suite == "movielens-100k-reranking":
        table = reranking_tradeoffs(data_dir, (algorithm or ["ease"])[0], validation=validation,
                                    on_row=lambda row: console.print(describe_tradeoff(row)))
        print_table(table.drop(columns="seconds"), title=f"P1 re-ranking trade-offs ({part})")
    else:
        raise ConfigError(f"Unknown benchmark suite '{suite}'. Valid suites: movielens-100k, movielens-100k-reranking.")
    stdout.print(f"total {time.perf_counter() - start:.1f} s")
    if output is not None:
        from tailored.data.io import write_table

        write_table(table, output)


def describe_row(row: dict[str, Any]) -> str:
    figures = ", ".join(f"{k} {v:.4f}" for k, v in row.items() if isinstance(v, float) and k != "seconds")
    epochs = f", {row['epochs']} epochs" if row.get("epochs") else ""
    return f"{row['protocol']} {row['algorithm']:<11} {figures}  ({row['seconds']:.2f} s{epochs}) {row['params'] or ''}"


def describe_tradeoff(row: dict[str, Any]) -> str:
    return (f"{row['setting']:<28} NDCG@10 {row['ndcg@10']:.4f} ({row['ndcg_change']:+.1%})  coverage@10 "
            f"{row['coverage@10']:.4f} (x{row['coverage_ratio']:.2f})  overhead {row['overhead_ms_per_user']:+.3f} ms/user")


@app.command()
@handle_errors
def trending(
    model_dir: ModelDir,
    output: Output,
    k: Annotated[int, typer.Option("--k", min=1, help="Number of items.")] = 10,
    items: Annotated[Optional[Path], typer.Option("--items", help="Only these items (an item_id column), e.g. one category.")] = None,
    window_days: Annotated[int, typer.Option("--window-days", min=1, help="Recent window, against the days before it.")] = 7,
    min_count: Annotated[int, typer.Option("--min-count", min=1, help="Interactions an item needs in the window.")] = 3,
) -> None:
    """Write the items rising fastest at the end of the training data
    (item_id[,title],score,window_count,expected_count,rank)."""
    import datetime as dt

    from tailored.jobs import tasks as jobs
    from tailored.data.io import check_table_path, write_table
    from tailored.rank.explain import with_titles
    from tailored.registry.model_dir import load_model
    from tailored.pipeline.trending import trending_items

    check_table_path(output)
    refuse_overwrite({"--output": output}, {"--model-dir": model_dir, "--items": items})
    recommender = load_model(model_dir)
    frame = trending_items(recommender, k, window_days, min_count, jobs.read_item_ids(items) if items is not None else None)
    write_table(with_titles(frame, recommender.catalogue), output)
    as_of = dt.datetime.fromtimestamp(recommender.counts_end_, dt.timezone.utc).date()
    console.print(f"[green]wrote[/] {len(frame):,} trending items (last {window_days} days to {as_of}) to {output}")


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


@app.command("benchmark-complementary")
@handle_errors
def benchmark_complementary(
    interactions: Interactions,
    basket_col: Annotated[str, typer.Option("--basket-col", help="Column grouping the interactions into baskets.")] = "basket_id",
    pairs: Annotated[Optional[Path], typer.Option("--pairs", help="Planted pairs (item_id, complement_item_id), e.g. complements.csv of `datasets synthetic`.")] = None,
    event_type: Annotated[Optional[str], typer.Option("--event-type", help="Only rows of this event_type (e.g. purchase).")] = None,
    k: Annotated[int, typer.Option("--k", min=1)] = 10,
    min_count: Annotated[int, typer.Option("--min-count", min=1)] = 5,
) -> None:
    """Complementary items against "most bought" on a temporal split of baskets: hit rate@k of the basket's other
    items and mean lift of the listed pairs (and the planted partners' top-k rate with --pairs)."""
    from tailored.benchmarks.baskets import complementary_benchmark
    from tailored.jobs import tasks as jobs
    from tailored.data.io import read_table

    frame = jobs.read_valid(interactions, jobs.ColumnNames(basket=basket_col))
    if event_type is not None:
        frame = frame[frame["event_type"] == event_type]
    table, partners = complementary_benchmark(frame, read_table(pairs) if pairs is not None else None, k, min_count)
    print_table(table, title=f"complementary items on {interactions} (temporal split of baskets, k={k})")
    if partners is not None:
        stdout.print(f"planted partner in the item's top-{k}: {partners:.4f}")


keys_app = typer.Typer(help="API keys of the service.", no_args_is_help=True)
events_app = typer.Typer(help="The event store.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(events_app, name="events")
DatabaseUrl = Annotated[str, typer.Option("--db", help="Database URL: sqlite:///FILE.db (default tailored.db here) or postgresql://...")]


def open_store(db: str, create: bool = True) -> Any:
    """The event store, pseudonymising user ids when TAILORED_PSEUDONYM_KEY is set (as the service does; a missing
    or wrong key is an error); ``create=False`` (admin commands) refuses a SQLite file that does not exist."""
    from tailored.store import EventStore

    return EventStore(db, os.environ.get("TAILORED_PSEUDONYM_KEY"), create=create)


@keys_app.command("create")
@handle_errors
def keys_create(
    scopes: Annotated[str, typer.Option("--scopes", help="Comma-separated: recommend, events:write, admin.")],
    db: DatabaseUrl = "sqlite:///tailored.db",
) -> None:
    """Create an API key (printed once; only its hash is stored)."""
    key = open_store(db).create_key(scope.strip() for scope in scopes.split(",") if scope.strip())
    stdout.print(key, highlight=False)


@keys_app.command("list")
@handle_errors
def keys_list(db: DatabaseUrl = "sqlite:///tailored.db") -> None:
    """Every API key's id, scopes, creation time and whether it is revoked (secrets are never stored)."""
    print_table(open_store(db, create=False).list_keys(), title="API keys")


@keys_app.command("revoke")
@handle_errors
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id: the part between 'tlr_' and the next '_'.")],
    db: DatabaseUrl = "sqlite:///tailored.db",
) -> None:
    """Revoke a key (audited); running services refuse it within 30 s."""
    open_store(db, create=False).revoke_key(key_id)
    console.print(f"[green]revoked[/] key {key_id}")


@app.command()
@handle_errors
def serve(
    model_dir: Annotated[Optional[Path], typer.Option("--model-dir", help="Model directory written by `tailored train`.")] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="NAME@STAGE from --registry, followed when promoted or rolled back.")] = None,
    registry: Annotated[Optional[Path], typer.Option("--registry", help="Model registry folder (with --model).")] = None,
    db: DatabaseUrl = "sqlite:///tailored.db",
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="One line per request on stderr: method, route template (no ids), status, ms.")] = True,
) -> None:
    """Serve recommendations, events, users and items over HTTP (settings also from TAILORED_* variables). Prints
    "listening on http://HOST:PORT" on stderr once it accepts connections. Each request is one user: native thread
    pools get 1 thread unless TAILORED_NUM_THREADS says otherwise (waking idle threads for a single query costs more
    than it saves)."""
    os.environ.setdefault("TAILORED_NUM_THREADS", "1")
    try:
        import uvicorn
        from threadpoolctl import threadpool_limits

        from tailored.config import num_threads

        from tailored.serve import ServiceSettings, create_app
        from tailored.serve.app import open_service
        from tailored.serve.limits import access
    except ImportError as error:
        raise ConfigError(f'The service needs the serve extra: pip install ".[serve]" in the tailored checkout ({error}).') from error

    if (model is None) == (model_dir is None) or (model is not None and registry is None):
        raise ConfigError("Give --model-dir DIR, or --model NAME@STAGE with --registry DIR.")
    settings = ServiceSettings.from_env(model_dir, db_url=db, model=model, registry=registry)
    if model_dir is not None:
        from tailored.registry.model_dir import read_manifest

        read_manifest(model_dir)  # a missing or damaged model is refused before the database is opened (or created)

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                bound = self.servers[0].sockets[0].getsockname()[1] if self.servers else port
                console.print(f"listening on http://{host}:{bound}", markup=False, highlight=False, soft_wrap=True)

    if access_log:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        access.propagate = False
    with threadpool_limits(num_threads()):
        application = create_app(settings)
        open_service(application)  # a bad model or database: a clear error (exit 2) before the server starts
        server = Server(uvicorn.Config(application, host=host, port=port, log_level="warning", access_log=False,
                                       h11_max_incomplete_event_size=settings.max_header_bytes))
        with contextlib.suppress(KeyboardInterrupt):  # SIGINT or SIGTERM, re-raised once the server has shut down
            server.run()


@app.command("openapi")
@handle_errors
def openapi(output: Annotated[Path, typer.Option("--output", help="JSON file for the service's OpenAPI document.")]) -> None:
    """Write the service's OpenAPI document (the API reference: every route, parameter, body and answer)."""
    from tailored.data.io import write_text
    from tailored.serve import ServiceSettings, create_app

    document = create_app(ServiceSettings(model_dir=Path("model"))).openapi()
    write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", output)
    console.print(f"[green]wrote[/] the OpenAPI document ({len(document['paths'])} paths) to {output}")


@events_app.command("export")
@handle_errors
def events_export(
    output: Output,
    db: DatabaseUrl = "sqlite:///tailored.db",
    items: Annotated[Optional[Path], typer.Option("--items", help="Catalogue file (item_id column) added to the stored items.")] = None,
) -> None:
    """Write the stored events for `tailored train` (user_id,item_id,value,timestamp,event_type, then event_id and
    received_at, which identify each stored event). Events of items not in the catalogue (the stored items plus --items) are held out until the item exists; with no catalogue at
    all, every event is written."""
    import pandas as pd

    from tailored.data.columns import ITEM_ID
    from tailored.data.io import check_table_path, read_attributes, write_table
    from tailored.store.database import EXPORT_COLUMNS

    refuse_overwrite({"--output": check_table_path(output)}, {"--items": items})
    store = open_store(db, create=False)
    catalogue = store.item_ids() | (set(read_attributes(items, ITEM_ID)[ITEM_ID]) if items is not None else set())
    chunks, held_out = [], 0
    for chunk in store.export_events():
        known = chunk[ITEM_ID].isin(catalogue) if catalogue else pd.Series(True, index=chunk.index)
        chunks.append(chunk[known])
        held_out += int((~known).sum())
    frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=EXPORT_COLUMNS)
    write_table(frame, output)
    console.print(f"[green]wrote[/] {len(frame):,} events to {output}"
                  + (f"; held out {held_out:,} event(s) of items not in the catalogue" if held_out else "")
                  + ("" if catalogue else " (no stored items and no --items: every event written)"))


@events_app.command("prune")
@handle_errors
def events_prune(
    days: Annotated[float, typer.Option("--days", help="Retention window: events and exposures older than this go.")],
    db: DatabaseUrl = "sqlite:///tailored.db",
) -> None:
    """Apply the data-retention window (run it daily, e.g. from cron); the deletion is audited."""
    deleted = open_store(db, create=False).prune(days)
    console.print("[green]pruned[/]: " + ", ".join(f"{count} {table}" for table, count in deleted.items()))


@app.command("erase-user")
@handle_errors
def erase_user(
    user_id: Annotated[str, typer.Argument(help="The user to erase.")],
    db: DatabaseUrl = "sqlite:///tailored.db",
) -> None:
    """GDPR erasure: delete the user's events, attributes and exposures, for good; audited without the id."""
    deleted = open_store(db, create=False).erase_user(user_id)
    console.print("[green]erased[/]: " + ", ".join(f"{count} {table}" for table, count in deleted.items()))


models_app = typer.Typer(help="The model registry: versions and stages.", no_args_is_help=True)
app.add_typer(models_app, name="models")
RegistryDir = Annotated[Path, typer.Option("--registry", help="Model registry folder.")]


@models_app.command("register")
@handle_errors
def models_register(registry: RegistryDir, name: Annotated[str, typer.Option("--name")], model_dir: ModelDir) -> None:
    """Add a trained model directory as the next version of NAME."""
    from tailored.registry.versions import ModelRegistry

    stdout.print(ModelRegistry(registry).register(name, model_dir))


@models_app.command("list")
@handle_errors
def models_list(registry: RegistryDir) -> None:
    """Every version: the stages pointing at it, algorithm, creation time (UTC) and key metric (the one a job selected
    it by, else the first recorded; with its 95% interval)."""
    import pandas as pd

    from tailored.registry.versions import ModelRegistry

    rows = [{"name": row["name"], "version": row["version"], "stage": row["stages"], "algorithm": row["algorithm"],
             "created": str(row["created"]).replace("T", " ").replace("+00:00", " UTC"),
             "key metric": key_metric(row["metrics"], row["selected_by"])} for row in ModelRegistry(registry).describe()]
    columns = ["name", "version", "stage", "algorithm", "created", "key metric"]
    print_table(pd.DataFrame(rows, columns=columns), title=f"models in {registry}")


def key_metric(metrics: dict[str, dict[str, float | None]] | None, selected_by: str | None) -> str:
    """``ndcg@10 0.4527 [0.4398, 0.4661]``: the metric a model was selected by (else its first) with its interval, from
    a manifest's ``metrics`` (metric -> value, ci_low, ci_high; None where undefined); "" when none were recorded."""
    if not metrics:
        return ""
    name = selected_by if selected_by in metrics else next(iter(metrics))
    figure = metrics[name]
    text = f"{name} " + ("n/a" if figure.get("value") is None else f"{figure['value']:.4f}")
    if figure.get("ci_low") is not None and figure.get("ci_high") is not None:
        text += f" [{figure['ci_low']:.4f}, {figure['ci_high']:.4f}]"
    return text


@models_app.command("promote")
@handle_errors
def models_promote(registry: RegistryDir, name: Annotated[str, typer.Argument()], version: Annotated[str, typer.Argument()],
                   stage: Annotated[str, typer.Option("--stage")] = "production") -> None:
    """Point NAME@STAGE at VERSION (a serving `--model NAME@STAGE` follows within seconds)."""
    from tailored.registry.versions import ModelRegistry

    ModelRegistry(registry).promote(name, version, stage)
    console.print(f"[green]{name}@{stage}[/] -> {version}")


@models_app.command("rollback")
@handle_errors
def models_rollback(registry: RegistryDir, name: Annotated[str, typer.Argument()],
                    stage: Annotated[str, typer.Option("--stage")] = "production") -> None:
    """Point NAME@STAGE back at its previous version."""
    from tailored.registry.versions import ModelRegistry

    version = ModelRegistry(registry).rollback(name, stage)
    console.print(f"[green]{name}@{stage}[/] -> {version}")


@app.command()
@handle_errors
def batch(
    model_dir: ModelDir,
    k: Annotated[int, typer.Option("--k", min=1, help="Items per user.")] = 10,
    users: Annotated[Optional[Path], typer.Option("--users", help="File with a user_id column.")] = None,
    all_users: Annotated[bool, typer.Option("--all-users", help="Every user of the model.")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", help="Output file (.csv or .parquet), written atomically.")] = None,
    db: Annotated[Optional[str], typer.Option("--db", help="Or append to the batch_recommendations table of this database.")] = None,
    chunk_users: Annotated[int, typer.Option("--chunk-users", min=1, help="Users per chunk (bounds memory).")] = 10_000,
    context: Annotated[Optional[list[str]], typer.Option("--context", help="Request context KEY=VALUE (default date: now).")] = None,
    erasures_from: Annotated[Optional[str], typer.Option("--erasures-from", help="With --output: leave out the users erased in this database (a --db batch always does).")] = None,
) -> None:
    """Personalised lists for CRM campaigns (user_id,item_id[,title],score,rank; a --db table gets no title),
    streamed in chunks with a progress bar."""
    import uuid

    from tailored.jobs import tasks as jobs
    from tailored.data.io import write_chunks
    from tailored.query import parse_context
    from tailored.rank.explain import with_titles
    from tailored.registry.model_dir import load_model

    if (users is None) == (not all_users):
        raise ConfigError("Give exactly one of --users FILE or --all-users.")
    if (output is None) == (db is None):
        raise ConfigError("Give exactly one of --output FILE or --db URL.")
    refuse_overwrite({"--output": output}, {"--model-dir": model_dir, "--users": users})
    user_ids = jobs.read_users(users)[0] if users is not None else None
    erasures = open_store(erasures_from, create=False) if erasures_from is not None else None
    with progress_bar("batch") as bar:
        task = bar.add_task("batch", total=None)
        recommender = load_model(model_dir)
        chunks = jobs.batch_lists(recommender, user_ids, k, chunk_users, context=parse_context(context or []),
                                  progress=lambda done, total: bar.update(task, completed=done, total=total))
        if output is not None:
            if erasures is not None:
                chunks = jobs.without_erased_users(chunks, erasures)
            rows = write_chunks((with_titles(chunk, recommender.catalogue) for chunk in chunks), output)
            console.print(f"[green]wrote[/] {rows:,} recommendations to {output}")
            return
        store, batch_id, rows = open_store(db), uuid.uuid4().hex, 0
        for chunk in chunks:
            store.write_batch(batch_id, chunk)
            rows += len(chunk)
    console.print(f"[green]wrote[/] {rows:,} recommendations to batch {batch_id} of {db}")


@app.command("benchmark-service")
@handle_errors
def benchmark_service(
    model_dir: ModelDir,
    db: Annotated[Optional[str], typer.Option("--db", help="Database URL (default: a fresh SQLite file).")] = None,
    events: Annotated[int, typer.Option("--events", min=1, help="Events posted in batches.")] = 100_000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 1_000,
    rate: Annotated[float, typer.Option("--rate", min=1, help="Recommendation requests per second (open loop).")] = 1_000.0,
    seconds: Annotated[float, typer.Option("--seconds", min=1, help="Length of the load phase.")] = 60.0,
    connections: Annotated[int, typer.Option("--connections", min=1)] = 32,
    event_rate: Annotated[float, typer.Option("--event-rate", min=1, help="Single-event POSTs per second.")] = 600.0,
    phase_seconds: Annotated[float, typer.Option("--phase-seconds", min=1, help="Length of the other timed phases.")] = 10.0,
) -> None:
    """Start `tailored serve` and measure it from outside: batch and single-event ingestion, one-connection latency,
    recommendations at --rate for --seconds (p50/p99 from the load generator, errors, server memory), twice the rate
    (shedding), and the recall@10 of the served ANN index."""
    from tailored.benchmarks.service import service_benchmark

    figures = service_benchmark(model_dir, db, events, batch_size, rate, seconds, connections, event_rate, phase_seconds,
                                say=lambda phase: console.print(f"[dim]{phase}...[/]"))
    for name, value in figures.items():
        if isinstance(value, float):
            shown = f"{value:.4f}" if abs(value) < 10 else f"{value:,.2f}"
        else:
            shown = f"{value:,}" if isinstance(value, int) else str(value)
        stdout.print(f"{name:<34} {shown}")


@app.command("benchmark-durability")
@handle_errors
def benchmark_durability(
    model_dir: ModelDir,
    db: Annotated[Optional[str], typer.Option("--db", help="Database URL (default: a fresh SQLite file).")] = None,
    trials: Annotated[int, typer.Option("--trials", min=1)] = 100,
    clients: Annotated[int, typer.Option("--clients", min=1)] = 4,
) -> None:
    """kill -9 `tailored serve` while clients post events, --trials times, then count acknowledged events lost and
    events stored twice (both must be 0)."""
    from tailored.benchmarks.durability import durability_benchmark

    with progress_bar("kill -9 trials") as progress:
        task = progress.add_task("", total=trials)
        figures = durability_benchmark(model_dir, db, trials, clients,
                                       progress=lambda done, total, acked: progress.update(task, completed=done))
    for name, value in figures.items():
        stdout.print(f"{name:<40} {value:,}")


@app.command("benchmark-ann")
@handle_errors
def benchmark_ann(
    items: Annotated[int, typer.Option("--items", min=10)] = 100_000,
    factors: Annotated[int, typer.Option("--factors", min=2)] = 64,
    queries: Annotated[int, typer.Option("--queries", min=10)] = 1_000,
) -> None:
    """Recall@10 of the approximate (HNSW) item index against exact scoring, and ms per single-user query."""
    import pandas as pd

    from tailored.benchmarks.service import ann_benchmark

    print_table(pd.DataFrame(ann_benchmark(items, factors, queries)), title=f"{items:,} items x {factors} factors")
