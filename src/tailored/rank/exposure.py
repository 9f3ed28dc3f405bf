"""Exposure fairness: a cap on how many users' lists an item may reach in one run, and a long-tail boost.

**Exposure cap** (`ExposureCap`, re-ranker, knob ``max_share``). After a block of a recommendation run, no item
may appear in more than ``ceil(max_share * U)`` lists, U being the number of users served so far in the run
(this block included; the counts live in ``Request.tally``). A batch run of all users in one block therefore
shows no item to more than ``ceil(max_share * users)`` of them; a run of several blocks keeps the bound after
every block, so it holds whatever the run's final size. Within a block, seats are handed out position by
position: every user's best pool item is considered before anyone's second, and when more users want an item
at the same position than it has seats left, those who want it most get it (the highest score standardised over
the user's pool; ties: earlier in the block). Each user's list keeps the pool's order, skipping items whose
seats are gone; when a user's pool runs out of items with seats, the list stays short (-1 slots): the cap is a
guarantee, never exceeded. A deeper pool (``pool_factor``) makes short lists rarer.

**Long-tail boost** (`LongTailBoost`, re-ranker, knobs ``boost`` and ``head_share``). Inverse propensity weighting:
an item's chance of being observed grows with its popularity p (distinct training users), so the relevance of an
item is divided by a propensity ``(1 + p) ** boost``. Each user's scores are first standardised (z-scores over the
candidates, so the knob means the same whatever the scorer's scale); candidates above the user's mean (z > 0) get
``z / (1 + p) ** boost``, the others keep z (<= 0: they stay below every boosted candidate, in their order).
Items added after training count as p = 0; 0 leaves the order unchanged. The first ``floor(head_share * n)``
items of the model's list are kept as they are (the positions that weigh most in NDCG and in the user's eyes);
the remaining slots go to the best boosted items. Dividing rather than subtracting ``boost * log(1 + p)`` matters:
a subtracted penalty lifts the mass of obscure items with near-zero scores past the relevant ones once the boost
exceeds about 1 (measured in docs/benchmarks.md), whereas a ratio keeps an irrelevant item irrelevant.

Defaults (``boost`` 0.7 with ``head_share`` 0.7; ``max_share`` 0.05 for the cap) were chosen on a validation carve
of the P1 training part of MovieLens 100K (`tailored.benchmarks.reranking`), never on its test part; the figures are
in docs/benchmarks.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Self

import numpy as np

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.models.base import standardize, top_k
from tailored.rank.base import Request, register_stage

EXPOSURE_TALLY = "exposure-cap"
"""Tally entry: (users served so far in the run, times each item was listed)."""


@register_stage("exposure-cap")
@dataclass(eq=False)
class ExposureCap:
    """Lists each item for at most ``ceil(max_share * users served so far)`` users of a run."""

    max_share: float = 0.05
    pool_factor: int = 5

    def fit(self, dataset: Dataset) -> Self:
        return self

    def rerank(self, items: np.ndarray, scores: np.ndarray, request: Request, n: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0.0 < self.max_share:
            raise ConfigError(f"ExposureCap max_share must be positive (a share of users, e.g. 0.1), got "
                              f"{self.max_share}.")
        served, shown = request.tally.get(EXPOSURE_TALLY, (0, np.zeros(len(request.catalogue), np.int64)))
        seats = math.ceil(self.max_share * (served + len(items)) - 1e-9) - shown  # 0.1 * 60 is 6, not 7
        picked = np.full((len(items), n), -1, np.int64)
        picked_scores = np.full((len(items), n), -np.inf, scores.dtype)
        filled = np.zeros(len(items), np.int64)
        priority = standardize(scores)
        for position in range(items.shape[1]):
            rows = np.flatnonzero((items[:, position] >= 0) & (filled < n))
            wanted = items[rows, position]
            order = np.lexsort((-priority[rows, position], wanted))  # by item, then keenest user first
            ranked = wanted[order]
            queue = np.arange(len(ranked)) - np.searchsorted(ranked, ranked)
            accepted = np.empty(len(rows), bool)
            accepted[order] = queue < seats[ranked]
            rows, wanted = rows[accepted], wanted[accepted]
            picked[rows, filled[rows]] = wanted
            picked_scores[rows, filled[rows]] = scores[rows, position]
            filled[rows] += 1
            seats -= np.bincount(wanted, minlength=len(seats))
        listed = picked[picked >= 0]
        request.tally[EXPOSURE_TALLY] = (served + len(items), shown + np.bincount(listed, minlength=len(shown)))
        return picked, picked_scores


@register_stage("long-tail")
@dataclass(eq=False)
class LongTailBoost:
    """Keeps the model's first ``floor(head_share * n)`` items and fills the rest of the list by boosted scores."""

    boost: float = 0.7
    head_share: float = 0.7
    pool_factor: int = 1

    def fit(self, dataset: Dataset) -> Self:
        self.popularity_ = dataset.matrix(binary=True).getnnz(axis=0).astype(np.int64)
        return self

    def rerank(self, items: np.ndarray, scores: np.ndarray, request: Request, n: int) -> tuple[np.ndarray, np.ndarray]:
        head = items[:, : int(self.head_share * n)]
        boosted = propensity_scaled(request.scores, self.popularity_, self.boost)
        kept = head >= 0
        boosted[np.nonzero(kept)[0], head[kept]] = -np.inf
        tail, _ = top_k(boosted, n - head.shape[1])
        picked = np.hstack([head, tail])
        return picked, np.where(picked >= 0, np.take_along_axis(request.scores, np.maximum(picked, 0), axis=1), -np.inf)

    def explain(self, items: np.ndarray, request: Request) -> np.ndarray:
        """"long-tail boost" for listed items that were not among the user's top ``n`` before the boost."""
        reasons = np.full(items.shape, "", dtype=object)
        if request.scores is None or items.shape[1] == 0:
            return reasons
        last = min(items.shape[1], request.scores.shape[1]) - 1
        threshold = -np.partition(-request.scores, last, axis=1)[:, last : last + 1]
        listed = items >= 0
        item_scores = np.take_along_axis(request.scores, np.where(listed, items, 0), axis=1)
        reasons[listed & (item_scores < threshold)] = "long-tail boost"
        return reasons


def propensity_scaled(scores: np.ndarray, popularity: np.ndarray, boost: float) -> np.ndarray:
    """Standardised scores, the positive ones divided by ``(1 + popularity) ** boost`` (items beyond
    ``popularity``, added after training: popularity 0)."""
    propensity = np.ones(scores.shape[1], np.float32)
    propensity[: len(popularity)] = (1.0 + popularity) ** boost
    standard = standardize(scores)
    return np.where(standard > 0, standard / propensity, standard).astype(scores.dtype)
