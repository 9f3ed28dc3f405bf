"""A policy over a Recommender's list: the model proposes its top candidates for the query, the policy decides the
slate. One composition for the service, the simulator and off-policy evaluation (the same candidates everywhere)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tailored.pipeline.recommender import Recommender
from tailored.policies.base import Candidates, Policy
from tailored.query import Query

CANDIDATES_PER_SLOT = 5
"""How many candidates per shown item the model proposes (at least ``MIN_CANDIDATES``)."""
MIN_CANDIDATES = 50


@dataclass(frozen=True, eq=False)
class ShownList:
    """What one request showed, in display order: external item ids, the model's scores and the exact propensities."""

    item_ids: np.ndarray
    scores: np.ndarray
    propensities: np.ndarray


def candidate_count(k: int) -> int:
    return max(MIN_CANDIDATES, CANDIDATES_PER_SLOT * k)


def candidates_of(model: Recommender, query: Query, k: int) -> Candidates:
    """The model's best `candidate_count` items for the query, with which of them were added after training."""
    found = model.recommend_one(query, candidate_count(k))
    added = model.new_items_.added
    new = (np.isin(found.item_ids, added["item_id"].to_numpy()) if added is not None and len(found)
           else np.zeros(len(found), bool))
    scores = np.nan_to_num(found.scores.astype(np.float64), nan=0.0, neginf=np.finfo(np.float64).min / 4)
    return Candidates(found.item_ids, scores, new)


def shown(candidates: Candidates, policy: Policy, k: int, rng: np.random.Generator) -> ShownList:
    """The policy's slate over ``candidates``, as a `ShownList`."""
    slate = policy.choose(candidates, min(k, len(candidates)), rng)
    return ShownList(candidates.item_ids[slate.chosen], candidates.scores[slate.chosen], slate.propensities)


def request_rng(seed: int, exposure_id: str) -> np.random.Generator:
    """The random stream of one request: a function of the policy's seed and the exposure id (a hex string), so a
    logged list can be drawn again."""
    return np.random.default_rng([seed, int(exposure_id[:16], 16)])
