"""Metrics as pure functions of ranked lists and held-out truth (definitions in docs/metrics.md).

Every ranking metric is computed from one hit matrix (``hits[u, r]``: the item at rank r+1 is relevant to u),
so no metric re-derives what another already knows. Per-user metrics return one value per evaluated user;
catalogue metrics (coverage, Gini) return one number for the whole set of lists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from tailored.data.features import normalize_rows


@dataclass(frozen=True, eq=False)
class RankedLists:
    """Top-K lists for the evaluated users, aligned row by row with their relevant (test) items.

    ``items`` holds item indices best first, -1 for empty slots. ``n_relevant`` counts each user's test
    items (including any outside the training catalogue, which can never be hit). ``item_popularity`` is
    the training count of each item and ``n_train_users`` the number of training users (novelty, popularity,
    coverage); ``item_features`` (items x attributes) serves intra-list diversity.
    """

    items: np.ndarray
    relevant: sp.csr_matrix
    n_relevant: np.ndarray
    item_popularity: np.ndarray
    n_train_users: int
    item_features: sp.csr_matrix | None = None

    @cached_property
    def hits(self) -> np.ndarray:
        n_items = self.relevant.shape[1]
        truth = self.relevant.tocoo()
        positive = truth.data > 0
        relevant_keys = truth.row[positive].astype(np.int64) * n_items + truth.col[positive]
        rows = np.repeat(np.arange(len(self.items), dtype=np.int64), self.items.shape[1])
        columns = self.items.ravel()
        valid = columns >= 0
        flat = np.zeros(len(columns), bool)
        flat[valid] = np.isin(rows[valid] * n_items + columns[valid], relevant_keys)
        return flat.reshape(self.items.shape)

    def subset(self, rows: np.ndarray) -> RankedLists:
        """Lists of the selected users (rows may repeat: bootstrap resamples)."""
        return RankedLists(
            self.items[rows], self.relevant[rows], self.n_relevant[rows],
            self.item_popularity, self.n_train_users, self.item_features,
        )

    @property
    def n_catalog(self) -> int:
        return int((self.item_popularity > 0).sum())


@dataclass(frozen=True)
class Metric:
    """A named metric at cut-off ``k``; ``per_user`` metrics average over users, the others are global."""

    name: str
    k: int
    function: Callable[[RankedLists, int], np.ndarray | float]
    per_user: bool = True

    def __call__(self, lists: RankedLists) -> np.ndarray | float:
        return self.function(lists, self.k)

    def value(self, lists: RankedLists) -> float:
        return float(np.mean(self(lists)))


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def _hits(lists: RankedLists, k: int) -> np.ndarray:
    return lists.hits[:, :k]


def precision_at(lists: RankedLists, k: int) -> np.ndarray:
    return _hits(lists, k).sum(axis=1) / k


def recall_at(lists: RankedLists, k: int) -> np.ndarray:
    return _hits(lists, k).sum(axis=1) / np.maximum(lists.n_relevant, 1)


def hit_rate_at(lists: RankedLists, k: int) -> np.ndarray:
    return _hits(lists, k).any(axis=1).astype(np.float64)


def ndcg_at(lists: RankedLists, k: int) -> np.ndarray:
    discounts = _discounts(k)
    hits = _hits(lists, k)
    gains = hits @ discounts[: hits.shape[1]]
    ideal = np.cumsum(discounts)[np.clip(np.minimum(lists.n_relevant, k), 1, None) - 1]
    return gains / ideal


def mrr_at(lists: RankedLists, k: int) -> np.ndarray:
    hits = _hits(lists, k)
    first = np.argmax(hits, axis=1)
    return np.where(hits.any(axis=1), 1.0 / (first + 1), 0.0)


def map_at(lists: RankedLists, k: int) -> np.ndarray:
    """Average precision at k, normalised by min(|relevant|, k)."""
    hits = _hits(lists, k).astype(np.float64)
    precision_at_rank = np.cumsum(hits, axis=1) / np.arange(1, hits.shape[1] + 1)
    return (precision_at_rank * hits).sum(axis=1) / np.clip(np.minimum(lists.n_relevant, k), 1, None)


def _exposure(lists: RankedLists, k: int) -> np.ndarray:
    shown = lists.items[:, :k].ravel()
    return np.bincount(shown[shown >= 0], minlength=len(lists.item_popularity))


def coverage_at(lists: RankedLists, k: int) -> float:
    """Distinct items in all top-k lists / items in the training catalogue (PROTOCOLS.md, to match outside
    harnesses; lists holding items outside the catalogue can exceed 1)."""
    return float((_exposure(lists, k) > 0).sum() / max(lists.n_catalog, 1))


def gini_at(lists: RankedLists, k: int) -> float:
    """Gini index of item exposure over the training catalogue (0 = every item shown equally often)."""
    counts = np.sort(_exposure(lists, k)[lists.item_popularity > 0]).astype(np.float64)
    n = len(counts)
    if n == 0 or counts.sum() == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float(((2 * ranks - n - 1) * counts).sum() / (n * counts.sum()))


def _recommended_mask(lists: RankedLists, k: int) -> tuple[np.ndarray, np.ndarray]:
    items = lists.items[:, :k]
    return items, items >= 0


def novelty_at(lists: RankedLists, k: int) -> np.ndarray:
    """Mean self-information ``-log2(popularity / n_users)`` of each user's recommended items."""
    items, valid = _recommended_mask(lists, k)
    share = np.clip(lists.item_popularity[np.where(valid, items, 0)] / max(lists.n_train_users, 1), 1e-12, None)
    information = np.where(valid, -np.log2(share), 0.0)
    return information.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)


