"""The lists a Recommender gives: one query's as arrays (`Recommendations`: `Recommender.recommend_one`), a batch's
as a tidy frame (`Recommender.recommend`): ``user_id, item_id, score, rank`` (+ ``model``, ``reasons``), users in
the order asked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tailored.data.columns import ITEM_ID, MODEL, RANK, REASONS, SCORE, USER_ID


@dataclass(frozen=True, eq=False)
class Recommendations:
    """One query's list, best first: external item ids, scores, each item's reasons (None unless asked) and the model
    that produced it (`Recommender.list_models`)."""

    item_ids: np.ndarray
    scores: np.ndarray
    reasons: np.ndarray | None
    models: np.ndarray

    def __len__(self) -> int:
        return len(self.item_ids)


def tidy(user_ids: np.ndarray, item_ids: np.ndarray, items: np.ndarray, scores: np.ndarray,
         reasons: np.ndarray | None = None) -> pd.DataFrame:
    """The frame of a block of lists: ``items[b, n]`` (indices, -1: empty slot) whose external ids are
    ``item_ids``, their scores and reasons, for the block's ``user_ids``."""
    valid = items >= 0
    rows, ranks = np.nonzero(valid)
    frame = pd.DataFrame({USER_ID: user_ids[rows], ITEM_ID: item_ids[items[valid]],
                          SCORE: scores[valid].astype(np.float64), RANK: ranks + 1})
    if reasons is not None:
        frame[REASONS] = reasons[valid]
    return frame


def joined(frames: list[pd.DataFrame], user_ids: np.ndarray, reordered: bool) -> pd.DataFrame:
    """The frames of the blocks as one, the users in the order of ``user_ids`` when ``reordered`` (the blocks
    took them out of it)."""
    if not frames:
        return pd.DataFrame({USER_ID: [], ITEM_ID: [], SCORE: [], RANK: []})
    frame = pd.concat(frames, ignore_index=True)
    if reordered:
        position = pd.Index(user_ids).get_indexer(frame[USER_ID])
        frame = frame.iloc[np.lexsort((frame[RANK].to_numpy(), position))].reset_index(drop=True)
    return frame


def with_models(frame: pd.DataFrame, user_ids: np.ndarray, names: np.ndarray) -> pd.DataFrame:
    """``frame`` with the ``model`` column: each user's model of ``names`` (one per user of ``user_ids``)."""
    if len(frame) and (names == names[0]).all():  # one model for every list (a single user's request): no lookup
        column = pd.Categorical.from_codes(np.zeros(len(frame), np.int8), [names[0]])
    else:
        models = pd.Series(names, index=user_ids)
        column = pd.Categorical(models[~models.index.duplicated()].reindex(frame[USER_ID]).to_numpy())
    frame.insert(4, MODEL, column)
    return frame


def prefixed(added: np.ndarray, given: np.ndarray) -> np.ndarray:
    """Reasons ``added`` before those ``given`` ("; "-joined where both say something)."""
    return np.where(given == "", added, np.where(added == "", given, added + "; " + given))


def pair_values(users: np.ndarray, items: np.ndarray, batch_size: int,
                scores_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """The value of each (user, item) index pair in the score rows ``scores_of`` gives for blocks of up to
    ``batch_size`` distinct users; 0 for an unknown item (-1)."""
    values, order = np.zeros(len(users), np.float64), np.argsort(users, kind="stable")
    unique_users, starts = np.unique(users[order], return_index=True)
    ends = np.append(starts[1:], len(users))
    for start in range(0, len(unique_users), batch_size):
        block = unique_users[start : start + batch_size]
        pairs = order[starts[start] : ends[start + len(block) - 1]]  # the pairs of the block's users
        pairs = pairs[items[pairs] >= 0]
        values[pairs] = scores_of(block)[np.searchsorted(block, users[pairs]), items[pairs]]
    return values


def undescribed_message(user_ids: np.ndarray, fallback: str) -> str:
    """The warning for users who get an anonymous visitor's list (`Recommender.undescribed_users`)."""
    examples = ", ".join(map(repr, user_ids[:3].tolist()))
    generic = "the most popular items" if fallback == "popularity" else f"the {fallback} model's"
    return (f"{len(user_ids):,} user id(s) unknown to the model and without attributes, e.g. {examples}: they get an "
            f"anonymous visitor's list ({generic}).")


def short_lists(frame: pd.DataFrame, k: int, user_ids: np.ndarray | None = None) -> int:
    """How many users got fewer than ``k`` items (``user_ids``: those asked for, so that empty lists count too)."""
    sizes = frame.groupby(USER_ID).size()
    asked = len(sizes) if user_ids is None else len(pd.unique(np.asarray(user_ids).astype(str)))
    return int((sizes < k).sum()) + asked - len(sizes)


def short_lists_message(count: int, k: int) -> str:
    """The warning for lists shorter than asked (`short_lists`)."""
    return f"{count:,} user(s) got fewer than {k} items: the rules, filters or candidates left too few items."
