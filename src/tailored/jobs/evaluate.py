"""Metrics of recommendations (from a file or a model) against a test file: what `tailored evaluate` computes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tailored.data.columns import ITEM_ID, PREDICTION, USER_ID, VALUE
from tailored.data.io import read_table
from tailored.errors import ConfigError, DataError
from tailored.eval.evaluator import EvalReport, evaluate_lists, parse_metrics
from tailored.eval.metrics import mae, rmse
from tailored.jobs.tasks import predict, recommend, read_valid
from tailored.models.base import scorer_class
from tailored.pipeline.recommender import Recommender
from tailored.registry.model_dir import load_model, read_manifest


CATALOGUE_METRICS = ("coverage", "gini", "novelty", "popularity")
DEFAULT_METRICS = ("ndcg@10", "hr@10", "recall@10", "precision@10", "map@10", "mrr@10")


def metrics_table(
    test: Path,
    recommendations: Path | None,
    model_dir: Path | None,
    train: Path | None,
    metric_names: list[str] | None = None,
) -> pd.DataFrame:
    """metric, value, ci_low, ci_high of the lists of ``recommendations`` or of the model in ``model_dir`` (exactly one
    of them) against ``test``: ranking metrics over full lists (the model ranks every test user, whatever number of
    test rows each has); rmse and mae need the model."""
    if (recommendations is None) == (model_dir is None):
        raise ConfigError("Give exactly one of --recommendations FILE or --model-dir DIR.")
    scorer = scorer_class(read_manifest(model_dir)["algorithm"]) if model_dir is not None else None
    ranking, rating = parse_metrics(metric_names or list(DEFAULT_METRICS), scorer)
    if rating and model_dir is None:
        raise ConfigError("rmse and mae need predictions: pass --model-dir DIR instead of --recommendations.")
    table = pd.DataFrame(columns=["metric", "value", "ci_low", "ci_high"])
    truth = read_valid(test) if model_dir is not None else test  # read once: the users to rank and the truth
    model = load_model(model_dir) if model_dir is not None else None  # loaded once for lists and predictions
    if ranking:
        source = recommendations
        if model is not None:
            source = recommend(model, pd.unique(truth[USER_ID]), max(m.k for m in ranking))
        table = evaluate_files(truth, source, train, [m.name for m in ranking]).to_frame()
    if rating:
        errors = rating_errors(model, truth)
        rows = pd.DataFrame({"metric": [m.name for m in rating], "value": [errors[m.name] for m in rating]})
        table = rows if table.empty else pd.concat([table, rows], ignore_index=True)
    return table


def evaluate_files(
    test: str | Path | pd.DataFrame,
    recommendations: str | Path | pd.DataFrame,
    train: str | Path | None,
    metrics: list[str],
    bootstrap: int = 1000,
) -> EvalReport:
    """Ranking metrics of recommendations (a file or frame) against a test file (or the frame `read_valid` read from
    it); the training file is needed for the catalogue metrics (coverage, Gini, novelty, popularity)."""
    if train is None and any(name.split("@")[0] in CATALOGUE_METRICS for name in metrics):
        raise DataError(f"Metrics {[m for m in metrics if m.split('@')[0] in CATALOGUE_METRICS]} need the training "
                        "file (catalogue and popularity): pass --train FILE.")
    train_frame = read_valid(train) if train is not None else pd.DataFrame({USER_ID: [], ITEM_ID: []})
    recommended = recommendations if isinstance(recommendations, pd.DataFrame) else read_table(recommendations)
    return evaluate_lists(recommended, _valid(test), train_frame, metrics, bootstrap=bootstrap)


def rating_errors(model: Recommender | str | Path, test: str | Path | pd.DataFrame) -> dict[str, float]:
    """RMSE and MAE of a model's predictions over every pair of a test file or `read_valid` frame (fallbacks, never
    skipped)."""
    truth = _valid(test)
    predicted = predict(model, truth)[PREDICTION].to_numpy()
    return {"rmse": rmse(predicted, truth[VALUE].to_numpy()), "mae": mae(predicted, truth[VALUE].to_numpy())}


def _valid(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """A frame as given (already read by `read_valid`), else the file read through `read_valid`."""
    return source if isinstance(source, pd.DataFrame) else read_valid(source)
