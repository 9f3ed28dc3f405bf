"""Ranking benchmark on MovieLens 100K: P1 NDCG@10 and P2 HR@10 with fit + top-10 time for every ranking algorithm.

Usage: ``python benchmarks/ranking.py [--validation] [--algorithms item-knn,ease]``.
``--validation`` scores on splits carved from the training files only (per-user random 20% of P1.train,
the latest row of each user of P2.train), the data on which defaults are chosen; without it the test files are used.
Rows marked * add the P2-validation-chosen recency weighting of each user's history.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.eval.metrics import RankedLists, metric
from tailored.models.base import create_scorer
from tailored.pipeline import Recommender

DATA = Path(os.environ.get("TAILORED_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
]
ALGORITHMS: dict[str, dict[str, Any]] = {
    "popularity": {},
    "item-knn": {},
    "user-knn": {},
    "als": {},
    "bpr": {},
    "content": {},
    "ease": {},
}
# Chosen on the P2 validation split (latest row of each user of P2.train), never on the test file.
P2_TUNED: dict[str, dict[str, Any]] = {
    "item-knn": {"recency_half_life": 2.0},
    "ease": {"recency_half_life": 10.0},
}
HEADLINE = {"P1": "ndcg@10", "P2": "hr@10"}


def movie_attributes() -> pd.DataFrame:
    """u.item as an item attribute table: title and genres joined with '|'."""
    table = pd.read_csv(DATA / "ml-100k" / "u.item", sep="|", header=None, encoding="latin-1")
    flags = table.iloc[:, 5:24].to_numpy(bool)
    genres = ["|".join(np.asarray(GENRES)[row]) for row in flags]
    return pd.DataFrame({"item_id": table[0], "title": table[1], "genres": genres})


def load(protocol: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = DATA / "ml-100k-splits"
    return pd.read_csv(folder / f"{protocol}.train.csv"), pd.read_csv(folder / f"{protocol}.test.csv")


def carve_validation(train: pd.DataFrame, protocol: str, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The protocol applied again to its own training file: (fit part, validation part)."""
    if protocol == "P2":
        ordered = train.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
        last = ~ordered["user_id"].duplicated(keep="last").to_numpy()
        held = ordered.index[last]
    else:
        shuffled = train.sample(frac=1.0, random_state=seed)
        position = shuffled.groupby("user_id").cumcount().to_numpy()
        size = shuffled.groupby("user_id")["item_id"].transform("size").to_numpy()
        n_test = np.where(size >= 2, np.maximum(np.round(0.2 * size), 1), 0)
        held = shuffled.index[position < n_test]
    mask = train.index.isin(held)
    return train[~mask].reset_index(drop=True), train[mask].reset_index(drop=True)


def evaluate(
    algorithm: str, params: dict[str, Any], train: pd.DataFrame, test: pd.DataFrame, metric_names: list[str],
    items: pd.DataFrame | None = None,
) -> tuple[dict[str, float], float]:
    """Fit on ``train``, recommend the top 10 to every training user, score against ``test``; returns (metrics, seconds)."""
    dataset = Dataset.from_frame(train, items=items)
    start = time.perf_counter()
    recommender = Recommender(create_scorer(algorithm, params)).fit(dataset)
    users = np.arange(dataset.n_users)[dataset.user_counts() > 0]
    lists = np.vstack([block_items for _, block_items, _ in recommender.recommend_indices(users, 10)])
    seconds = time.perf_counter() - start
    test_users = dataset.users.index(test["user_id"].to_numpy(), missing="mask")
    test_items = dataset.items.index(test["item_id"].to_numpy(), missing="mask")
    row_of_user = np.full(dataset.n_users, -1)
    row_of_user[users] = np.arange(len(users))
    rows = np.where(test_users >= 0, row_of_user[np.maximum(test_users, 0)], -1)
    known = rows >= 0
    n_relevant = np.bincount(rows[known], minlength=len(users))
    hit = known & (test_items >= 0)
    relevant = sp.csr_matrix((np.ones(hit.sum()), (rows[hit], test_items[hit])), shape=(len(users), dataset.n_items))
    evaluated = n_relevant > 0
    ranked = RankedLists(lists, relevant, n_relevant, dataset.item_counts(), len(users)).subset(np.flatnonzero(evaluated))
    return {name: metric(name).value(ranked) for name in metric_names}, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--validation", action="store_true", help="score on splits carved from the training files")
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    args = parser.parse_args()
    items = movie_attributes()
    print(f"{'algorithm':<12} {'P1 ndcg@10':>10} {'P1 s':>6} {'P2 hr@10':>9} {'P2 s':>6}   ({'validation' if args.validation else 'test'})")
    for algorithm in args.algorithms.split(","):
        row = []
        for protocol in ("P1", "P2"):
            train, test = load(protocol)
            if args.validation:
                train, test = carve_validation(train, protocol)
            values, seconds = evaluate(algorithm, ALGORITHMS.get(algorithm, {}), train, test, [HEADLINE[protocol]], items)
            row += [values[HEADLINE[protocol]], seconds]
        print(f"{algorithm:<12} {row[0]:>10.4f} {row[1]:>6.2f} {row[2]:>9.4f} {row[3]:>6.2f}")
    for algorithm, params in P2_TUNED.items():
        train, test = load("P2")
        if args.validation:
            train, test = carve_validation(train, "P2")
        values, seconds = evaluate(algorithm, ALGORITHMS.get(algorithm, {}) | params, train, test, ["hr@10"], items)
        print(f"{algorithm + '*':<12} {'':>10} {'':>6} {values['hr@10']:>9.4f} {seconds:>6.2f}   * {params}")


if __name__ == "__main__":
    main()
