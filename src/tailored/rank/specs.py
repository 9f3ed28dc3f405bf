"""Stages from the command line and from a TOML pipeline spec.

```toml
[[stage]]
name = "seasonal"          # any stage of `tailored stages`; the other keys are its parameters
strength = 3.0
[[stage]]
name = "calendar"
file = "calendar.toml"     # calendar and rules read their own file (relative to the spec)
[[stage]]
name = "diversity"
diversity = 0.3
[ranker]                   # a table named after an algorithm: its parameters when that algorithm is trained
retrievers = "ease,als"
context = "auto,hour,weekday"
```
Stages that learn from the interactions (``learns``: seasonal, time-of-day, recent-activity...) belong to training;
the others (rules, calendar, location, diversity...) can also be added to a trained model at request time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tailored.config import read_toml
from tailored.errors import ConfigError
from tailored.models.base import algorithm_names
from tailored.rank.base import STAGES, Reranker, Stage, create_stage

FILE_STAGES = ("calendar", "rules")
CONTEXT_STAGES = ("seasonal", "time-of-day", "season-cap")
"""Learned by every `tailored train` unless told otherwise: they change nothing without a yearly or daily pattern
(too short a history, or no item departing from the catalogue's curve) nor for a request without a date; items in
season take at most half of each list (`season-cap`)."""


def load_pipeline(path: str | Path) -> list[Stage | Reranker]:
    """The stages of a TOML pipeline spec, in order; errors name the file, the stage's line and the key."""
    path = Path(path)
    document, text = read_toml(path, "Pipeline spec")
    unknown = sorted(set(document) - {"stage", *algorithm_names()})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key(s) {unknown}; a pipeline spec is a list of [[stage]] tables "
                          "and tables of algorithm parameters named after an algorithm of `tailored algorithms` "
                          "([ranker]).")
    headers = [number for number, line in enumerate(text.splitlines(), 1)
               if line.strip().replace(" ", "") == "[[stage]]"]
    stages: list[Stage | Reranker] = []
    for position, entry in enumerate(document.get("stage", [])):
        where = f"{path}, line {headers[position] if position < len(headers) else '?'} ([[stage]] #{position + 1})"
        try:
            stages += stage_from_entry(dict(entry), path.parent)
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from error
    return stages


def algorithm_params(path: str | Path, algorithm: str) -> dict[str, Any]:
    """The parameters of ``algorithm`` in a pipeline spec: its table (``[ranker]``), empty when it has none."""
    path = Path(path)
    table = read_toml(path, "Pipeline spec")[0].get(algorithm, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: '{algorithm}' must be a table of parameters ([{algorithm}] then NAME = VALUE "
                          "lines), not a value.")
    return table


def stage_from_entry(entry: dict[str, Any], base_dir: Path) -> list[Stage | Reranker]:
    """One [[stage]] table (or ``--stage`` option): ``name`` plus parameters, or ``file`` for calendar and rules."""
    name = entry.pop("name", None)
    if name is None:
        raise ConfigError(f"key 'name' is missing. Valid stages: {', '.join(STAGES.names())}.")
    if name in FILE_STAGES:
        return load_stage_file(name, base_dir / _file(entry, name), entry)
    return [create_stage(name, entry)]


def load_stage_file(name: str, path: Path, options: dict[str, Any] | None = None) -> list[Stage | Reranker]:
    from tailored.rank.calendar import load_calendar
    from tailored.rank.rules import load_rules

    options = options or {}
    if name == "calendar":
        builtin = options.pop("builtin", True)
        if options:
            raise ConfigError(f"unknown key(s) {sorted(options)} for stage 'calendar'; valid: file, builtin.")
        return [load_calendar(path, builtin=bool(builtin))]
    if options:
        raise ConfigError(f"unknown key(s) {sorted(options)} for stage 'rules'; valid: file.")
    return load_rules(path)


def parse_stage_option(text: str) -> dict[str, Any]:
    """``name`` or ``name:key=value,key=value`` (``--stage`` on the command line)."""
    name, _, settings = text.partition(":")
    entry: dict[str, Any] = {"name": name.strip()}
    for pair in filter(None, (part.strip() for part in settings.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--stage expects NAME or NAME:KEY=VALUE,KEY=VALUE, got {text!r}.")
        entry[key.strip()] = value.strip()
    return entry


def with_context_stages(stages: list[Stage | Reranker]) -> list[Stage | Reranker]:
    """``CONTEXT_STAGES`` not already in ``stages`` first (default parameters), then ``stages``."""
    named = {getattr(stage, "stage", None) for stage in stages}
    return [create_stage(name) for name in CONTEXT_STAGES if name not in named] + list(stages)


def check_request_time(stages: list[Stage | Reranker]) -> None:
    """Stages added to a trained model must not need the training data."""
    for stage in stages:
        if getattr(stage, "learns", False):
            raise ConfigError(f"Stage '{stage.stage}' learns from the training interactions: add it when training "  # type: ignore[union-attr]
                              f"(tailored train --stage {stage.stage}).")  # type: ignore[union-attr]


def _file(entry: dict[str, Any], name: str) -> str:
    if "file" not in entry:
        raise ConfigError(f"stage '{name}' needs key 'file' (its TOML file).")
    return str(entry.pop("file"))


def describe_stages() -> list[tuple[str, str, str]]:
    """(name, kind, first docstring paragraph) of every stage."""
    import sys

    rows = []
    for name in STAGES.names():
        cls = STAGES[name]
        summary = " ".join((sys.modules[cls.__module__].__doc__ or "").strip().split("\n\n")[0].split())
        rows.append((name, "re-ranker" if hasattr(cls, "rerank") else "adjuster", summary))
    return rows
