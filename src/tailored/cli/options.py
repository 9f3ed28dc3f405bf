"""Options shared by several commands, and the parsing of the interaction columns and stages they name."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tailored.errors import DataError

if TYPE_CHECKING:  # imported when used: the command line starts without pandas
    from tailored.data.quality import QualityRules
    from tailored.jobs.tasks import ColumnNames
    from tailored.query import Context
    from tailored.rank import Reranker, Stage

Interactions = Annotated[Path, typer.Option("--interactions", help="Interactions file (.csv or .parquet).")]
UsersFile = Annotated[Path | None, typer.Option("--users", help="User attributes file (user_id + attributes).")]
ItemsFile = Annotated[Path | None, typer.Option("--items", help="Item attributes file (item_id + attributes).")]
UserCol = Annotated[str, typer.Option("--user-col", help="Column holding user ids.")]
ItemCol = Annotated[str, typer.Option("--item-col", help="Column holding item ids.")]
ValueCol = Annotated[str, typer.Option("--value-col", help="Column holding the value (rating, count); 1 if absent.")]
TimeCol = Annotated[str, typer.Option("--time-col", help="Column holding timestamps (unix seconds or ISO dates).")]
ValidationMethod = Annotated[str | None, typer.Option(
    "--validation", help="Validation split method: per_user, random, leave_last_out, temporal, ... (default: fits the "
                         "metric).")]
FixedParams = Annotated[list[str] | None, typer.Option("--param", help="Parameter held fixed NAME=VALUE.")]
TuneTimeout = Annotated[float | None, typer.Option(
    "--timeout", help="Start no trial after this many seconds (the running one finishes).")]
ModelDir = Annotated[Path, typer.Option("--model-dir", help="Model directory written by `tailored train`.")]
Output = Annotated[Path, typer.Option("--output", help="Output file (.csv or .parquet).")]
QueryItems = Annotated[Path, typer.Option(
    "--items", help="Query items: an item_id column (attribute columns describe new items for `similar`).")]
PerItem = Annotated[int, typer.Option("--k", min=1, help="Items per query item.")]
StageOption = Annotated[list[str] | None, typer.Option(
    "--stage", help="Stage NAME or NAME:KEY=VALUE,... (repeatable; see `tailored stages`).")]
PipelineOption = Annotated[Path | None, typer.Option(
    "--pipeline", help="TOML pipeline spec: [[stage]] tables in order, and the trained algorithm's parameters in "
                       "a table named after it ([ranker]).")]
WindowDays = Annotated[float | None, typer.Option("--window-days", help="Only the last N days of the interactions.")]
ContextOption = Annotated[list[str] | None, typer.Option(
    "--context", help="Request context KEY=VALUE (repeatable): date=2026-12-15T19:30, lat=, lon=, radius_km=, "
                      "recent=ID|ID, device=. Default date: now.")]
RuleOption = Annotated[list[str] | None, typer.Option(
    "--rule", help="Quality rule NAME=VALUE, e.g. min_value=1, max_count_zscore=7.")]
CheckOption = Annotated[bool, typer.Option(
    "--check/--no-check", help="Apply the quality rules (as `tailored check` and `tailored run` do): rejected rows are "
                               "left out and kept, with their reasons, in rejected.csv in the model directory, beside "
                               "the report (quality.json).")]
DatabaseUrl = Annotated[str, typer.Option(
    "--db", help="Database URL: sqlite:///FILE.db (default tailored.db here) or postgresql://...")]


def columns(interactions: Path, user_col: str, item_col: str, value_col: str, time_col: str,
            basket_col: str | None = None) -> ColumnNames:
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


def quality_rules(options: list[str] | None) -> QualityRules:
    """The quality rules, defaults changed by ``--rule NAME=VALUE`` options."""
    from tailored.cli.common import parse_params
    from tailored.config import build_dataclass
    from tailored.data.quality import QualityRules

    return build_dataclass(QualityRules, parse_params(options, option="--rule"), "quality rule")


def stages(options: list[str] | None, pipeline: Path | None) -> list[Stage | Reranker]:
    """Stages from ``--stage`` options, then from a ``--pipeline`` spec."""
    from tailored.rank.specs import load_pipeline, parse_stage_option, stage_from_entry

    parsed = [stage for option in options or [] for stage in stage_from_entry(parse_stage_option(option), Path.cwd())]
    return parsed + (load_pipeline(pipeline) if pipeline is not None else [])


def pipeline_params(pipeline: Path | None, algorithm: str) -> dict[str, Any]:
    """The ``[algorithm]`` table of a ``--pipeline`` spec (what ``--param`` and ``--params-file`` override)."""
    from tailored.rank.specs import algorithm_params

    return {} if pipeline is None else algorithm_params(pipeline, algorithm)


def context(options: list[str] | None) -> Context:
    """The request context of ``--context KEY=VALUE`` options."""
    from tailored.query import parse_context

    return parse_context(options or [])
