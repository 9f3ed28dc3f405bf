"""The learned second stage's queries from a feedback log (`tailored.models.ranker`, ``feedback=FILE``): what was
shown, where, and what it earned, as `tailored logs export` writes it.

Each positive outcome (a click; with ``gain="value"``, a purchase's revenue) becomes one query: the shown item that
earned it (relevant) and the items of the same list that earned nothing (not relevant); the list's other positives
are left out of it, so that no positive is ranked against another. Its weight is the inverse of the examination
probability of the positive's position (``1 / theta_p``, the position-based model estimated from the log's clicks by
`tailored.data.position_bias`), normalised to a mean of 1: a click in slot 8, which few customers reach, counts
for more than one in slot 1. Weighting each query's pairwise loss by the inverse examination propensity of its
clicked item is the propensity-weighted ranking loss of Joachims, Swaminathan & Schnabel, "Unbiased Learning-to-Rank
with Biased Feedback" (WSDM 2017), which is unbiased for the loss on the relevant items under that click model.

The log's per-position propensities (the logging policy's probability of showing the item at that position) are
checked but do not weigh the queries: a position-level inverse propensity counts an item once per position it could
have been shown at, so it is unbiased only for policies whose support is one position per item or every position;
the item-level propensity that would correct which items were shown needs each list's whole distribution, which the
log does not hold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from tailored.data.dataset import Dataset
from tailored.data.feedback_log import CREATED_AT, EXPOSURE_ID, POSITION, read_feedback_log
from tailored.errors import DataError
from tailored.models.ranker_features import ContextKeys
from tailored.data.position_bias import estimate_position_bias

logger = logging.getLogger(__name__)

WEIGHTINGS = ("position", "none")


@dataclass(frozen=True)
class FeedbackLog:
    """A feedback log's rows whose user and item the training data knows, as indices, with their time."""

    users: np.ndarray
    items: np.ndarray
    exposures: np.ndarray
    """Each row's list, numbered 0..lists - 1."""
    positions: np.ndarray
    """1 = the top."""
    seconds: np.ndarray
    clicks: np.ndarray
    rewards: np.ndarray
    """The outcome learnt from: the click (0/1), or the revenue."""
    frame: pd.DataFrame
    """The kept rows as read (their context columns, if any)."""

    @classmethod
    def read(cls, path: str, dataset: Dataset, reward: str) -> FeedbackLog:
        """The log at ``path`` (checked by `read_feedback_log`, which names the file, column and rows of a problem);
        rows of a user or item the dataset does not hold are left out, with a warning. A DataError when the log has
        no ``created_at`` (the features are read from the interactions before the first list) or no known row."""
        log = read_feedback_log(path, reward)
        if CREATED_AT not in log.columns:
            raise DataError(f"Column '{CREATED_AT}' not found in {path}: the ranker reads its features from the "
                            "interactions before the log's first list, so each row needs the time it was shown; "
                            "export the log again with `tailored logs export`.")
        if "click" not in log.columns:
            raise DataError(f"Column 'click' not found in {path}: the position bias is estimated from the clicks.")
        users = dataset.users.index(log["user_id"].to_numpy())
        items = dataset.items.index(log["item_id"].to_numpy())
        known = (users >= 0) & (items >= 0)
        if not known.any():
            raise DataError(f"None of the {len(log):,} rows of {path} has a user and an item of the training "
                            "interactions: the log and the interactions must come from the same shop.")
        if not known.all():
            logger.warning("ranker.feedback: %d of the %d rows of %s name a user or an item absent from the training "
                           "interactions; left out.", (~known).sum(), len(log), path)
        log = log[known].reset_index(drop=True)
        return cls(users[known].astype(np.int64), items[known].astype(np.int64),
                   pd.factorize(log[EXPOSURE_ID])[0].astype(np.int64), log[POSITION].to_numpy(np.int64),
                   log[CREATED_AT].to_numpy(np.float64), log["click"].to_numpy(np.float64),
                   log[reward].to_numpy(np.float64), log)

    def examination(self) -> np.ndarray:
        """theta_1..theta_P of the position-based model, from the log's impressions and clicks per (item, position)
        (`estimate_position_bias`), theta_1 = 1."""
        _, item = np.unique(self.items, return_inverse=True)
        shape = (int(item.max()) + 1, int(self.positions.max()))
        impressions = np.zeros(shape)
        clicks = np.zeros(shape)
        np.add.at(impressions, (item, self.positions - 1), 1.0)
        np.add.at(clicks, (item, self.positions - 1), self.clicks)
        return estimate_position_bias(impressions, clicks)

    def levels(self, keys: ContextKeys) -> np.ndarray:
        """rows x context keys: the hour, weekday and month of each row's time, and the value of each other key the log
        carries as a column (-1 where it does not: not given)."""
        return keys.row_levels(self.frame, self.seconds)


@dataclass(frozen=True)
class FeedbackGroups:
    """The ranker's queries from a log: one per positive row, its members the positive and its list's rows that
    earned nothing; members by query (``query``: each member's query, sorted)."""

    users: np.ndarray
    """Per query."""
    levels: np.ndarray
    """queries x context keys."""
    weights: np.ndarray
    """Per query: 1 / theta of the positive's position, over their mean (1 without weighting)."""
    query: np.ndarray
    items: np.ndarray
    labels: np.ndarray
    """Per member: 1 for the positive (by value: its grade), 0 for the others."""
    gains: np.ndarray | None = None
    """By value: each grade's gain (LightGBM's ``label_gain``)."""
    weighted: ClassVar[bool] = True

    @classmethod
    def of(cls, log: FeedbackLog, levels: np.ndarray, weighting: str, grades: np.ndarray | None = None,
           gains: np.ndarray | None = None) -> FeedbackGroups:
        """The queries of ``log`` (``levels``: its rows' context levels; ``grades``: the positives' relevance grades,
        default 1, and ``gains`` theirs), weighted by ``weighting`` (`WEIGHTINGS`)."""
        positive = np.flatnonzero(log.rewards > 0)
        others = np.flatnonzero(log.rewards <= 0)
        others = others[np.argsort(log.exposures[others], kind="stable")]
        starts = np.searchsorted(log.exposures[others], log.exposures[positive], side="left")
        sizes = 1 + np.searchsorted(log.exposures[others], log.exposures[positive], side="right") - starts
        query = np.repeat(np.arange(len(positive)), sizes)
        offset = np.arange(len(query)) - np.concatenate([[0], np.cumsum(sizes)[:-1]])[query]
        member = np.clip(starts[query] + offset - 1, 0, len(others))  # offset 0 (the positive) reads no member
        rows = np.where(offset == 0, positive[query], np.append(others, -1)[member])
        labels = np.where(offset == 0, 1.0 if grades is None else grades[query], 0.0)
        weights = np.ones(len(positive))
        if weighting == "position" and len(positive):
            theta = log.examination()
            weights = 1.0 / theta[log.positions[positive] - 1]
            weights /= weights.mean()
        return cls(log.users[positive], levels[positive], weights, query, log.items[rows], labels, gains)

    def subset(self, chosen: np.ndarray) -> FeedbackGroups:
        """The queries ``chosen`` (a mask), renumbered."""
        members = chosen[self.query]
        renumber = np.cumsum(chosen) - 1
        return FeedbackGroups(self.users[chosen], self.levels[chosen], self.weights[chosen],
                              renumber[self.query[members]], self.items[members], self.labels[members], self.gains)
