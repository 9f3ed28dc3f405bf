"""What every command shares: the consoles, error handling (exit codes), progress reporting, parameters, the
overwrite guard and tables."""

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
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from tailored.errors import ConfigError, TailoredError

if TYPE_CHECKING:  # the command line starts without pandas
    import pandas as pd

    from tailored.jobs.tune import TrialReport, TuneResult

LOG_WIDTH = 100_000
"""Columns of a console writing to a file, a pipe or a CI log: wide enough never to wrap or cut a table or a line."""
EXIT_BAD_INPUT = 2


def _console(stderr: bool) -> Console:
    """On a terminal rich fits the window; elsewhere it would assume 80 columns and cut tables: there, unless COLUMNS
    says otherwise, lines keep their full width."""
    stream = sys.stderr if stderr else sys.stdout
    unbounded = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=LOG_WIDTH if unbounded else None)


console = _console(stderr=True)
stdout = _console(stderr=False)


def say(text: str) -> None:
    """A plain line on stderr (no markup, never wrapped)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def warn(text: str) -> None:
    """``warning: text`` on stderr."""
    console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)


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
        say(f"{self.description}: {unit}{done}{note}, {task.elapsed or 0:.0f} s")


def progress_bar(description: str, unit: str = "") -> Progress:
    """A live bar on a terminal, `LogProgress` lines elsewhere. Updates may carry a ``note`` (the log line shows it)."""
    if not sys.stderr.isatty():
        return LogProgress(description, unit)
    return Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn(),
                    console=console, transient=True)


@contextlib.contextmanager
def counting(description: str, unit: str = "") -> Iterator[Callable[[int, int], None]]:
    """A `progress_bar` with one task, as a ``(done, total)`` callback (the jobs' progress argument)."""
    with progress_bar(description, unit) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@contextlib.contextmanager
def step_reporter(description: str) -> Iterator[Callable[[str], None]]:
    """Reports the steps of a long job: a spinner naming the current one on a terminal; in a log or a CI job (stderr
    not a terminal), one plain line per step, ``description: step, elapsed``."""
    if sys.stderr.isatty():
        with console.status(description) as status:
            yield status.update
        return
    start = time.monotonic()
    yield lambda step: say(f"{description}: {step}, {time.monotonic() - start:.0f} s")


def epoch_reporter(bar: Progress) -> Callable[[int, int, float | None, str], None]:
    """Moves a task of ``bar`` with the neural training loops' epochs, noting their stage and held-out score."""
    task = bar.add_task("train", total=None)

    def report(epoch: int, epochs: int, score: float | None, stage: str) -> None:
        recall = "" if score is None else f"held-out recall {score:.4f}"
        bar.update(task, completed=epoch, total=epochs, note=", ".join(part for part in (stage, recall) if part))

    return report


def trial_reporter(trials: int, metric: str) -> Callable[[TrialReport], None]:
    """`tailored tune`'s line per trial: its parameters, its score, the best so far, seconds since the start."""
    def report(trial: TrialReport) -> None:
        params = " ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                          for key, value in trial.params.items())
        say(f"trial {trial.number + 1}/{trials} {params}: {metric} {trial.value:.4f} (best {trial.best_value:.4f}, "
            f"trial {trial.best_number + 1}) {trial.elapsed:.1f} s")

    return report


def show_tuning(result: TuneResult, output: Path) -> None:
    """`tailored tune`'s last line: the defaults' score, the best and its parameters, where they were written."""
    console.print(f"validation ({result.validation}) {result.metric}: defaults {result.default_value:.4f} -> best "
                  f"{result.best_value:.4f} with {result.best_params}; written to {output}")


def parse_params(values: list[str] | None, params_file: Path | None = None, option: str = "--param") -> dict[str, Any]:
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
            raise ConfigError(f"{option} expects NAME=VALUE, got {value!r}.")
        params[name.strip()] = raw.strip()
    return params


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
                raise ConfigError(f"{output_option} {output} {relation} the input {input_option} {path}: writing it "
                                  "would destroy the input. Choose another output path.")


def exactly_one(first: object, second: object, message: str) -> None:
    """A ConfigError with ``message`` unless exactly one of the two options is given (None or False: not given)."""
    if (first is None or first is False) == (second is None or second is False):
        raise ConfigError(message)


def print_table(frame: pd.DataFrame, title: str | None = None, digits: int = 4) -> None:
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), justify="right" if frame[column].dtype.kind in "fiu" else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*(f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row))
    stdout.print(table)
