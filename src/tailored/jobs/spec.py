"""TOML job specs: what to decide before modelling (scope, history, events, quality, split, algorithms, metrics).

A spec is data: `load_spec` validates it (unknown keys are errors that list the valid ones) and `dump_spec` writes it
back, so every spec round-trips. `configs/*.toml` are runnable examples documented key by key.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from tailored.config import build_dataclass, read_toml
from tailored.data.quality import QualityRules
from tailored.data.synthetic import generate_retail
from tailored.errors import ConfigError


@dataclass
class DataSpec:
    """Where the data comes from and which part of it is in scope."""

    interactions: str | None = None
    users: str | None = None
    items: str | None = None
    synthetic: dict[str, Any] | None = None
    user_col: str = "user_id"
    item_col: str = "item_id"
    value_col: str = "value"
    time_col: str = "timestamp"
    event_col: str = "event_type"
    event_weights: dict[str, float] | None = None
    history_days: int | None = None
    min_user_interactions: int = 1
    min_item_interactions: int = 1


@dataclass
class SplitSpec:
    """The split; settings left out take the splitter's defaults (e.g. test_fraction 0.2 for per_user)."""

    method: str = "per_user"
    test_fraction: float | None = None
    fraction: float | None = None
    seed: int | None = None
    cutoff: str | None = None
    horizon_days: float | None = None


@dataclass
class EvaluateSpec:
    """How the models are evaluated (and saved)."""

    exclude_seen: bool = True
    """False: every model ranks the items a user already took too, so that repurchases in the test split can be hit
    (the figures are labelled so); the saved model keeps the setting, so the figures describe it."""


@dataclass
class AlgorithmSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobSpec:
    """A whole job: `tailored run SPEC` runs check -> split -> train -> evaluate -> save."""

    data: DataSpec
    split: SplitSpec = field(default_factory=SplitSpec)
    evaluate: EvaluateSpec = field(default_factory=EvaluateSpec)
    algorithms: list[AlgorithmSpec] = field(
        default_factory=lambda: [AlgorithmSpec("popularity"), AlgorithmSpec("ease")])
    metrics: list[str] = field(default_factory=lambda: ["ndcg@10", "recall@10", "hr@10", "coverage@10"])
    quality: dict[str, Any] = field(default_factory=dict)
    output: str = "runs/job"
    select_by: str = "ndcg@10"
    show_users: int = 3
    k: int = 10
    engine: str = "local"
    """Where the job runs: "local" (this process) or "spark" (`tailored.spark.jobs.run_spark_job`)."""
    spark: dict[str, Any] = field(default_factory=dict)
    """With engine = "spark": ``{master = "local[*]", conf = {KEY = "VALUE"}}``."""
    base_dir: str = "."


ENGINES = ("local", "spark")
SECTIONS = {"data": DataSpec, "split": SplitSpec, "evaluate": EvaluateSpec}
NOT_IN_JOB = ("data", "split", "evaluate", "algorithms", "base_dir")


def parse_spec(document: dict[str, Any], base_dir: str | Path = ".") -> JobSpec:
    """Validate a spec document: unknown sections, keys, quality rules and synthetic settings are errors."""
    document = dict(document)
    job = dict(document.pop("job", {}))
    job_keys = sorted(f.name for f in dataclasses.fields(JobSpec) if f.name not in NOT_IN_JOB)
    unknown = sorted(set(job) - set(job_keys))
    if unknown:
        raise ConfigError(f"Unknown key(s) {unknown} in [job]; valid keys: {job_keys} "
                          "(data, split, evaluate and algorithms are sections of their own).")
    if "quality" in document:  # a top-level [quality] table is the job's quality rules
        job["quality"] = document.pop("quality")
    sections = {name: build_dataclass(cls, document.pop(name, {}), name) for name, cls in SECTIONS.items()}
    algorithms = [build_dataclass(AlgorithmSpec, entry, "algorithms") for entry in document.pop("algorithms", [])]
    if document:
        raise ConfigError(f"Unknown section(s) {sorted(document)}; valid: job, data, split, evaluate, algorithms, "
                          "quality.")
    spec = build_dataclass(JobSpec, {**job, **sections, "base_dir": str(base_dir)}, "job")
    if algorithms:
        spec.algorithms = algorithms
    if spec.data.interactions is None and spec.data.synthetic is None:
        raise ConfigError("[data] needs `interactions = \"FILE\"` or a `[data.synthetic]` table.")
    rules = build_dataclass(QualityRules, spec.quality, "quality")
    spec.quality = {key: getattr(rules, key) for key in spec.quality}
    if spec.data.synthetic is not None:
        accepted = sorted(inspect.signature(generate_retail).parameters)
        unknown = sorted(set(spec.data.synthetic) - set(accepted))
        if unknown:
            raise ConfigError(f"Unknown key(s) {unknown} in [data.synthetic]; valid keys: {accepted}.")
    _check_work(spec)
    return spec


def _check_work(spec: JobSpec) -> None:
    """What a job would otherwise find wrong only after reading, checking and splitting the data: the split method,
    each algorithm's name and parameters, the metric names (and that they apply to every algorithm) and select_by."""
    from tailored.eval.evaluator import parse_metrics
    from tailored.pipeline.recommender import build_recommender
    from tailored.split.registry import SPLITTERS

    if spec.engine not in ENGINES:
        raise ConfigError(f"[job] engine = '{spec.engine}' is unknown; valid: {', '.join(ENGINES)}.")
    if spec.split.method not in SPLITTERS:
        raise ConfigError(f"[split] method '{spec.split.method}' is unknown; valid methods: {', '.join(SPLITTERS)}.")
    try:
        ranking, rating = parse_metrics(spec.metrics)
    except ConfigError as error:
        raise ConfigError(f"[job] metrics: {error}") from None
    for position, algorithm in enumerate(spec.algorithms, start=1):
        try:
            scorer = type(build_recommender(algorithm.name, algorithm.params).scorer)
            parse_metrics(spec.metrics, scorer)
        except ConfigError as error:
            raise ConfigError(f"[[algorithms]] number {position} ('{algorithm.name}'): {error}") from None
    names = [m.name for m in [*ranking, *rating]]
    if spec.select_by not in names:
        raise ConfigError(f"[job] select_by = '{spec.select_by}' is not one of the job's metrics {names}; pick one.")


def load_spec(path: str | Path) -> JobSpec:
    path = Path(path)
    return parse_spec(read_toml(path, "Job spec")[0], base_dir=path.parent)


def dump_spec(spec: JobSpec) -> str:
    """The spec as TOML; `parse_spec(tomllib.loads(dump_spec(s)))` gives `s` back.

    TOML has no null: unset settings are left out, and a None inside [quality] or algorithm params (a rule turned
    off) is written as the string "none", which reads back as None.
    """
    document = _without_none(dataclasses.asdict(spec))
    document["job"] = {k: document.pop(k) for k in list(document) if k not in NOT_IN_JOB}
    document["job"]["quality"] = _none_as_text(spec.quality)
    document["algorithms"] = [{"name": a.name, "params": _none_as_text(a.params)} for a in spec.algorithms]
    document.pop("base_dir")
    return tomli_w.dumps(document)


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def _none_as_text(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: "none" if v is None else v for k, v in settings.items()}


def resolve(spec: JobSpec, path: str | None) -> Path | None:
    """A path of the spec, relative to the spec file's folder."""
    return None if path is None else Path(spec.base_dir) / path
