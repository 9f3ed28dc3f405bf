"""`tailored spark tune`: the local `tune` (Optuna's TPE from the defaults, on a validation split carved from the
training data only) with each trial trained, ranked and measured on Spark: MLlib ALS (`spark.als`), top-k for the
validation users (`spark.scoring`), the metric (`spark.metrics`). The carve is the Spark splitter's, so the same seed
gives the same validation rows as the local `tune` on the same data."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tailored.errors import ConfigError
from tailored.eval.metrics import metric
from tailored.jobs.tune import RATING_METRICS, TrialReport, TuneResult, search, search_space, validation_method
from tailored.models.base import params_of
from tailored.pipeline.recommender import build_recommender
from tailored.spark.als import WEIGHTINGS, resolve_weighting, train_als
from tailored.spark.metrics import evaluate
from tailored.spark.scoring import recommend_all
from tailored.spark.split import split_by_name

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

ALGORITHM = "als"
FRACTION = 0.2
"""The validation share, as `carve_validation`'s default."""


def tune_als(df: DataFrame, metric_name: str = "ndcg@10", trials: int = 20, seed: int = 42,
             validation: str | None = None, fixed: dict[str, Any] | None = None,
             on_trial: Callable[[TrialReport], None] | None = None, timeout: float | None = None) -> TuneResult:
    """Search ALS's parameters (and the weighting) on a validation split of ``df`` (the training data only), each
    trial on Spark; ``fixed`` parameters are not searched. The defaults are the first trials (one per weighting,
    the one ``auto`` picks first), so the best is never below them."""
    name = metric_name.lower()
    if name in RATING_METRICS:
        raise ConfigError(f"Metric '{name}' measures rating predictions; ALS ranks items: tune it on a ranking "
                          "metric such as ndcg@10.")
    chosen = metric(name)
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"timeout must be a positive number of seconds, got {timeout}.")
    fixed = dict(fixed or {})
    accepted = set(inspect.signature(train_als).parameters) - {"df"}
    unknown = sorted(set(fixed) - accepted)
    if unknown:
        raise ConfigError(f"Parameter(s) {unknown} of als are not understood on Spark; valid: {sorted(accepted)}.")
    method = validation or validation_method(name)
    train, valid = carve(df, method, seed)
    train, valid = train.cache(), valid.select("user_id", "item_id").cache()
    if "weighting" not in fixed and _constant_totals(train):  # then the weightings differ by a constant factor
        fixed["weighting"] = resolve_weighting(train)[0]
    space = {key: spec for key, spec in search_space(ALGORITHM).items() if key not in fixed}
    seen = train.select("user_id", "item_id")
    catalogue = train.select("item_id").distinct().count()

    def objective(params: dict[str, Any]) -> float:
        factors = train_als(train, **(fixed | params))
        users = factors.users.join(valid.select("user_id").distinct(), "user_id")  # the validation users only
        lists = recommend_all(users, factors.items, seen, k=chosen.k)
        return evaluate(lists, valid, [name], catalogue_size=catalogue)[name]

    try:
        return search(objective, space, _starts(train, space, fixed), algorithm=ALGORITHM, metric_name=name,
                      trials=trials, seed=seed, fixed=fixed, validation=f"validation/{method}", on_trial=on_trial,
                      timeout=timeout)
    finally:
        train.unpersist()
        valid.unpersist()


def carve(df: DataFrame, method: str, seed: int) -> tuple[DataFrame, DataFrame]:
    """(sub-train, validation) of the training data ``df``: the rows `carve_validation` carves locally."""
    return split_by_name(df, method, strict=False, test_fraction=FRACTION, fraction=FRACTION, seed=seed)


def _constant_totals(train: DataFrame) -> bool:
    """Whether every (user, item) pair sums to the same value (as the local `tune` asks before searching weightings)."""
    from pyspark.sql import functions as F

    value = F.col("value") if "value" in train.columns else F.lit(1.0)
    totals = train.groupBy("user_id", "item_id").agg(F.sum(value).alias("total"))
    row = totals.agg(F.min("total").alias("low"), F.max("total").alias("high")).first()
    return row["low"] is not None and row["low"] == row["high"]


def _starts(train: DataFrame, space: dict[str, Any], fixed: dict[str, Any]) -> list[dict[str, Any]]:
    """The defaults as trials: one per weighting searched, the weighting ``auto`` picks for ``train`` first."""
    defaults = {key: value for key, value in params_of(build_recommender(ALGORITHM, fixed).scorer).items()
                if key in space}
    if "weighting" not in space:
        return [defaults]
    picked, _ = resolve_weighting(train)
    return [defaults | {"weighting": weighting} for weighting in sorted(WEIGHTINGS, key=lambda w: w != picked)]
