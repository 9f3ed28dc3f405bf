"""EASE over sliding windows of each user's timeline (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data",
WWW 2019; the session-level Gram matrix of Choi et al., "Session-aware Linear Item-Item Models for Session-based
Recommendation", WWW 2021).

EASE's Gram matrix ``X^T X`` counts two items together wherever one user has both, however far apart in the user's
history. Here each user's distinct items, ordered by time (ties by item id, whatever the order of the rows), are cut
into every window of ``window`` consecutive ones (windows overhanging either end included), and the Gram matrix is
that of those pseudo-sessions divided by ``window``:

    G_ii = number of users with item i
    G_ij = sum over users having i and j, d positions apart with d < window, of (1 - d / window)

A sum of outer products, hence positive semi-definite; ``B = -P / diag(P)`` with ``P = (G + reg I)^-1`` as in EASE,
and scores are ``X_u B`` over the user's whole history. Items taken one after the other count almost fully, items
further apart less, items ``window`` positions apart or more not at all: a different view of the data from EASE's,
which is what an ensemble member needs. Defaults (``window=20``, ``reg=100``) were chosen on validation carves of
the MovieLens 100K P1 training part (docs/algorithms/ease-window.md; figures in docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np

from tailored.config import require_dense_items
from tailored.data.dataset import Dataset
from tailored.data.ordering import time_ordered
from tailored.errors import ConfigError
from tailored.models.base import Float, Int, register
from tailored.models.ease import DENSE_BYTES_PER_ENTRY, ItemItemScores, weights_from_gram


@register("ease-window")
@dataclass(eq=False)
class EASEWindowScorer(ItemItemScores):
    window: int = 20
    reg: float = 100.0

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = False
    handles_cold_items: ClassVar[bool] = False
    search_space: ClassVar[dict[str, Float | Int]] = {
        "window": Int(2, 200, log=True),
        "reg": Float(10.0, 10000.0, log=True),
    }

    def fit(self, dataset: Dataset) -> Self:
        if self.window < 2:
            raise ConfigError(f"ease-window.window must be at least 2 interactions (a pair), not {self.window}.")
        require_dense_items(dataset.n_items, DENSE_BYTES_PER_ENTRY, "ease-window")
        gram = window_gram(dataset, self.window)
        self.weights_ = weights_from_gram(gram, self.reg, "ease-window: the windows' Gram matrix").astype(np.float32)
        self.user_items_ = dataset.matrix(binary=True).astype(np.float32)
        return self


def window_gram(dataset: Dataset, window: int) -> np.ndarray:
    """The dense float64 Gram matrix of every user's windows of ``window`` consecutive distinct items, / window."""
    users, items = time_ordered(dataset)
    _, first = np.unique(users * dataset.n_items + items, return_index=True)
    first.sort()  # each (user, item) once, at its first interaction, in time order
    users, items = users[first], items[first]
    gram = np.zeros((dataset.n_items, dataset.n_items))
    flat = gram.reshape(-1)
    np.add.at(flat, items * (dataset.n_items + 1), 1.0)
    for distance in range(1, window):
        same_user = users[distance:] == users[:-distance]
        before, after = items[:-distance][same_user], items[distance:][same_user]
        weight = 1.0 - distance / window
        np.add.at(flat, before * dataset.n_items + after, weight)
        np.add.at(flat, after * dataset.n_items + before, weight)
    return gram
