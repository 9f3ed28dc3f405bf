"""Evaluation: ranked lists for the test users, metrics with bootstrap confidence intervals, segment breakdowns.

Who is evaluated: every user with at least one test row (PROTOCOLS.md: means over users with a test item).
Test users the recommender does not know, or knows without training rows, are served by its fallback and
count like everyone else (this is what a user-cold-start protocol such as P6 measures). A user's relevant items
are all distinct test items, including items outside the training catalogue, which can never be hit.

Every metric is reduced the same way: ``finish(sum of numerators / sum of denominators)`` over a set of users
(per-user metrics: the value and 1; RMSE/MAE: summed losses and pair counts), or, for catalogue metrics such as
coverage and Gini, recomputed on the lists of that set of users. The full value, each bootstrap resample
and each segment are just different sets of users.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.data.columns import ITEM_ID, RANK, USER_ID
from tailored.data.dataset import Dataset
from tailored.data.idmap import IdMap
from tailored.errors import ConfigError, DataError
from tailored.eval.measures import Measure, Pooled, intervals, ranking_measures, rating_measures
from tailored.eval.metrics import RANKING_METRIC_NAMES, RATING_METRICS, Metric, RankedLists, RatingMetric, metric
from tailored.pipeline.recommender import Recommender
from tailored.query import Context
from tailored.split.base import Split

DEFAULT_METRICS = ("ndcg@10", "recall@10", "precision@10", "hr@10", "mrr@10", "map@10", "coverage@10", "gini@10")
CONFIDENCE = 0.95


# -- ranked lists ------------------------------------------------------------------------------------------------
def ranked_lists(
    recommender: Recommender, train: Dataset, test: Dataset, k: int, item_features: sp.spmatrix | None = None,
    context: Context | None = None,
) -> RankedLists:
    """Top-``k`` lists of every test user (in test index order), in the recommender's item index space, for the
    request ``context`` (None: now)."""
    users = _test_users(test)
    indices = recommender.users_.index(users, missing="mask")
    blocks = [items for _, items, _, _ in recommender.recommend_indices(indices, k, context)]
    items = np.concatenate(blocks) if blocks else np.zeros((0, k), np.int64)
    return _lists(
        items, users, test.users.ids(test.user_index), test.items.ids(test.item_index),
        recommender.items_, train.items.ids(train.item_index), np.unique(train.user_index).size, item_features,
    )


def _test_users(test: Dataset) -> pd.Index:
    """External ids of the users with at least one test row, in dense index order."""
    return pd.Index(test.users.ids(np.unique(test.user_index)), name=USER_ID)


def _lists(
    items: np.ndarray,
    users: pd.Index,
    test_users: np.ndarray,
    test_items: np.ndarray,
    catalogue: IdMap,
    train_items: np.ndarray,
    n_train_users: int,
    item_features: sp.spmatrix | None,
) -> RankedLists:
    """RankedLists from item-index lists and the truth given by external ids."""
    pairs = pd.DataFrame({"row": users.get_indexer(test_users), ITEM_ID: test_items}).drop_duplicates()
    rows = pairs["row"].to_numpy()
    columns = catalogue.index(pairs[ITEM_ID], missing="mask")
    known = columns >= 0
    relevant = sp.csr_matrix(
        (np.ones(known.sum()), (rows[known], columns[known])), shape=(len(users), len(catalogue))
    )
    return RankedLists(
        items=items,
        relevant=relevant,
        n_relevant=np.bincount(rows, minlength=len(users)),
        item_popularity=np.bincount(catalogue.index(train_items, missing="drop"), minlength=len(catalogue)),
        n_train_users=int(n_train_users),
        item_features=item_features,
    )


def sampled_lists(recommender: Recommender, users: np.ndarray, lists: RankedLists, negatives: int, seed: int,
                  k: int) -> RankedLists:
    """Each user's test items ranked among ``negatives`` sampled catalogue items the user never interacted with.

    Ties in score are broken against the test items (a conservative estimate). ``users`` are the recommender's
    indices of the rows of ``lists`` (-1 for unknown users, who get the fallback's scores).
    """
    rng = np.random.default_rng(seed)
    blocks = []
    for start in range(0, len(users), recommender.batch_size):
        block = users[start : start + recommender.batch_size]
        scores = recommender.score_block(block)
        positives = _padded_rows(lists.relevant[start : start + len(block)])
        keys = rng.random(scores.shape)
        keys[:, ~recommender.candidate_items_] = np.inf
        known = np.flatnonzero(block >= 0)
        seen = recommender.seen_[block[known]].tocoo()
        keys[known[seen.row], seen.col] = np.inf
        rows, columns = np.nonzero(positives >= 0)
        keys[rows, positives[rows, columns]] = np.inf
        drawn = np.argpartition(keys, min(negatives, keys.shape[1]) - 1, axis=1)[:, :negatives]
        drawn = np.where(np.isfinite(np.take_along_axis(keys, drawn, axis=1)), drawn, -1)
        candidates = np.hstack([positives, drawn])
        valid = candidates >= 0
        is_positive = np.hstack([positives >= 0, np.zeros(drawn.shape, bool)])
        candidate_scores = np.where(valid, np.take_along_axis(scores, np.where(valid, candidates, 0), axis=1), -np.inf)
        order = np.lexsort((is_positive, -candidate_scores, ~valid), axis=1)
        blocks.append(np.take_along_axis(candidates, order, axis=1)[:, :k])
    items = np.concatenate(blocks) if blocks else np.zeros((0, k), np.int64)
    return RankedLists(items, lists.relevant, lists.n_relevant, lists.item_popularity, lists.n_train_users,
                       lists.item_features)


def _padded_rows(matrix: sp.csr_matrix) -> np.ndarray:
    """Column indices of each CSR row, left-aligned and padded with -1."""
    lengths = np.diff(matrix.indptr)
    padded = np.full((matrix.shape[0], lengths.max(initial=0)), -1, np.int64)
    rows = np.repeat(np.arange(matrix.shape[0]), lengths)
    padded[rows, np.arange(matrix.nnz) - matrix.indptr[rows]] = matrix.indices
    return padded


# -- report ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class EvalReport:
    """Metric values with bootstrap 95% CIs, per-user values (for paired tests) and an optional segment breakdown."""

    table: pd.DataFrame
    per_user: pd.DataFrame
    segments: pd.DataFrame | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def value(self, name: str) -> float:
        """The value of one metric, e.g. ``report.value("ndcg@10")``."""
        found = self.table.loc[self.table["metric"] == name, "value"]
        if found.empty:
            raise ConfigError(f"Metric '{name}' is not in this report; it has {self.table['metric'].tolist()}.")
        return float(found.iloc[0])

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: metric -> {value, ci_low, ci_high}, the info, and segment rows (NaN becomes None)."""
        def clean(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{key: (None if isinstance(v, float) and np.isnan(v) else v) for key, v in r.items()}
                    for r in records]

        metrics = {row.pop("metric"): row for row in clean(self.table.to_dict("records"))}
        segments = None if self.segments is None else clean(self.segments.to_dict("records"))
        return {"metrics": metrics, "info": dict(self.info), "segments": segments}

    def to_markdown(self, digits: int = 4) -> str:
        text = _markdown(self.table, digits)
        if self.segments is not None:
            text += "\n\n" + _markdown(self.segments, digits)
        return text

    def __str__(self) -> str:
        return self.to_markdown()


def _markdown(frame: pd.DataFrame, digits: int) -> str:
    def cell(value: Any) -> str:
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _report(
    measures: list[Measure],
    users: pd.Index,
    bootstrap: int,
    seed: int,
    segments: pd.Series | None,
    info: dict[str, Any],
) -> EvalReport:
    everyone = np.arange(len(users))
    values = [m.value(everyone) for m in measures]
    low, high = np.full((2, len(measures)), np.nan)
    pooled = [number for number, m in enumerate(measures) if isinstance(m, Pooled)]  # catalogue metrics: no interval
    if bootstrap > 0 and pooled:
        low[pooled], high[pooled] = intervals([measures[number] for number in pooled], bootstrap, seed, CONFIDENCE)
    table = pd.DataFrame({"metric": [m.name for m in measures], "value": values, "ci_low": low, "ci_high": high})
    per_user = pd.DataFrame(
        {m.name: m.user_values for m in measures if isinstance(m, Pooled) and m.user_values is not None}, index=users
    )
    info = {**info, "users": len(users), "bootstrap": bootstrap, "seed": seed}
    return EvalReport(table, per_user, _segment_frame(measures, segments), info)


def _segment_frame(measures: list[Measure], segments: pd.Series | None) -> pd.DataFrame | None:
    if segments is None:
        return None
    labels = segments.astype(object).where(segments.notna(), "unknown").reset_index(drop=True)
    groups = labels.groupby(labels, sort=False).indices
    rows = [
        {str(segments.name): label, "users": len(groups[label]), **{m.name: m.value(groups[label]) for m in measures}}
        for label in sorted(groups, key=str)
    ]
    return pd.DataFrame(rows)


# -- entry points --------------------------------------------------------------------------------------------------
def parse_metrics(metrics: Sequence[str], scorer: type | None = None) -> tuple[list[Metric], list[RatingMetric]]:
    """Ranking and rating metrics of ``metrics`` names, checked before any work: an unknown name is a ConfigError
    suggesting the nearest valid names; with ``scorer`` (the class to be evaluated), so are rating metrics (rmse,
    mae) asked of a scorer that predicts no ratings."""
    ranking, rating = [], []
    for name in metrics:
        if name.lower() in RATING_METRICS:
            rating.append(RATING_METRICS[name.lower()])
            continue
        try:
            ranking.append(metric(name))
        except ConfigError as error:
            raise ConfigError(f"{error}{_suggestion(name)}") from None
    if rating and scorer is not None and not getattr(scorer, "explicit", False):
        raise ConfigError(
            f"{', '.join(m.name for m in rating)} {'measures' if len(rating) == 1 else 'measure'} predicted ratings, "
            f"but algorithm '{getattr(scorer, 'algorithm', scorer.__name__)}' ranks items "
            "(its scores are not ratings): "
            "drop them, or evaluate a rating model (kind 'rating' in `tailored algorithms`, e.g. mf)."
        )
    return ranking, rating


def _suggestion(name: str) -> str:
    """" Did you mean 'ndcg@10'?" for a misspelled metric name, keeping its cut-off; empty when nothing is close."""
    cutoff = "".join(character for character in name if character.isdigit()) or "10"
    valid = [f"{known}@{cutoff}" for known in RANKING_METRIC_NAMES] + list(RATING_METRICS)
    close = difflib.get_close_matches(name.lower(), valid, n=3, cutoff=0.6)
    return f" Did you mean {', '.join(repr(found) for found in close)}?" if close else ""


def evaluate(
    recommender: Recommender,
    split: Split,
    metrics: Sequence[str] = DEFAULT_METRICS,
    bootstrap: int = 1000,
    seed: int = 42,
    segments: str | None = None,
    sampled_negatives: int | None = None,
    item_features: sp.spmatrix | None = None,
) -> EvalReport:
    """Evaluate a fitted recommender on ``split.test`` (see the module docstring for who counts and how).

    RMSE and MAE are added when the scorer is explicit (a prediction for every test pair, never skipped);
    asking for them with an implicit scorer is an error. ``sampled_negatives`` adds each per-user ranking
    metric computed among that many sampled negatives, labelled e.g. ``hr@10 (sampled 100 negatives)``.
    ``segments`` names a ``user_attributes`` column (e.g. ``gender``) for a per-segment breakdown.
    """
    ranking, rating = parse_metrics(metrics, type(recommender.scorer))
    explicit = bool(getattr(recommender.scorer, "explicit", False))
    rating = list(RATING_METRICS.values()) if explicit else []
    test = split.test
    if len(test) == 0:
        raise DataError(f"Split '{split.name}' has no test rows; nothing to evaluate.")
    users = _test_users(test)
    known = recommender.users_.index(users, missing="mask")
    rows = users.get_indexer(test.users.ids(test.user_index))
    measures: list[Measure] = []
    info: dict[str, Any] = {"split": split.name, "unknown_users": int((known < 0).sum())}
    if ranking:
        k = info["k"] = max(m.k for m in ranking)
        lists = ranked_lists(recommender, split.train, test, k, item_features)
        measures += ranking_measures(ranking, lists)
        if sampled_negatives:
            per_user = [m for m in ranking if m.per_user]
            sampled = sampled_lists(recommender, known, lists, sampled_negatives, seed, k)
            measures += ranking_measures(per_user, sampled, f" (sampled {sampled_negatives} negatives)")
    if rating:
        predictions = recommender.predict(users[rows], test.items.ids(test.item_index))
        measures += rating_measures(rating, rows, predictions - test.values.astype(np.float64), len(users))
    return _report(measures, users, bootstrap, seed, _segment_values(test, segments), info)


def _segment_values(test: Dataset, column: str | None) -> pd.Series | None:
    if column is None:
        return None
    attributes = test.user_attributes
    if attributes is None or column not in attributes:
        available = [] if attributes is None else list(attributes.columns)
        raise ConfigError(f"Segment column '{column}' is not a user attribute; available: {available}.")
    return attributes[column].iloc[np.unique(test.user_index)].rename(column)


def evaluate_lists(
    recommendations: pd.DataFrame,
    test: pd.DataFrame,
    train: pd.DataFrame,
    metrics: Sequence[str] = DEFAULT_METRICS,
    k: int | None = None,
    bootstrap: int = 0,
    seed: int = 42,
) -> EvalReport:
    """The same ranking metrics from files: recommendations ``user_id, item_id, rank`` (rank 1 best; only the
    order within a user matters), test and train interactions ``user_id, item_id``.

    Users are the distinct test users; those without recommendations count with empty lists. Lists are cut at
    ``k`` (default: the largest cut-off among ``metrics``).
    """
    ranking, rating = parse_metrics(metrics)
    if rating or not ranking:
        raise ConfigError("evaluate_lists computes ranking metrics (e.g. ndcg@10) from lists; "
                          "RMSE/MAE need evaluate().")
    needs = (("recommendations", recommendations, (USER_ID, ITEM_ID, RANK)), ("test", test, (USER_ID, ITEM_ID)),
             ("train", train, (USER_ID, ITEM_ID)))
    for name, frame, needed in needs:
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DataError(f"The {name} frame lacks column(s) {missing}; its columns are {list(frame.columns)}.")
    if test.empty:
        raise DataError("The test frame has no rows; nothing to evaluate.")
    duplicated = recommendations.duplicated([USER_ID, ITEM_ID])
    if duplicated.any():
        raise DataError(
            f"{duplicated.sum()} recommendations repeat an item for the same user, e.g. "
            f"{recommendations.loc[duplicated, [USER_ID, ITEM_ID]].head(3).to_dict('records')}; de-duplicate the lists."
        )
    ranks = pd.to_numeric(recommendations[RANK], errors="coerce")
    if ranks.isna().any():
        bad = recommendations.loc[ranks.isna(), RANK].head(3).tolist()
        raise DataError(f"Column '{RANK}' of the recommendations has {int(ranks.isna().sum())} non-numeric values, "
                        f"e.g. {bad}.")
    recommendations = recommendations.assign(**{RANK: ranks})
    k = k or max(m.k for m in ranking)
    users = pd.Index(pd.unique(test[USER_ID]), name=USER_ID)
    catalogue = IdMap.from_values(train[ITEM_ID], test[ITEM_ID], recommendations[ITEM_ID], name="item")
    recs = recommendations[recommendations[USER_ID].isin(users)]
    recs = recs.assign(row=users.get_indexer(recs[USER_ID])).sort_values(["row", RANK], kind="stable")
    position = recs.groupby("row").cumcount().to_numpy()
    kept = position < k
    items = np.full((len(users), k), -1, np.int64)
    items[recs["row"].to_numpy()[kept], position[kept]] = catalogue.index(recs[ITEM_ID].to_numpy()[kept])
    lists = _lists(
        items, users, test[USER_ID].to_numpy(), test[ITEM_ID].to_numpy(), catalogue,
        train[ITEM_ID].to_numpy(), train[USER_ID].nunique(), None,
    )
    return _report(ranking_measures(ranking, lists), users, bootstrap, seed, None, {"k": k})
