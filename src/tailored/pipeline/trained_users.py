"""Trained users -- users with training interactions -- scored by the scorer: with their events since training
folded in (`LiveEvents`, a scorer that folds a history in), or from the best candidates of a vector index of an
inner-product scorer's item factors; and the serving fast lane, a trained user's top-n straight from that index."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from tailored.models.base import Capabilities, Scorer
from tailored.pipeline.events import LiveEvents, folded_scores
from tailored.pipeline.vectors import index_scores, index_top
from tailored.query import Context
from tailored.rank.candidates import VectorIndex


@dataclass(frozen=True, eq=False)
class TrainedUsers:
    """Scores trained users over the ``n_items`` trained items with ``scorer`` (and what it can do: ``can``).
    ``history``: the rows their events since training (``events``) are added to -- the scorer's ``user_items_``,
    else the binary training rows; ``index``: a vector index that gives each user's best ``pool`` candidates."""

    scorer: Scorer
    can: Capabilities
    history: sp.csr_matrix
    n_items: int
    pool: int
    events: LiveEvents | None = None
    index: VectorIndex | None = None

    def with_events(self, events: LiveEvents) -> TrainedUsers:
        return dataclasses.replace(self, events=events)

    def with_index(self, index: VectorIndex) -> TrainedUsers:
        return dataclasses.replace(self, index=index)

    def scores(self, users: np.ndarray, context: Context | None = None) -> np.ndarray:
        """Scores (rows x trained items) of trained user indices: those of their history extended by their events
        since training (`folded`), the others the scorer's -- in the request's ``context`` when the scorer learned
        from context (`ContextScorer`) -- or, with an index, its candidates' (the rest -inf)."""
        scores, plain = np.empty((len(users), self.n_items), np.float32), np.ones(len(users), bool)
        folded = self.folded(users)
        if folded is not None:
            scores[folded[0]], plain[folded[0]] = folded[1], False
        if plain.any() and self.index is not None:  # the index's candidates, by the scorer's inner product
            factors = self.scorer.user_factors_[users[plain]]  # type: ignore[attr-defined]
            scores[plain] = index_scores(self.index, factors, self.pool, self.n_items)
        elif plain.any() and context is not None and self.can.context:
            scores[plain] = self.scorer.score_context(users[plain], vars(context))  # type: ignore[attr-defined]
        elif plain.any():
            scores[plain] = self.scorer.score(users[plain])
        return scores

    def folded(self, users: np.ndarray, vectors: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """`folded_scores` of trained users (-1: others) with events since training (None: none)."""
        events = None if self.events is None else self.events.rows(users)
        return folded_scores(self.scorer, self.can, self.history, events, users, self.n_items, vectors)

    def top(self, user: int, n: int, seen: np.ndarray, candidates: np.ndarray, exclude_seen: bool
            ) -> tuple[np.ndarray, np.ndarray] | None:
        """Top-``n`` (item indices, scores) of one trained user straight from the index (`index_top`), among the
        ``candidates``, their ``seen`` items (sorted indices) left out with ``exclude_seen``; with events since
        training, searched with the factors they fold into (``fold_in``), the events' items left out too. None when
        the full path must answer: events that the scorer cannot fold into factors, too few items left."""
        vector = self.scorer.user_factors_[user]  # type: ignore[attr-defined]
        events = None if self.events is None else self.events.rows(np.array([user]))
        if events is not None:
            folded = self.folded(np.array([user]), vectors=True) if self.can.fold_in else None
            if folded is None:
                return None
            vector, seen = folded[1][0], np.union1d(seen, events.indices)
        return index_top(self.index, vector, seen if exclude_seen else seen[:0], n, candidates)  # type: ignore[arg-type]
