"""`tailored run SPEC`: check -> scope -> split -> train each algorithm -> evaluate -> save the best + a report."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.config import build_dataclass
from tailored.data.columns import EVENT_TYPE, ITEM_ID, USER_ID, VALUE
from tailored.data.dataset import Dataset
from tailored.data.features import attribute_vectors
from tailored.data.io import read_attributes, staged_directory, write_table
from tailored.data.quality import QualityReport, QualityRules, check_quality
from tailored.data.synthetic import generate_retail
from tailored.data.transforms import aggregate_pairs, history_window, k_core
from tailored.errors import ConfigError, DataError
from tailored.eval.evaluator import EvalReport, evaluate
from tailored.eval.significance import paired_test
from tailored.jobs.tasks import ColumnNames, read_raw_interactions
from tailored.pipeline.recommender import Recommender
from tailored.rank.explain import with_titles
from tailored.registry.model_dir import save_model
from tailored.jobs.spec import AlgorithmSpec, JobSpec, dump_spec, resolve
from tailored.split import Split, check_leakage, split_by_name
from tailored.pipeline.recommender import build_recommender

logger = logging.getLogger(__name__)


@dataclass
class JobResult:
    spec: JobSpec
    quality: QualityReport
    split: Split
    reports: dict[str, EvalReport]
    fit_seconds: dict[str, float]
    best: str
    model: Recommender
    recommendations: pd.DataFrame
    output: Path
    cold_users: dict[str, str] = field(default_factory=dict)
    """Per algorithm, when test has users without training rows: which models ranked them."""
    ranks_seen: dict[str, bool] = field(default_factory=dict)
    """Per algorithm: whether it ranked the items users already took (``[evaluate] exclude_seen = false``)."""

    def summary(self) -> pd.DataFrame:
        """One row per algorithm: every metric value and the fit time."""
        rows = []
        for name, report in self.reports.items():
            values = report.to_frame().set_index("metric")["value"].to_dict()
            rows.append({"algorithm": name, **values, "fit_s": self.fit_seconds[name]})
        return pd.DataFrame(rows)


def load_data(spec: JobSpec, output: Path) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """Raw interactions (values not yet validated) and the attribute tables the spec names."""
    data = spec.data
    if data.synthetic is not None:
        retail = generate_retail(**data.synthetic)
        retail.write(output / "data")
        return retail.interactions, retail.customers, retail.products
    columns = ColumnNames(user=data.user_col, item=data.item_col, value=data.value_col, time=data.time_col)
    raw = read_raw_interactions(resolve(spec, data.interactions), columns)
    if data.event_col != EVENT_TYPE and data.event_col in raw.columns:
        raw = raw.rename(columns={data.event_col: EVENT_TYPE})
    users = read_attributes(resolve(spec, data.users), USER_ID) if data.users else None
    items = read_attributes(resolve(spec, data.items), ITEM_ID) if data.items else None
    return raw, users, items


def scope(clean: pd.DataFrame, spec: JobSpec) -> pd.DataFrame:
    """Keep the event types in scope, weighting each row's value by its event type's weight."""
    weights = spec.data.event_weights
    if not weights:
        return clean
    if EVENT_TYPE not in clean.columns:
        raise DataError(f"[data] event_weights is set but the interactions have no '{EVENT_TYPE}' column.")
    weight = clean[EVENT_TYPE].map(weights)
    kept = clean[weight.notna()].copy()
    kept[VALUE] = kept[VALUE] * weight[weight.notna()].to_numpy()
    return kept.reset_index(drop=True)


def run_job(spec: JobSpec, step: Callable[[str], None] = lambda message: None) -> JobResult:
    """Run the job into ``spec.output``, which is replaced only when the whole job succeeds."""
    if spec.engine != "local":
        raise ConfigError(f"[job] engine = '{spec.engine}': run it with `tailored run SPEC` or "
                          "tailored.spark.jobs.run_spark_job, not on this process.")
    output = (Path(spec.base_dir) / spec.output).resolve()
    with staged_directory(output) as staging:
        result = _run_into(spec, staging, step)
    result.output = output
    return result


def _run_into(spec: JobSpec, output: Path, step: Callable[[str], None]) -> JobResult:
    step("reading data")
    raw, users, items = load_data(spec, output)
    step(f"checking quality of {len(raw):,} rows")
    rules = build_dataclass(QualityRules, spec.quality, "quality")
    quality = check_quality(raw, rules, users=users, items=items, source=str(spec.data.interactions or "synthetic"))
    quality.write_rejected(output / "rejected.csv")
    dataset = Dataset.from_frame(scope(quality.clean, spec), users=users, items=items)
    if spec.data.history_days is not None:
        dataset = history_window(dataset, days=spec.data.history_days)
    if spec.data.min_user_interactions > 1 or spec.data.min_item_interactions > 1:
        dataset = k_core(dataset, spec.data.min_user_interactions, spec.data.min_item_interactions)
    if len(dataset) == 0:
        raise DataError("No interactions are left after the quality rules and the scope filters; loosen them.")
    if spec.split.method != "temporal":
        dataset = aggregate_pairs(dataset)  # a repeated (user, item) pair must not straddle train and test
    step(f"splitting {len(dataset):,} interactions ({spec.split.method})")
    settings = {k: v for k, v in vars(spec.split).items() if k != "method"}
    split = split_by_name(dataset, spec.split.method, strict=False, **settings)
    new_users = check_leakage(split)["test_users_unseen_in_train"]
    split.save(output / "split")
    reports, fit_seconds, cold_users, ranks_seen = {}, {}, {}, {}
    features = attribute_vectors(dataset.item_attributes) if dataset.item_attributes is not None else None
    for number, algorithm in enumerate(spec.algorithms, start=1):
        step(f"training and evaluating {algorithm.name} ({number} of {len(spec.algorithms)}) on "
             f"{len(split.train):,} training interactions")
        start = time.perf_counter()
        recommender = build_recommender(algorithm.name, _params(spec, algorithm)).fit(split.train)
        fit_seconds[algorithm.name] = time.perf_counter() - start
        ranks_seen[algorithm.name] = not recommender.exclude_seen
        if new_users:
            cold_users[algorithm.name] = f"the {new_users:,} test users absent from training ranked by " + " + ".join(
                recommender.cold_user_models())
        reports[algorithm.name] = evaluate(recommender, split, spec.metrics, segments=_segment_column(dataset),
                                           item_features=features)
    best = _best(reports, spec.select_by)
    step(f"refitting {best} on all {len(dataset):,} interactions and saving it")
    chosen = next(a for a in spec.algorithms if a.name == best)
    model = build_recommender(best, _params(spec, chosen)).fit(dataset)
    result = JobResult(spec, quality, split, reports, fit_seconds, best, model, pd.DataFrame(), output, cold_users,
                       ranks_seen)
    save_model(model, output / "model", {"data_fingerprint": dataset.fingerprint(),
                                         "metrics": reports[best].to_dict()["metrics"], "selected_by": spec.select_by})
    step(f"writing sample recommendations for {spec.show_users} users and the report")
    result.recommendations = _sample_recommendations(model, dataset, spec)
    write_table(result.recommendations, output / "recommendations.csv")
    (output / "job.toml").write_text(dump_spec(spec))
    _write_report(result)
    return result


def _params(spec: JobSpec, algorithm: AlgorithmSpec) -> dict[str, Any]:
    """The algorithm's parameters, with ``[evaluate] exclude_seen`` unless the algorithm sets its own."""
    return {"exclude_seen": spec.evaluate.exclude_seen, **algorithm.params}


