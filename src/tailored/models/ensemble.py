"""An ensemble of algorithm families by rank fusion (Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion
outperforms Condorcet and individual Rank Learning Methods", SIGIR 2009).

Each member (any catalogued ranking algorithm, with its own defaults) is fitted on the same data and ranks every
item for a user, the user's training items last. The fused score of item ``i`` is

    rrf:     sum over members m of 1 / (rrf_k + rank_m(i))        (rank 1 = the member's best item)
    zscore:  sum over members m of (s_m(i) - mean_m) / std_m        (mean and std over the user's unseen items)

Reciprocal rank fusion needs no calibration between members whose scores live on different scales (an item-item
regression, a softmax decoder, a sigmoid), and ``rrf_k = 60`` is the paper's constant. Defaults (``ease-lowpass``,
``ncf``, ``multvae``, ``multdae``, ``ease-window``; ``rrf``) were chosen on five validation carves of the MovieLens
100K P1 training part, never on its test part (docs/algorithms/ensemble.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.models.base import (Choice, Float, HistoryScorer, Scorer, check_fitted, create_scorer, register,
                                  scorer_class, standardize, user_rows)
from tailored.models.neural.training import training_stage

logger = logging.getLogger(__name__)

FUSIONS = ("rrf", "zscore")


@register("ensemble")
@dataclass(eq=False)
class EnsembleScorer:
    members: str = "ease-lowpass,ncf,multvae,multdae,ease-window"
    fusion: str = "rrf"
    rrf_k: float = 60.0

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = False
    handles_cold_items: ClassVar[bool] = False
    search_space: ClassVar[dict[str, Float | Choice]] = {
        "fusion": Choice(FUSIONS),
        "rrf_k": Float(1.0, 200.0, log=True),
    }

    def fit(self, dataset: Dataset) -> Self:
        names = member_names(self.members)
        if self.fusion not in FUSIONS:
            raise ConfigError(f"ensemble.fusion must be one of {', '.join(FUSIONS)}, not {self.fusion!r}.")
        if self.rrf_k <= 0:
            raise ConfigError(f"ensemble.rrf_k must be positive, not {self.rrf_k}.")
        members = []
        for position, name in enumerate(names, start=1):
            logger.info("ensemble member %d/%d: fitting %s", position, len(names), name)
            with training_stage(f"member {position}/{len(names)} {name}"):
                members.append(create_scorer(name).fit(dataset))
        self.members_: list[Scorer] = members
        self.seen_ = dataset.matrix(binary=True)
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "members_")
        seen = user_rows(self.seen_, users)
        return self._fused([member.score(users) for member in self.members_], seen, items)

    def score_rows(self, rows: sp.csr_matrix, items: np.ndarray | None = None) -> np.ndarray:
        """Fused scores for users given by their history rows (a session, a new user's events), folded in by the
        members that fold a history in (`HistoryScorer`); the others are left out, and with none every item ties."""
        check_fitted(self, "members_")
        rows = sp.csr_matrix(rows)
        members = [member for member in self.members_ if isinstance(member, HistoryScorer)]
        return self._fused([member.score_rows(rows) for member in members], rows, items)

    def _fused(self, scores: list[np.ndarray], seen: sp.csr_matrix, items: np.ndarray | None) -> np.ndarray:
        """The members' scores (users x all items) fused, the ``seen`` items ranked last by every member."""
        mask = seen.toarray() > 0
        fuse = partial(reciprocal_ranks, rrf_k=self.rrf_k) if self.fusion == "rrf" else _standardized_over_unseen
        fused = np.zeros(mask.shape, np.float64)
        for member_scores in scores:
            fused += fuse(np.asarray(member_scores, np.float64), mask)
        fused = fused.astype(np.float32)
        return fused if items is None else fused[:, items]


def member_names(members: str) -> list[str]:
    """The comma-separated member algorithms, checked: known, ranking (not rating) algorithms, no nested ensemble."""
    names = [name.strip() for name in members.split(",") if name.strip()]
    if not names:
        raise ConfigError("ensemble.members names no algorithm; give a comma-separated list, e.g. 'ease,item-knn'.")
    for name in names:
        cls = scorer_class(name)
        if name == "ensemble" or cls.explicit:
            raise ConfigError(f"ensemble.members: '{name}' cannot be a member (members are ranking algorithms).")
    return names


def reciprocal_ranks(scores: np.ndarray, seen: np.ndarray, rrf_k: float) -> np.ndarray:
    """``1 / (rrf_k + rank)`` per row, rank 1 for the best unseen item; seen items rank after every unseen one."""
    order = np.argsort(np.where(seen, np.inf, -scores), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, scores.shape[1] + 1)[None, :], axis=1)
    return 1.0 / (rrf_k + ranks)


def _standardized_over_unseen(scores: np.ndarray, seen: np.ndarray) -> np.ndarray:
    return standardize(scores, ~seen)
