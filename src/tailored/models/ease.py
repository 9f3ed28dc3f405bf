"""EASE: Embarrassingly Shallow Autoencoders for sparse data (Steck, WWW 2019).

A closed-form item-item model: ``B = argmin ||X - XB||^2 + reg ||B||^2`` with ``diag(B) = 0``, solved as
``P = (X^T X + reg I)^-1``, ``B = -P / diag(P)``. Scores are ``X_u B``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import scipy.linalg

from tailored.data.dataset import Dataset
from tailored.models.base import check_fitted, register, user_rows


@register("ease")
@dataclass(eq=False)
class EASEScorer:
    reg: float = 400.0

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = False

    def fit(self, dataset: Dataset) -> Self:
        matrix = dataset.matrix()
        gram = (matrix.T @ matrix).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.reg
        precision = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
        weights = precision / (-np.diag(precision))
        np.fill_diagonal(weights, 0.0)
        self.weights_ = weights.astype(np.float32)
        self.user_items_ = matrix
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "weights_")
        weights = self.weights_ if items is None else self.weights_[:, items]
        return np.asarray(user_rows(self.user_items_, users) @ weights)