def average_popularity_at(lists: RankedLists, k: int) -> np.ndarray:
    items, valid = _recommended_mask(lists, k)
    popularity = np.where(valid, lists.item_popularity[np.where(valid, items, 0)], 0.0)
    return popularity.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)


def intra_list_diversity_at(lists: RankedLists, k: int) -> np.ndarray:
    """Mean pairwise cosine distance between a user's recommended items' attribute vectors."""
    if lists.item_features is None:
        return np.full(len(lists.items), np.nan)
    unit = normalize_rows(lists.item_features)
    items, valid = _recommended_mask(lists, k)
    vectors = unit[np.where(valid, items, 0).ravel()].toarray().reshape(items.shape[0], items.shape[1], -1)
    vectors *= valid[:, :, None]
    similarity = np.einsum("uid,ujd->uij", vectors, vectors)
    n = valid.sum(axis=1)
    pairs = n * (n - 1)
    off_diagonal = similarity.sum(axis=(1, 2)) - np.einsum("uii->u", similarity)
    return np.where(pairs > 0, 1.0 - off_diagonal / np.maximum(pairs, 1), np.nan)


_RANKING = {
    "precision": (precision_at, True),
    "recall": (recall_at, True),
    "hr": (hit_rate_at, True),
    "ndcg": (ndcg_at, True),
    "mrr": (mrr_at, True),
    "map": (map_at, True),
    "coverage": (coverage_at, False),
    "gini": (gini_at, False),
    "novelty": (novelty_at, True),
    "popularity": (average_popularity_at, True),
    "diversity": (intra_list_diversity_at, True),
}
RANKING_METRIC_NAMES = tuple(_RANKING)


def metric(spec: str) -> Metric:
    """Parse ``"ndcg@10"``-style names (``hr`` = hit ratio, ``diversity`` = intra-list diversity)."""
    from tailored.errors import ConfigError

    name, _, cutoff = spec.lower().partition("@")
    if name not in _RANKING or not cutoff.isdigit() or int(cutoff) < 1:
        raise ConfigError(
            f"Unknown metric '{spec}'. Use NAME@K with NAME one of {', '.join(_RANKING)} (e.g. ndcg@10), or rmse / mae."
        )
    function, per_user = _RANKING[name]
    return Metric(f"{name}@{cutoff}", int(cutoff), function, per_user)


@dataclass(frozen=True)
class RatingMetric:
    """A rating-prediction metric: ``finish(mean(loss(prediction - truth)))`` over all test pairs.

    Split into a per-pair ``loss`` and a ``finish`` so the evaluator can pool losses over any set of users
    (bootstrap resamples, segments) without a second definition.
    """

    name: str
    loss: Callable[[np.ndarray], np.ndarray]
    finish: Callable[[np.ndarray], np.ndarray]

    def __call__(self, predictions: np.ndarray, truth: np.ndarray) -> float:
        errors = np.asarray(predictions, np.float64) - np.asarray(truth, np.float64)
        return float(self.finish(np.mean(self.loss(errors))))


RATING_METRICS = {
    "rmse": RatingMetric("rmse", np.square, np.sqrt),
    "mae": RatingMetric("mae", np.abs, np.asarray),
}


def rmse(predictions: np.ndarray, truth: np.ndarray) -> float:
    return RATING_METRICS["rmse"](predictions, truth)


def mae(predictions: np.ndarray, truth: np.ndarray) -> float:
    return RATING_METRICS["mae"](predictions, truth)
