"""Hyperparameter search with Optuna on a validation split carved from the training data only."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd

from tailored.data.dataset import Dataset
from tailored.data.transforms import resolve_weighting
from tailored.errors import ConfigError
from tailored.eval.evaluator import ranked_lists
from tailored.eval.metrics import mae, metric, rmse
from tailored.models.base import Choice, Float, Int, params_of, scorer_class
from tailored.models.ease import sharing_spectra
from tailored.pipeline.recommender import Recommender, build_recommender
from tailored.pipeline.settings import settings_space
from tailored.split import Split, carve_validation

logger = logging.getLogger(__name__)

RATING_METRICS = {"rmse": rmse, "mae": mae}
RANDOM_TRIALS = 5
"""Random trials after the defaults before TPE models where the good parameters lie."""


@dataclass(frozen=True)
class TuneResult:
    algorithm: str
    metric: str
    best_value: float
    best_params: dict[str, Any]
    default_value: float
    """The defaults' score, with the weighting ``auto`` chooses for the carved training data (trial 0)."""
    trials: pd.DataFrame
    validation: str


@dataclass(frozen=True)
class TrialReport:
    """One finished trial, as `tune` reports it: the parameters tried, its score, the best so far, seconds since
    the search started."""

    number: int
    params: dict[str, Any]
    value: float
    best_value: float
    best_number: int
    elapsed: float


def validation_method(metric_name: str) -> str:
    """The split that fits the metric: random for rating error, leave-last-out for hit ratio, per user otherwise."""
    name = metric_name.lower().split("@")[0]
    return {"rmse": "random", "mae": "random", "hr": "leave_last_out"}.get(name, "per_user")


def search_space(algorithm: str, train: Dataset | None = None) -> dict[str, Float | Int | Choice]:
    """The algorithm's own ranges (narrowed to what ``train`` allows, where the scorer says so: ``space_for``)
    plus, for implicit-feedback scorers, the Recommender settings declared tunable (`settings_space`: the
    interaction weighting)."""
    cls = scorer_class(algorithm)
    narrowed = getattr(cls, "space_for", None)
    space = dict(narrowed(train) if narrowed is not None and train is not None else getattr(cls, "search_space", {}))
    return space if cls.explicit else space | settings_space()


def score_on(recommender: Recommender, split: Split, metric_name: str) -> float:
    """Fit on ``split.train`` and measure ``metric_name`` on ``split.test``."""
    recommender.fit(split.train)
    name = metric_name.lower()
    if name in RATING_METRICS:
        test = split.test.to_frame()
        return RATING_METRICS[name](recommender.predict(test["user_id"], test["item_id"]), test["value"])
    chosen = metric(name)
    return chosen.value(ranked_lists(recommender, split.train, split.test, chosen.k))


def tune(
    dataset: Dataset,
    algorithm: str,
    metric_name: str = "ndcg@10",
    trials: int = 30,
    seed: int = 42,
    validation: str | None = None,
    fixed: dict[str, Any] | None = None,
    on_trial: Callable[[TrialReport], None] | None = None,
    timeout: float | None = None,
) -> TuneResult:
    """Search ``algorithm``'s parameters on a validation split of ``dataset``; no trial starts after ``timeout``
    seconds (the first always runs). The first trials are the defaults with each weighting (the one ``auto`` chooses
    first; only that one when every pair has the same value), so the best is never below the defaults; work is
    shared across trials (EASE: one eigendecomposition per weighting)."""
    name = metric_name.lower()
    if name not in RATING_METRICS:
        metric(name)  # validates the name early
    elif not scorer_class(algorithm).explicit:
        raise ConfigError(f"Metric '{name}' measures rating predictions, but '{algorithm}' ranks items; tune it on a "
                          "ranking metric such as ndcg@10, or tune an explicit algorithm (mf) on rmse.")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"timeout must be a positive number of seconds, got {timeout}.")
    method = validation or validation_method(name)
    split = carve_validation(dataset, method=method, seed=seed)
    fixed = dict(fixed or {})
    if "weighting" not in fixed and "weighting" in search_space(algorithm) and _constant_values(split.train):
        fixed["weighting"] = resolve_weighting("auto", split.train, explicit=False)[0]
    space = {k: v for k, v in search_space(algorithm, split.train).items() if k not in fixed}
    if not space:
        raise ConfigError(f"Algorithm '{algorithm}' has no tunable parameters.")

    def objective(params: dict[str, Any]) -> float:
        return score_on(build_recommender(algorithm, fixed | params), split, name)

    with sharing_spectra():
        return search(objective, space, default_trials(algorithm, space, split.train, fixed), algorithm=algorithm,
                      metric_name=name, trials=trials, seed=seed, fixed=fixed, validation=method, on_trial=on_trial,
                      timeout=timeout)


