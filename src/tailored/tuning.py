"""Hyperparameter search with Optuna on a validation split carved from the training data only."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd

from tailored.data.dataset import Dataset
from tailored.data.transforms import WEIGHTINGS
from tailored.errors import ConfigError
from tailored.eval.evaluator import ranked_lists
from tailored.eval.metrics import mae, metric, rmse
from tailored.models.base import Choice, Float, Int, params_of, scorer_class
from tailored.pipeline import Recommender, build_recommender
from tailored.split import Split, carve_validation

logger = logging.getLogger(__name__)

RATING_METRICS = {"rmse": rmse, "mae": mae}


@dataclass(frozen=True)
class TuneResult:
    algorithm: str
    metric: str
    best_value: float
    best_params: dict[str, Any]
    default_value: float
    trials: pd.DataFrame
    validation: str


def validation_method(metric_name: str) -> str:
    """The split that fits the metric: random for rating error, leave-last-out for hit ratio, per user otherwise."""
    name = metric_name.lower().split("@")[0]
    return {"rmse": "random", "mae": "random", "hr": "leave_last_out"}.get(name, "per_user")


def search_space(algorithm: str) -> dict[str, Float | Int | Choice]:
    """The algorithm's own ranges plus, for implicit-feedback scorers, the interaction weighting."""
    cls = scorer_class(algorithm)
    space = dict(getattr(cls, "search_space", {}))
    if not cls.explicit:
        space["weighting"] = Choice(WEIGHTINGS)
    return space


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
    on_trial: Callable[[int, float], None] | None = None,
) -> TuneResult:
    """Search ``algorithm``'s parameters (the defaults are the first trial) on a validation split of ``dataset``."""
    name = metric_name.lower()
    if name not in RATING_METRICS:
        metric(name)  # validates the name early
    elif not scorer_class(algorithm).explicit:
        raise ConfigError(f"Metric '{name}' measures rating predictions, but '{algorithm}' ranks items; tune it on a "
                          "ranking metric such as ndcg@10, or tune an explicit algorithm (mf) on rmse.")
    method = validation or validation_method(name)
    split = carve_validation(dataset, method=method, seed=seed)
    space = {k: v for k, v in search_space(algorithm).items() if k not in (fixed or {})}
    if not space:
        raise ConfigError(f"Algorithm '{algorithm}' has no tunable parameters.")
    minimise = name in RATING_METRICS
    defaults = params_of(build_recommender(algorithm, {}).scorer) | {"weighting": "raw"}

    def objective(trial: optuna.Trial) -> float:
        params = {key: _suggest(trial, key, spec) for key, spec in space.items()}
        value = score_on(build_recommender(algorithm, (fixed or {}) | params), split, name)
        if on_trial is not None:
            on_trial(trial.number, value)
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize" if minimise else "maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({k: defaults[k] for k in space if k in defaults and _admits(space[k], defaults[k])})
    study.optimize(objective, n_trials=trials)
    frame = study.trials_dataframe(attrs=("number", "value", "params"))
    return TuneResult(
        algorithm=algorithm,
        metric=name,
        best_value=float(study.best_value),
        best_params=(fixed or {}) | dict(study.best_params),
        default_value=float(study.trials[0].value),
        trials=frame,
        validation=method,
    )


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
