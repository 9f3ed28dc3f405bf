"""`tailored benchmark movielens-100k`: every algorithm on the protocols of PROTOCOLS.md, with fit times.

- P1: per-user random 80/20 (seed 42), every rating a positive, full ranking; NDCG@10 (and recall, HR).
- P2: leave-last-one-out by timestamp (ties: larger item id is later), full ranking; HR@10.
- P3: the canonical u1..u5 folds, ratings as given; mean RMSE (explicit algorithms only).
- items: item cold start. 10% of the items (seed 42) and all their ratings are removed from training; they come back
  only as ``item_id, title, genres`` rows added at recommend time (``with_items``); every user with a rating of them
  ranks just those items; Recall@20 and its ratio to a random ranking (``20 / cold items``).
- sessions: new users known by their first events only. The P6 users (20%, seed 42) and all their rows are removed
  from training; each comes back with their first ``SESSION_LENGTH`` interactions (by time) as the request's
  ``recent`` items and is judged on the rest, full ranking of the training items; NDCG@10 and HR@10. Scorers that
  fold in a history rank from the session, the others give their cold-start fallback. ``sessions+attributes``: the
  same, with the users' age band, gender and occupation known (a users table at training, each new user's row at
  recommend time), so that the session is blended with the user's attribute scores instead of popularity.
The P1/P2 splits are cut from ``u.data`` by our splitters, which reproduce the shared benchmark files exactly.
With ``validation=True`` every protocol is applied again inside its own training part (what defaults and
presets are chosen on); otherwise the test parts are scored, for reporting only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailored.data.columns import ITEM_ID, TIMESTAMP, USER_ID, VALUE
from tailored.data.dataset import Dataset
from tailored.data.movielens import load_movielens, load_movielens_fold
from tailored.eval.evaluator import evaluate_lists, ranked_lists
from tailored.eval.metrics import mae, metric, rmse
from tailored.models.base import algorithm_names, scorer_class
from tailored.query import Context
from tailored.split import (Split, carve_validation, split_cold_items, split_cold_users, split_leave_last_out,
                            split_per_user)
from tailored.pipeline.recommender import build_recommender

RANKING_METRICS = {"P1": ("ndcg@10", "recall@10", "hr@10"), "P2": ("hr@10", "ndcg@10")}
# Next-item prediction rewards a user's latest items: recency weighting of the history, chosen on the P2
# validation split (each user's latest row of the P2 training part), never on the test part.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "P2": {"item-knn": {"recency_half_life": 2.0}, "ease": {"recency_half_life": 10.0}},
}
FOLDS = (1, 2, 3, 4, 5)
SESSION_LENGTH = 5
USER_ATTRIBUTES = ("age_band", "gender", "occupation")  # what P6 recommends cold users from

Row = dict[str, Any]


def ranking_splits(data_dir: Path, validation: bool) -> dict[str, Split]:
    movielens = load_movielens(data_dir, "100k")
    positives = Dataset.from_frame(movielens.ratings.assign(**{VALUE: 1.0}), items=movielens.items)
    splits = {"P1": split_per_user(positives, 0.2, seed=42), "P2": split_leave_last_out(positives)}
    if validation:
        splits = {"P1": carve_validation(splits["P1"], "per_user", seed=42),
                  "P2": carve_validation(splits["P2"], "leave_last_out")}
    return splits


def rank(algorithm: str, protocol: str, split: Split) -> Row:
    params = PRESETS.get(protocol, {}).get(algorithm, {})
    start = time.perf_counter()
    recommender = build_recommender(algorithm, params).fit(split.train)
    catalogue = split.train.items.ids(np.flatnonzero(split.train.item_counts() > 0))  # the training items
    lists = ranked_lists(recommender.restricted_to(catalogue), split.train, split.test, 10)
    seconds = time.perf_counter() - start
    values = {name: metric(name).value(lists) for name in RANKING_METRICS[protocol]}
    return {"protocol": protocol, "algorithm": algorithm, "params": params, **values, "seconds": seconds,
            "epochs": getattr(recommender.scorer, "epochs_", None)}


def cold_items(algorithm: str, data_dir: Path, validation: bool) -> Row:
    movielens = load_movielens(data_dir, "100k")
    items = movielens.items[[ITEM_ID, "title", "genres"]]
    split = split_cold_items(Dataset.from_frame(movielens.ratings.assign(**{VALUE: 1.0})), 0.1, seed=42)
    if validation:  # cold items carved from the training part's items
        split = split_cold_items(split.train.subset(split.train.item_counts()[split.train.item_index] > 0), 0.1, seed=1)
    train_frame, test_frame = split.train.to_frame(), split.test.to_frame()
    cold = items[items[ITEM_ID].isin(set(test_frame[ITEM_ID]))]
    train = Dataset.from_frame(train_frame, items=items[items[ITEM_ID].isin(set(train_frame[ITEM_ID]))])
    start = time.perf_counter()
    recommender = build_recommender(algorithm, {}).fit(train)
    view = recommender.with_items(cold).restricted_to(cold[ITEM_ID].to_numpy())
    lists = ranked_lists(view, train, Dataset.from_frame(test_frame), 20)
    recall = metric("recall@20").value(lists)
    return {"protocol": "items", "algorithm": algorithm, "params": {}, "recall@20": recall,
            "random": 20 / len(cold), "ratio": recall * len(cold) / 20, "seconds": time.perf_counter() - start,
            "epochs": getattr(recommender.scorer, "epochs_", None)}


def cold_sessions(algorithm: str, data_dir: Path, validation: bool, attributes: bool = False,
                  params: Mapping[str, Any] | None = None, random_draw: bool = False) -> Row:
    """New users recommended from their first ``SESSION_LENGTH`` events (validation: cold users carved from the
    training users, seed 1), and from their attributes too with ``attributes``. ``random_draw``: ``SESSION_LENGTH``
    of each user's events drawn at random (seed 0, kept in time order) instead of the first ones."""
    movielens = load_movielens(data_dir, "100k")
    users = movielens.users[[USER_ID, *USER_ATTRIBUTES]] if attributes else None
    positives = Dataset.from_frame(movielens.ratings.assign(**{VALUE: 1.0}), items=movielens.items, users=users)
    split = split_cold_users(positives, 0.2, seed=42)
    if validation:
        split = split_cold_users(split.train.subset(split.train.user_counts()[split.train.user_index] > 0), 0.2, seed=1)
    rows = split.test.to_frame().sort_values([USER_ID, TIMESTAMP, ITEM_ID], kind="stable")
    first = session_rows(rows, random_draw)
    sessions = rows[first].groupby(USER_ID, sort=False)[ITEM_ID].agg(lambda items: tuple(map(str, items)))
    start = time.perf_counter()
    recommender = build_recommender(algorithm, params).fit(split.train)
    view = recommender.restricted_to(split.train.items.ids(np.flatnonzero(split.train.item_counts() > 0)))
    described = users.set_index(USER_ID) if users is not None else None
    lists = pd.concat([view.recommend([user], 10, context=Context(recent=session),
                                      attributes=None if described is None else described.loc[[user]].reset_index())
                       for user, session in sessions.items()], ignore_index=True)
    report = evaluate_lists(lists, rows[~first], split.train.to_frame(), ["ndcg@10", "hr@10"])
    protocol = ("sessions+attributes" if attributes else "sessions") + (" (random draw)" if random_draw else "")
    return {"protocol": protocol, "algorithm": algorithm, "params": dict(params or {}),
            "ndcg@10": report.value("ndcg@10"), "hr@10": report.value("hr@10"), "seconds": time.perf_counter() - start,
            "epochs": getattr(recommender.scorer, "epochs_", None)}