def search(objective: Callable[[dict[str, Any]], float], space: dict[str, Float | Int | Choice],
           starts: list[dict[str, Any]], *, algorithm: str, metric_name: str, trials: int, seed: int,
           fixed: dict[str, Any], validation: str, on_trial: Callable[[TrialReport], None] | None = None,
           timeout: float | None = None) -> TuneResult:
    """Optuna's TPE over ``space``: the ``starts`` first (the defaults: the first always runs, whatever the
    timeout), `RANDOM_TRIALS` random ones, then TPE; ``objective`` scores a trial's parameters on validation data
    (minimised for rating errors, maximised otherwise). Shared by `tune` and the Spark engine's tuning."""
    minimise = metric_name in RATING_METRICS
    start = time.perf_counter()

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_trial is not None and trial.value is not None:
            best = study.best_trial
            on_trial(TrialReport(trial.number, trial.params, trial.value, best.value, best.number,
                                 time.perf_counter() - start))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=len(starts) + RANDOM_TRIALS)
    study = optuna.create_study(direction="minimize" if minimise else "maximize", sampler=sampler)
    for params in starts:
        study.enqueue_trial(params)

    def run(trial: optuna.Trial) -> float:
        return objective({key: _suggest(trial, key, spec) for key, spec in space.items()})

    study.optimize(run, n_trials=1, callbacks=[report])  # the defaults, whatever the timeout
    left = None if timeout is None else timeout - (time.perf_counter() - start)
    if trials > 1 and (left is None or left > 0):
        study.optimize(run, n_trials=trials - 1, timeout=left, callbacks=[report])
    frame = study.trials_dataframe(attrs=("number", "value", "params", "state"))
    frame = frame[frame["state"] == "COMPLETE"].drop(columns="state").reset_index(drop=True)  # not the queued ones
    return TuneResult(
        algorithm=algorithm,
        metric=metric_name,
        best_value=float(study.best_value),
        best_params=fixed | dict(study.best_params),
        default_value=float(study.trials[0].value),
        trials=frame,
        validation=validation,
    )


def default_trials(algorithm: str, space: dict[str, Float | Int | Choice], train: Dataset,
                   fixed: dict[str, Any]) -> list[dict[str, Any]]:
    """The defaults as trials: one per weighting in ``space``, the weighting ``auto`` picks for ``train`` first."""
    recommender = build_recommender(algorithm, fixed)
    defaults = {k: v for k, v in params_of(recommender.scorer).items() if k in space and _admits(space[k], v)}
    if "weighting" not in space:
        return [defaults]
    chosen, _ = resolve_weighting(recommender.weighting, train, recommender.scorer.explicit)
    options = space["weighting"].options  # type: ignore[union-attr]
    return [defaults | {"weighting": w} for w in sorted(options, key=lambda w: w != chosen)]


def _constant_values(train: Dataset) -> bool:
    """Whether every (user, item) pair has the same total: then the weightings differ by a constant factor only
    (which ``reg`` or a cosine absorbs), so the search keeps ``auto``'s choice and spends its trials elsewhere."""
    totals = train.matrix().data
    return bool(totals.size) and bool(np.ptp(totals) == 0)


def _suggest(trial: optuna.Trial, key: str, spec: Float | Int | Choice) -> Any:
    if isinstance(spec, Float):
        return trial.suggest_float(key, spec.low, spec.high, log=spec.log)
    if isinstance(spec, Int):
        return trial.suggest_int(key, spec.low, spec.high, log=spec.log)
    return trial.suggest_categorical(key, list(spec.options))


def _admits(spec: Float | Int | Choice, value: Any) -> bool:
    if value is None:
        return False
    if isinstance(spec, Choice):
        return value in spec.options
    return bool(spec.low <= value <= spec.high)
