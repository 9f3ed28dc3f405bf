"""Recommender: the only thing that recommends. Scorer + cold-start fallback + seen-item exclusion + top-n."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd

from tailored.data.columns import ITEM_ID, RANK, SCORE, USER_ID
from tailored.data.dataset import Dataset
from tailored.data.transforms import Weighting, apply_weighting
from tailored.config import convert
from tailored.errors import ConfigError, NotFittedError
from tailored.models.base import Scorer, create_scorer, hyperparameters, scorer_class, top_k
from tailored.models.demographic import DemographicScorer, usable_columns
from tailored.models.popularity import PopularityScorer


@dataclass(eq=False)
class Recommender:
    """Fits a scorer on weighted interactions and turns its scores into top-n lists with external ids.

    Users unseen in training (or with no training interaction) get the ``fallback`` scorer's list: by default the
    ``demographic`` model when the training data has usable user attributes (so new users described by their
    attributes get lists that depend on them), popularity otherwise.
    Items without any training interaction are never recommended unless the scorer handles cold items and the
    item has attributes.
    """

    scorer: Scorer
    weighting: Weighting = "raw"
    confidence_alpha: float = 1.0
    exclude_seen: bool = True
    fallback: Scorer | None = None
    batch_size: int = 1024

    def fit(self, dataset: Dataset) -> Self:
        train = apply_weighting(dataset, self.weighting, self.confidence_alpha)
        self.scorer.fit(train)
        self.fallback_ = (self.fallback if self.fallback is not None else default_fallback(dataset)).fit(train)
        self.users_ = dataset.users
        self.items_ = dataset.items
        self.seen_ = dataset.matrix(binary=True)
        self.warm_users_ = dataset.user_counts() > 0
        self.candidate_items_ = dataset.item_counts() > 0
        if self.scorer.handles_cold_items:
            self.candidate_items_ |= _has_attributes(dataset)
        return self

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "seen_")

    def _check(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(self)

    # -- ranking ----------------------------------------------------------------------------------------------
    def score_block(self, users: np.ndarray) -> np.ndarray:
        """Dense scores for user indices (-1 = unknown), with excluded items at -inf."""
        users = np.asarray(users, np.int64)
        scores, warm = self._raw_scores(users)
        scores[:, ~self.candidate_items_] = -np.inf
        if self.exclude_seen and warm.any():
            seen = self.seen_[users[warm]].tocoo()
            scores[np.flatnonzero(warm)[seen.row], seen.col] = -np.inf
        return scores

    def recommend_indices(self, users: np.ndarray, n: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yield ``(user_indices, item_indices[b, n], scores[b, n])`` blocks; missing slots are -1 / -inf."""
        self._check()
        users = np.asarray(users, np.int64)
        for start in range(0, len(users), self.batch_size):
            block = users[start : start + self.batch_size]
            items, scores = top_k(self.score_block(block), n)
            yield block, items, scores

    def recommend(self, user_ids: np.ndarray | list, n: int = 10, attributes: pd.DataFrame | None = None) -> pd.DataFrame:
        """Top-n per user as a tidy frame ``user_id, item_id, score, rank`` (rank 1 is best), users in the given order.

        ``attributes`` (a ``user_id`` column + attribute columns) describes users unknown at training time; an
        attribute-aware fallback scores them from those attributes.
        """
        self._check()
        user_ids = np.asarray(user_ids)
        indices = self.users_.index(user_ids, missing="mask")
        described = np.zeros(len(user_ids), bool)
        if attributes is not None and hasattr(self.fallback_, "score_attributes"):
            described = (indices < 0) & np.isin(user_ids, attributes[USER_ID].to_numpy())
        frames = []
        plain = user_ids[~described]
        for start, (block, items, scores) in zip(range(0, len(plain), self.batch_size),
                                                 self.recommend_indices(indices[~described], n)):
            frames.append(self._tidy(plain[start : start + len(block)], items, scores))
        if described.any():
            rows = attributes.drop_duplicates(USER_ID, keep="last").set_index(USER_ID).loc[user_ids[described]]
            scores = self.fallback_.score_attributes(rows.reset_index(drop=True))  # type: ignore[attr-defined]
            scores[:, ~self.candidate_items_] = -np.inf
            frames.append(self._tidy(user_ids[described], *top_k(scores, n)))
        if not frames:
            return pd.DataFrame({USER_ID: [], ITEM_ID: [], SCORE: [], RANK: []})
        frame = pd.concat(frames, ignore_index=True)
        if described.any():
            position = pd.Index(user_ids).get_indexer(frame[USER_ID])
            frame = frame.iloc[np.lexsort((frame[RANK].to_numpy(), position))].reset_index(drop=True)
        return frame

    def _tidy(self, user_ids: np.ndarray, items: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        valid = items >= 0
        rows, ranks = np.nonzero(valid)
        return pd.DataFrame(
            {
                USER_ID: user_ids[rows],
                ITEM_ID: self.items_.ids(items[valid]),
                SCORE: scores[valid].astype(np.float64),
                RANK: ranks + 1,
            }
        )

    # -- rating prediction ------------------------------------------------------------------------------------
    def predict(self, user_ids: np.ndarray | list, item_ids: np.ndarray | list) -> np.ndarray:
        """A prediction for every (user, item) pair; ids unseen in training get the model's fallback."""
        self._check()
        users = self.users_.index(np.asarray(user_ids), missing="mask")
        items = self.items_.index(np.asarray(item_ids), missing="mask")
        if self.scorer.explicit:
            return np.asarray(self.scorer.predict(users, items), np.float64)  # type: ignore[attr-defined]
        predictions = np.zeros(len(users), np.float64)
        order = np.argsort(users, kind="stable")
        unique_users, starts = np.unique(users[order], return_index=True)
        for start in range(0, len(unique_users), self.batch_size):
            block = unique_users[start : start + self.batch_size]
            scores, _ = self._raw_scores(block)
            pair_slice = slice(starts[start], starts[start + len(block)] if start + len(block) < len(starts) else None)
            pairs = order[pair_slice]
            rows = np.searchsorted(block, users[pairs])
            known = items[pairs] >= 0
            predictions[pairs[known]] = scores[rows[known], items[pairs][known]]
        return predictions

    def _raw_scores(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scorer scores for warm users, fallback scores for the others; also returns the warm mask."""
        warm = users >= 0
        warm[warm] = self.warm_users_[users[warm]]
        scores = np.empty((len(users), len(self.items_)), np.float32)
        if warm.any():
            scores[warm] = self.scorer.score(users[warm])
        if (~warm).any():
            scores[~warm] = self.fallback_.score(users[~warm])
        return scores, warm


def default_fallback(dataset: Dataset) -> Scorer:
    """The demographic model when users carry usable attributes, popularity otherwise."""
    if usable_columns(dataset.user_attributes, DemographicScorer.max_categories):
        return DemographicScorer()
    return PopularityScorer()


def _has_attributes(dataset: Dataset) -> np.ndarray:
    table = dataset.item_attributes
    if table is None:
        return np.zeros(dataset.n_items, bool)
    return table.notna().any(axis=1).to_numpy()


RECOMMENDER_PARAMS = ("weighting", "confidence_alpha")


def build_recommender(algorithm: str, params: Mapping[str, Any] | None = None) -> Recommender:
    """A Recommender for ``algorithm``: ``weighting`` and ``confidence_alpha`` configure the Recommender, the other
    parameters the scorer (strings, as from the command line, are converted to the declared types)."""
    params = dict(params or {})
    valid = sorted(hyperparameters(scorer_class(algorithm))) + list(RECOMMENDER_PARAMS)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ConfigError(f"Unknown parameter(s) {unknown} for algorithm '{algorithm}'. Valid parameters: {', '.join(valid)}.")
    scorer = create_scorer(algorithm, {k: v for k, v in params.items() if k not in RECOMMENDER_PARAMS})
    settings: dict[str, Any] = {}
    if "weighting" in params:
        settings["weighting"] = convert(params["weighting"], Weighting, "weighting")
    if "confidence_alpha" in params:
        settings["confidence_alpha"] = convert(params["confidence_alpha"], float, "confidence_alpha")
    return Recommender(scorer, **settings)