def repurchases(split: Split) -> tuple[int, int]:
    """(test rows whose (user, item) pair is in training, test rows): repurchases, which a model that excludes the
    items a user already took can never recommend."""
    train, test = split.train, split.test
    users = train.users.index(test.users.ids(test.user_index), missing="mask")
    items = train.items.index(test.items.ids(test.item_index), missing="mask")
    known = (users >= 0) & (items >= 0)
    pairs = sp.csr_matrix((np.ones(len(train)), (train.user_index, train.item_index)),
                          shape=(train.n_users, train.n_items))
    return int((np.asarray(pairs[users[known], items[known]]).ravel() > 0).sum()), len(test)


def repurchase_note(result: JobResult) -> str:
    """One sentence for people: the share of test rows that are repurchases, and whether the models could hit them."""
    repeated, rows = repurchases(result.split)
    if not repeated:
        return "No test row is a repurchase (a user-item pair already in training)."
    share = (f"{repeated / rows:.1%} of the test rows ({repeated:,} of {rows:,}) are repurchases (user-item pairs "
             "already in training)")
    if all(result.ranks_seen.values()):
        return f"{share}; the models ranked seen items too, so these count as hits ([evaluate] exclude_seen = false)."
    if any(result.ranks_seen.values()):
        return f"{share}: only the models labelled \"seen items ranked too\" below could recommend them."
    return (f"{share}: no model here may recommend them (seen items are excluded), so they cap every figure. For a "
            "repurchase-aware evaluation set `[evaluate] exclude_seen = false` in the job spec (or `--param "
            "exclude_seen=false` with `tailored train`).")


