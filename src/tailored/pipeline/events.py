"""A trained user's events since training, counted without a refit (`Recommender.with_events`): which events
training did not hold, each user's events as a block of rows, and the scores of a history extended by them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.data.activity import DAY
from tailored.data.columns import ITEM_ID, TIMESTAMP, USER_ID
from tailored.data.idmap import IdMap
from tailored.errors import DataError
from tailored.models.base import Capabilities, Scorer, user_rows


def event_arrays(events: pd.DataFrame, users: IdMap, items: IdMap) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """User and item indices (-1: unknown) and times (unix seconds) of an events frame."""
    missing = [column for column in (USER_ID, ITEM_ID, TIMESTAMP) if column not in events]
    if missing:
        raise DataError(f"Events lack the column(s) {missing}: give user_id, item_id and timestamp (unix seconds).")
    return (users.index(events[USER_ID].to_numpy(dtype=str)), items.index(events[ITEM_ID].to_numpy(dtype=str)),
            events[TIMESTAMP].to_numpy(np.float64))


def unseen(users: np.ndarray, items: np.ndarray, seconds: np.ndarray, trained_users: np.ndarray,
           seen: sp.csr_matrix, last_seen: sp.csr_matrix | None) -> np.ndarray:
    """Which events (indices, times) training did not hold: of a trained user, with an item of the catalogue, later
    than the user's last trained interaction with that item (without times: an item the user had not had)."""
    keep = (users >= 0) & (items >= 0)
    keep[keep] = trained_users[users[keep]]
    if not keep.any():
        return keep
    pairs = users[keep], items[keep]
    if last_seen is None:
        trained = np.asarray(seen[pairs]).ravel() > 0
    else:
        last = np.asarray(last_seen[pairs]).ravel()
        trained = (last != 0) & (seconds[keep] / DAY <= last)
    keep[keep] = ~trained
    return keep


@dataclass(frozen=True, eq=False)
class LiveEvents:
    """The events since training of some trained users: ``owners`` (sorted user indices) and ``days`` (owners x
    items, days since the epoch, each row in time order with repeats)."""

    owners: np.ndarray
    days: sp.csr_matrix

    @classmethod
    def of(cls, users: np.ndarray, items: np.ndarray, seconds: np.ndarray, n_items: int) -> LiveEvents:
        """The events given as indices and unix seconds."""
        days = seconds / DAY
        order = np.lexsort((days, users))  # each user's events in time order
        owners, counts = np.unique(users[order], return_counts=True)
        matrix = sp.csr_matrix((days[order], items[order], np.concatenate([[0], np.cumsum(counts)])),
                               shape=(len(owners), n_items))  # built from its arrays: repeats kept
        return cls(owners, matrix)

    def rows(self, users: np.ndarray, n_items: int | None = None) -> sp.csr_matrix | None:
        """The events of a block of user indices (-1: none), block rows x ``n_items`` (None: the items known when
        the events came); None when none of them has any."""
        slots = np.searchsorted(self.owners, users)
        inside = np.minimum(slots, len(self.owners) - 1)
        slots = np.where((slots < len(self.owners)) & (self.owners[inside] == users), slots, -1)
        if (slots < 0).all():
            return None
        rows = user_rows(self.days, slots)
        return sp.csr_matrix((rows.data, rows.indices, rows.indptr), shape=(len(users), n_items or self.days.shape[1]))

    def seen(self, users: np.ndarray, history: sp.csr_matrix, last_seen: sp.csr_matrix | None
             ) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
        """A block's training ``history`` (binary) and ``last_seen`` times (days; None without times) with the
        users' events: their items seen, at the latest time."""
        events = self.rows(users, history.shape[1])
        if events is None:
            return history, last_seen
        latest = latest_per_item(events)
        history = history.maximum(latest.astype(bool).astype(history.dtype)).tocsr()
        return history, None if last_seen is None else last_seen.maximum(latest).tocsr()


def latest_per_item(events: sp.csr_matrix) -> sp.csr_matrix:
    """Each row's last value per item of an events block (rows in time order, repeats kept): the latest time."""
    coo = events.tocoo()
    keys = coo.row.astype(np.int64) * events.shape[1] + coo.col
    _, from_end = np.unique(keys[::-1], return_index=True)
    last = len(keys) - 1 - from_end
    return sp.csr_matrix((coo.data[last], (coo.row[last], coo.col[last])), shape=events.shape)


def folded_scores(scorer: Scorer, can: Capabilities, history: sp.csr_matrix, events: sp.csr_matrix | None,
                  users: np.ndarray, n_trained: int, vectors: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """For a block of trained users (-1: others) with ``events`` (their rows) on trained items, when the scorer
    folds a history in (``can.folds_in_history``): their rows in the block and their scores over the trained items,
    from their training history extended by those events -- a sequence model's training sequence with the events
    appended in time order; otherwise the ``history`` row (the scorer's ``user_items_``, else the binary training
    row) with each new item at 1 and the items already there at their trained value. With ``vectors``, the users'
    folded-in factors instead (``can.fold_in``). None when there is nothing to fold in."""
    if events is None or not can.folds_in_history:
        return None
    pairs = events.tocoo()  # row by row, each in time order
    on_trained = pairs.col < n_trained
    owners, items = pairs.row[on_trained], pairs.col[on_trained]
    rows, starts = np.unique(owners, return_index=True)
    if len(rows) == 0:
        return None
    if can.sequences:
        sequences = scorer.sequences_[users[rows]]  # type: ignore[attr-defined]
        histories = [[*sequence[sequence >= 0], *added]
                     for sequence, added in zip(sequences, np.split(items, starts[1:]))]
        return rows, np.asarray(scorer.score_sessions(histories), np.float32)  # type: ignore[attr-defined]
    trained = user_rows(history, users[rows])[:, :n_trained]
    added = sp.csr_matrix((np.ones(len(items), trained.dtype), (np.searchsorted(rows, owners), items)),
                          shape=trained.shape)
    added.data[:] = 1  # repeats were summed
    extended = trained.maximum(added).tocsr()
    if vectors:
        return rows, scorer.fold_in(extended)  # type: ignore[attr-defined]
    return rows, np.asarray(scorer.score_rows(extended), np.float32)  # type: ignore[attr-defined]
