"""EASE: Embarrassingly Shallow Autoencoders for sparse data (Steck, WWW 2019).

A closed-form item-item model: ``B = argmin ||X - XB||^2 + reg ||B||^2`` with ``diag(B) = 0``, solved as
``P = (X^T X + reg I)^-1``, ``B = -P / diag(P)``. Scores are ``h_u B`` where the history ``h_u`` is ``X_u`` or,
with a finite ``recency_half_life``, ``X_u`` with the user's k-th most recent interaction weighted by
``0.5 ** (k / half_life)`` (the next item follows from the latest ones). The default ``reg`` sits in the flat
optimum (300-500) found on validation splits carved from MovieLens 100K training data (``tailored benchmark movielens-100k --validation``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.data.transforms import recency_weighted
from tailored.models.base import Choice, Float, check_fitted, register, user_rows


@register("ease")
@dataclass(eq=False)
class EASEScorer:
    reg: float = 400.0
    recency_half_life: float = math.inf

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = False
    handles_cold_items: ClassVar[bool] = False
    search_space: ClassVar[dict[str, Float | Choice]] = {
        "reg": Float(10.0, 10000.0, log=True),
        "recency_half_life": Choice((math.inf, 1.0, 3.0, 10.0, 30.0, 100.0)),
    }

    def fit(self, dataset: Dataset) -> Self:
        matrix = dataset.matrix()
        gram = (matrix.T @ matrix).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.reg
        precision = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
        weights = precision / (-np.diag(precision))
        np.fill_diagonal(weights, 0.0)
        self.weights_ = weights.astype(np.float32)
        self.user_items_ = recency_weighted(dataset, self.recency_half_life)
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "weights_")
        return self.score_rows(user_rows(self.user_items_, users), items)

    def score_rows(self, rows: sp.csr_matrix, items: np.ndarray | None = None) -> np.ndarray:
        """Scores for users given by history rows (users x items): a new user or a session, without refitting."""
        check_fitted(self, "weights_")
        weights = self.weights_ if items is None else self.weights_[:, items]
        return np.asarray(rows @ weights)
