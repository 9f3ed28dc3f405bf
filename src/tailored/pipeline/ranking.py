"""From a block of scores to lists: the stages (adjusters, then the re-rankers over a candidate pool), exclusions
and each item's reasons. What each stage does is read once, when the stages are set (`Ranking.of`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import scipy.sparse as sp

from tailored.models.base import top_k
from tailored.query import Context
from tailored.rank.base import Catalogue, Readmitter, Request, Reranker, Stage, Switchable
from tailored.rank.explain import reasons_for


Ranked = tuple[np.ndarray, np.ndarray, np.ndarray | None]
"""A block's lists: item indices (-1: empty slot), scores and reasons (None unless asked), block rows x n."""


@dataclass(frozen=True, eq=False)
class Ranking:
    """The stages in order, sorted once by role."""

    stages: tuple[Stage | Reranker, ...]
    readmitters: tuple[Readmitter, ...]
    adjusters: tuple[Stage, ...]
    rerankers: tuple[Reranker, ...]
    active: bool
    """Whether any stage may change a list (the vector index's fast lane answers only without)."""

    @classmethod
    def of(cls, stages: Sequence[Stage | Reranker]) -> Ranking:
        rerankers = tuple(stage for stage in stages if isinstance(stage, Reranker))
        return cls(tuple(stages), tuple(stage for stage in stages if isinstance(stage, Readmitter)),
                   tuple(stage for stage in stages if not isinstance(stage, Reranker)), rerankers,  # type: ignore[misc]
                   any(not (isinstance(stage, Switchable) and stage.inert) for stage in stages))

    def adjusted(self, scores: np.ndarray, request: Request) -> np.ndarray:
        """Seen items that a stage readmits (repurchase cycles) get their score back, then the adjusters run."""
        for stage in self.readmitters:
            rows, columns, restored = stage.readmit(request)
            scores[rows, columns] = restored
        for stage in self.adjusters:
            scores = stage.adjust(scores, request)
        return scores

    def ranked(self, scores: np.ndarray, request: Request, n: int, explain: bool, exclude: np.ndarray | None = None
               ) -> Ranked:
        """Adjusters, then the best ``n`` (from a pool of ``n * pool_factor`` when re-rankers follow), then the
        re-rankers; ``exclude`` (item indices) never come out; with ``explain``, each item's reasons."""
        scores = self.adjusted(scores, request)
        if exclude is not None:
            scores[:, exclude] = -np.inf
        pool = n * max([stage.pool_factor for stage in self.rerankers], default=1)
        items, values = top_k(scores, pool)
        request.scores = scores
        for stage in self.rerankers:
            items, values = stage.rerank(items, values, request, n)
        items, values = items[:, :n], values[:, :n]
        return items, values, reasons_for(items, request, self.stages) if explain else None


def masked_request(scores: np.ndarray, users: np.ndarray, history: sp.csr_matrix, last_seen: sp.csr_matrix | None,
                   candidates: np.ndarray, exclude_seen: bool, context: Context, catalogue: Catalogue,
                   tally: dict[str, Any] | None) -> Request:
    """Masks the non-``candidates`` and (with ``exclude_seen``) each user's ``history`` items in ``scores`` (block x
    items), and describes the block for the stages: users (-1: unknown), history, when last seen (days), the scores
    that the exclusion removed (so a rule may give them back), the run's ``tally``."""
    scores[:, ~candidates] = -np.inf
    excluded = None
    if exclude_seen and history.nnz:
        excluded = history.tocoo()
        excluded.data = scores[excluded.row, excluded.col].copy()
        scores[excluded.row, excluded.col] = -np.inf
    return Request(users, context, catalogue, history, last_seen=last_seen, excluded_seen=excluded,
                   tally={} if tally is None else tally)