def session_rows(rows: pd.DataFrame, random_draw: bool) -> np.ndarray:
    """Which of ``rows`` (sorted by user, then time) make each user's session: their first ``SESSION_LENGTH``, or
    with ``random_draw`` as many drawn at random (seed 0)."""
    order = np.random.default_rng(0).permutation(len(rows)) if random_draw else np.arange(len(rows))
    chosen = np.empty(len(rows), bool)
    chosen[order] = rows.iloc[order].groupby(USER_ID).cumcount().to_numpy() < SESSION_LENGTH
    return chosen


def rate(algorithm: str, data_dir: Path, validation: bool) -> Row:
    """Mean RMSE/MAE over the five folds (validation: a random 20% of each base file, seed = fold)."""
    errors, seconds = [], 0.0
    for fold in FOLDS:
        base, test = load_movielens_fold(data_dir, fold)
        train = Dataset.from_frame(base)
        if validation:
            carved = carve_validation(train, "random", 0.2, seed=fold)
            train, test = carved.train, carved.test.to_frame()
        start = time.perf_counter()
        recommender = build_recommender(algorithm, {}).fit(train)
        predicted = recommender.predict(test[USER_ID].to_numpy(), test[ITEM_ID].to_numpy())
        seconds += time.perf_counter() - start
        errors.append((rmse(predicted, test[VALUE]), mae(predicted, test[VALUE])))
    rmses, maes = np.array(errors).T
    return {"protocol": "P3", "algorithm": algorithm, "params": {}, "rmse": rmses.mean(), "mae": maes.mean(),
            "rmse_folds": " ".join(f"{v:.4f}" for v in rmses), "seconds": seconds}


def core_algorithms() -> list[str]:
    """The default suite: every algorithm that needs no extra (the torch models take minutes each, and so does the
    ensemble of them; the ranker needs the `ranker` extra: name them), except `demographic`, which needs user
    attributes that these protocols do not give (it is measured on P6, from the command line)."""
    return [name for name in algorithm_names()
            if not scorer_class(name).__module__.startswith("tailored.models.neural.")
            and name not in ("ensemble", "demographic", "ranker")]


def movielens_100k(
    data_dir: str | Path,
    algorithms: list[str] | None = None,
    validation: bool = False,
    on_row: Callable[[Row], None] = lambda row: None,
) -> pd.DataFrame:
    """Ranking algorithms on P1, P2, item cold start and new users' sessions, rating predictors (explicit) on P3;
    one row per (protocol, algorithm)."""
    data_dir = Path(data_dir)
    names = algorithms or core_algorithms()
    for name in names:
        scorer_class(name)  # unknown names fail before any work
    rows = []
    for protocol, split in ranking_splits(data_dir, validation).items():
        for name in (n for n in names if not scorer_class(n).explicit):
            rows.append(rank(name, protocol, split))
            on_row(rows[-1])
    for name in (n for n in names if not scorer_class(n).explicit):
        rows.append(cold_items(name, data_dir, validation))
        on_row(rows[-1])
    for attributes in (False, True):
        for name in (n for n in names if not scorer_class(n).explicit):
            rows.append(cold_sessions(name, data_dir, validation, attributes))
            on_row(rows[-1])
    for name in (n for n in names if scorer_class(n).explicit):
        rows.append(rate(name, data_dir, validation))
        on_row(rows[-1])
    return pd.DataFrame(rows)