def _segment_column(dataset: Dataset) -> str | None:
    attributes = dataset.user_attributes
    for column in ("segment", "gender", "age_band"):
        if attributes is not None and column in attributes.columns:
            return column
    return None


def _best(reports: dict[str, EvalReport], metric_name: str) -> str:
    try:
        return max(reports, key=lambda name: reports[name].value(metric_name))
    except ConfigError as error:
        raise ConfigError(f"select_by = {metric_name!r} must be one of the job's metrics.") from error


def _sample_recommendations(model: Recommender, dataset: Dataset, spec: JobSpec) -> pd.DataFrame:
    users = dataset.users.ids(np.flatnonzero(dataset.user_counts() > 0)[: spec.show_users])
    return with_titles(model.recommend(users, spec.k), model.catalogue)


def _write_report(result: JobResult) -> None:
    """report.md (quality, split, metrics with CIs, significance of best vs runner-up) and metrics.png."""
    lines = [f"# Job report: {Path(result.spec.output).name}", "", result.quality.to_markdown(), "", "## Split", ""]
    lines += [f"- {part}: " + ", ".join(f"{n:,} {what}" for what, n in counts.items())
              for part, counts in result.split.counts.items()]
    lines += ["", repurchase_note(result)]
    lines += ["", "## Metrics (test split; 95% bootstrap intervals)", ""]
    for name, report in result.reports.items():
        cold = f"; {result.cold_users[name]}" if name in result.cold_users else ""
        seen = "; seen items ranked too: repurchases count" if result.ranks_seen.get(name) else ""
        lines += [f"### {name} (fit {result.fit_seconds[name]:.2f} s{cold}{seen})", "", report.to_markdown(), ""]
    ranked = sorted(result.reports, key=lambda n: -result.reports[n].value(result.spec.select_by))
    if len(ranked) > 1:
        metric_name = result.spec.select_by
        first, second = (result.reports[name].per_user[metric_name] for name in ranked[:2])
        comparison = paired_test(first, second)
        lines += [f"## {ranked[0]} vs {ranked[1]} on {metric_name}", "",
                  comparison.describe(ranked[0], ranked[1], metric_name), ""]
    lines += [f"Best by {result.spec.select_by}: **{result.best}**, refitted on all data and saved to `model/`.", ""]
    lines += ["## Sample recommendations", "", "```", result.recommendations.to_string(index=False), "```"]
    (result.output / "report.md").write_text("\n".join(lines) + "\n")
    _plot(result)


def _plot(result: JobResult) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = result.spec.metrics
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2), squeeze=False)
    for axis, metric_name in zip(axes[0], metrics):
        names = list(result.reports)
        table = [result.reports[n].to_frame().set_index("metric").loc[metric_name] for n in names]
        values = np.array([row["value"] for row in table])
        errors = np.array([[row["value"] - row["ci_low"], row["ci_high"] - row["value"]] for row in table]).T
        axis.bar(names, values, yerr=np.clip(np.nan_to_num(errors), 0.0, None), capsize=3, color="#4C72B0")
        axis.set_title(metric_name)
        axis.tick_params(axis="x", rotation=45)
    figure.tight_layout()
    figure.savefig(result.output / "metrics.png", dpi=110)
    plt.close(figure)
