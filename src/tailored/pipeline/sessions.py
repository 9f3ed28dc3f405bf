"""Sessions: a new user known by the items just viewed or bought (the context's ``recent``, oldest first), scored by
the scorer from those items -- a sequence model (`SequenceScorer`) reads their order, a history model
(`HistoryScorer`) their set -- and steadied by the new-user prior (`NewUsers.prior`), which weighs less as the
session says more (`Sessions.prior_weight`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from tailored.models.base import Capabilities, Scorer, standardize

FULL_PRIOR_SESSION = 5
"""Sessions of up to this many items get the whole ``session_prior``; a longer one of n items gets ``5 / n`` of it."""


@dataclass(frozen=True, eq=False)
class Session:
    """A session's trained items, the scorer's standardised scores of it over the trained items (None for a
    scorer that cannot read one: the prior alone ranks), and the items they are standardised over (``masked``:
    the session's and those without interactions are not)."""

    items: np.ndarray
    scores: np.ndarray | None
    masked: np.ndarray


@dataclass(frozen=True, eq=False)
class Sessions:
    """Scores sessions with ``scorer`` as far as it can (``can``), over the trained items (``warm_items``: those
    with interactions), blended with a prior weighted by ``session_prior``."""

    scorer: Scorer
    can: Capabilities
    warm_items: np.ndarray
    session_prior: float

    def session(self, items: np.ndarray) -> Session | None:
        """The session of these item indices (oldest first; items added after training are left out); None when
        none is a trained item."""
        items = items[items < len(self.warm_items)]
        if len(items) == 0:
            return None
        if self.can.sequences:
            scores = self.scorer.score_sessions([items.tolist()])  # type: ignore[attr-defined]
        elif self.can.histories:
            scores = self.scorer.score_rows(history_row(items, len(self.warm_items)))  # type: ignore[attr-defined]
        else:
            scores = None
        masked = ~self.warm_items[None, :].copy()
        masked[:, items] = True
        return Session(items, None if scores is None else standardize(np.asarray(scores, np.float64), ~masked), masked)

    def scores(self, session: Session, prior: np.ndarray) -> np.ndarray:
        """The session's scores (rows x trained items, one row per user who shares it): the scorer's plus the
        users' standardised ``prior`` weighted by `prior_weight`."""
        prior = standardize(prior, ~session.masked)
        weight = self.prior_weight(len(np.unique(session.items)))
        return (prior if session.scores is None else session.scores + weight * prior).astype(np.float32)

    def shared(self, session: Session) -> tuple[sp.csr_matrix, np.ndarray]:
        """The session as one interaction row over the trained items and the prior's weight for it (a column): what
        the models of new items fold in."""
        history = history_row(session.items, len(self.warm_items))
        return history, self.prior_weight(history.getnnz(axis=1))[:, None]

    def prior_weight(self, session_items: int | np.ndarray) -> np.ndarray:
        """The prior's weight for sessions of ``session_items`` distinct trained items: ``session_prior`` up to
        `FULL_PRIOR_SESSION`, then shrinking as ``1 / n`` -- the more a session says, the less the prior needs to
        steady it (on validation, the best weight fell from 2 at 2 to 5 items to about 1 at 10 and 0.5 at 20:
        docs/benchmarks.md)."""
        return self.session_prior * np.minimum(1.0, FULL_PRIOR_SESSION / np.maximum(session_items, 1))


def history_row(items: np.ndarray, n_items: int) -> sp.csr_matrix:
    """One interaction row (value 1) holding ``items`` (indices, repeats counted once): a session as history models
    read one."""
    unique = np.unique(items)
    return sp.csr_matrix((np.ones(len(unique), np.float32), unique, [0, len(unique)]), shape=(1, n_items))
