"""A policy over a Recommender's list: the model proposes its top candidates for the query, the policy decides the
slate. One composition for the service, the simulator and off-policy evaluation (the same candidates everywhere).

The candidates are the model's best `candidate_count` items, then the user's best `new_candidate_count` items added
after training (`Recommender.with_items`) that are not among them: a new item known only by its attributes rarely
outscores the trained ones, and an exploring policy can only show what it is offered. When the scorer has vectors
(``inner_product``: als, bpr), the candidates carry the user's vector and the items' (zeros for new items, which
have none) for contextual policies (`linucb`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tailored.data.columns import ITEM_ID, USER_ID
from tailored.pipeline.recommender import Recommender
from tailored.policies.base import Candidates, Policy
from tailored.query import Query

CANDIDATES_PER_SLOT = 5
"""How many candidates per shown item the model proposes (at least ``MIN_CANDIDATES``)."""
MIN_CANDIDATES = 50
NEW_CANDIDATES_PER_SLOT = 5
"""How many of the user's best new items per shown item join the candidates: the attribute score ranks new items
only roughly, so a policy that learns which new items get clicked needs a wide choice (`thompson` in the new-items
simulation, 40,000 lists, 2,000 items: 1.066x greedy with 1 per slot, 1.099x with 2, 1.117x with 3, 1.134x with 5)."""

_NEW_ONLY: dict[int, tuple[Recommender, pd.DataFrame, Recommender]] = {}
"""Per model view (by id): the view, its new items and the view restricted to them, built once per catalogue; the
latest `_CACHED` views are kept."""
_CACHED = 4


@dataclass(frozen=True, eq=False)
class ShownList:
    """What one request showed, in display order: external item ids, the model's scores and the exact propensities."""

    item_ids: np.ndarray
    scores: np.ndarray
    propensities: np.ndarray


def candidate_count(k: int) -> int:
    return max(MIN_CANDIDATES, CANDIDATES_PER_SLOT * k)


def new_candidate_count(k: int) -> int:
    return NEW_CANDIDATES_PER_SLOT * k


def candidates_of(model: Recommender, query: Query, k: int) -> Candidates:
    """The model's best `candidate_count` items for the query, then its best `new_candidate_count` new items not
    among them; which of them were added after training; vectors when the scorer has them."""
    found = model.recommend_one(query, candidate_count(k))
    item_ids, scores = found.item_ids, found.scores
    new_only = _new_only(model)
    if new_only is not None:
        extra = new_only.recommend_one(query, new_candidate_count(k) + len(found))
        keep = ~np.isin(extra.item_ids, item_ids)
        item_ids = np.concatenate([item_ids, extra.item_ids[keep][:new_candidate_count(k)]])
        scores = np.concatenate([scores, extra.scores[keep][:new_candidate_count(k)]])
    return candidates_from(model, query.user_id, item_ids, scores)


def candidate_lists(model: Recommender, user_ids: np.ndarray, k: int) -> list[Candidates]:
    """`candidates_of` for many users (no context) at once, from one batch of the model's lists: the same
    candidates, the scores to float32 rounding (a block's sums run in another order than one row's)."""
    user_ids = np.asarray(user_ids, dtype=object)
    frame = model.recommend(user_ids, candidate_count(k), warn=False)
    new_only = _new_only(model)
    if new_only is not None:
        extra = new_only.recommend(user_ids, new_candidate_count(k) + candidate_count(k), warn=False)
        extra = extra[~pd.MultiIndex.from_frame(extra[[USER_ID, ITEM_ID]]).isin(
            pd.MultiIndex.from_frame(frame[[USER_ID, ITEM_ID]]))]
        extra = extra[extra.groupby(USER_ID, sort=False).cumcount() < new_candidate_count(k)]
        frame = pd.concat([frame, extra], ignore_index=True)
        frame = frame.iloc[np.argsort(pd.Index(user_ids).get_indexer(frame[USER_ID]), kind="stable")]
    ends = np.cumsum(frame.groupby(USER_ID, sort=False).size().reindex(user_ids, fill_value=0).to_numpy())
    item_ids, scores = frame[ITEM_ID].to_numpy(), frame["score"].to_numpy(np.float64)
    return [candidates_from(model, user, ids, values) for user, ids, values in
            zip(user_ids, np.split(item_ids, ends[:-1]), np.split(scores, ends[:-1]), strict=True)]


def _new_only(model: Recommender) -> Recommender | None:
    """The view of ``model`` that ranks only its new items (None without any), cached per view."""
    added = model.new_items_.added
    if added is None or added.empty:
        return None
    cached = _NEW_ONLY.get(id(model))
    if cached is None or cached[0] is not model or cached[1] is not added:
        cached = (model, added, model.restricted_to(added[ITEM_ID].to_numpy()))
        _NEW_ONLY[id(model)] = cached
        while len(_NEW_ONLY) > _CACHED:
            del _NEW_ONLY[next(iter(_NEW_ONLY))]
    return cached[2]


def candidates_from(model: Recommender, user_id: str | None, item_ids: np.ndarray, scores: np.ndarray) -> Candidates:
    """`Candidates` of one user's items: new flags, finite scores, the scorer's vectors when it has them (the
    user's -- the average user's for a user it was not trained on -- and the items', zeros for new items)."""
    added = model.new_items_.added
    new = (np.isin(item_ids, added[ITEM_ID].to_numpy()) if added is not None and len(item_ids)
           else np.zeros(len(item_ids), bool))
    scores = np.nan_to_num(np.asarray(scores, np.float64), nan=0.0, neginf=np.finfo(np.float64).min / 4)
    if not model.can_.vectors:
        return Candidates(item_ids, scores, new)
    user_factors, item_factors = model.scorer.user_factors_, model.scorer.item_factors_  # type: ignore[attr-defined]
    user = -1 if user_id is None else model.users_.index(np.array([user_id]), missing="mask")[0]
    user_vector = (user_factors[user] if user >= 0 else user_factors.mean(axis=0)).astype(np.float64)
    items = model.items_.index(np.asarray(item_ids).astype(str), missing="mask")
    trained = (items >= 0) & (items < len(item_factors))
    vectors = np.zeros((len(item_ids), item_factors.shape[1]))
    vectors[trained] = item_factors[items[trained]]
    return Candidates(item_ids, scores, new, user_vector, vectors)


def feedback_features(candidates: Candidates, rows: int) -> np.ndarray | None:
    """The ``features`` of ``rows`` feedback rows of one list shown from ``candidates`` (`Feedback.features`): the
    user's vector on every row, as `linucb` reads it at choice time (None without vectors)."""
    if candidates.user_vector is None:
        return None
    return np.tile(np.asarray(candidates.user_vector, np.float64), (rows, 1))


def shown(candidates: Candidates, policy: Policy, k: int, rng: np.random.Generator) -> ShownList:
    """The policy's slate over ``candidates``, as a `ShownList`."""
    slate = policy.choose(candidates, min(k, len(candidates)), rng)
    return ShownList(candidates.item_ids[slate.chosen], candidates.scores[slate.chosen], slate.propensities)


def request_rng(seed: int, exposure_id: str) -> np.random.Generator:
    """The random stream of one request: a function of the policy's seed and the exposure id (a hex string), so a
    logged list can be drawn again."""
    return np.random.default_rng([seed, int(exposure_id[:16], 16)])
