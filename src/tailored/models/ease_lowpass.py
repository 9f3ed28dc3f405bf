"""EASE plus GF-CF's ideal low-pass filter (Shen et al., "How Powerful is Graph Convolution for Recommendation?",
CIKM 2021; Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019).

GF-CF scores a user's history ``r_u`` with two item-item filters: a linear one and an *ideal low-pass* filter
that keeps only the ``factors`` smoothest graph signals of the normalised interaction matrix:

    R~ = D_U^-1/2 X D_I^-1/2,       V_k = top-k eigenvectors of R~^T R~ (= right singular vectors of R~)
    ideal = D_I^-1/2 V_k V_k^T D_I^1/2
    score(u, .) = r_u (B_linear + lowpass_weight * ideal)

GF-CF's linear filter is ``R~^T R~``; here it is EASE's ``B`` (``P = (X^T X + reg I)^-1``, ``B = -P / diag(P)``,
``diag(B) = 0``), the stronger linear model, so the low-pass term adds the global, low-rank structure that a
full-rank item-item regression lacks. Defaults (``reg=400``, ``factors=64``, ``lowpass_weight=0.2``) were chosen
on the validation split carved from the MovieLens 100K P1 training part (docs/algorithms/ease-lowpass.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.models.base import Float, Int, check_fitted, register, user_rows


@register("ease-lowpass")
@dataclass(eq=False)
class EASELowPassScorer:
    reg: float = 400.0
    factors: int = 64
    lowpass_weight: float = 0.2

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = False
    handles_cold_items: ClassVar[bool] = False
    search_space: ClassVar[dict[str, Float | Int]] = {
        "reg": Float(10.0, 10000.0, log=True),
        "factors": Int(8, 256, log=True),
        "lowpass_weight": Float(0.0, 1.0),
    }

    def fit(self, dataset: Dataset) -> Self:
        matrix = dataset.matrix(binary=True).astype(np.float64)
        self.weights_ = (ease_weights(matrix, self.reg) + self.lowpass_weight * ideal_lowpass(matrix, self.factors)).astype(np.float32)
        self.user_items_ = matrix.astype(np.float32).tocsr()
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "weights_")
        return self.score_rows(user_rows(self.user_items_, users), items)

    def score_rows(self, rows: sp.csr_matrix, items: np.ndarray | None = None) -> np.ndarray:
        """Scores for users given by history rows (users x items): a new user or a session, without refitting."""
        check_fitted(self, "weights_")
        weights = self.weights_ if items is None else self.weights_[:, items]
        return np.asarray(rows @ weights)


def ease_weights(matrix, reg: float) -> np.ndarray:
    """EASE's closed form: ``B = -P / diag(P)`` with ``P = (X^T X + reg I)^-1`` and a zero diagonal."""
    gram = (matrix.T @ matrix).toarray()
    gram[np.diag_indices_from(gram)] += reg
    precision = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
    weights = precision / (-np.diag(precision))
    np.fill_diagonal(weights, 0.0)
    return weights


def ideal_lowpass(matrix, factors: int) -> np.ndarray:
    """GF-CF's ideal low-pass filter ``D_I^-1/2 V_k V_k^T D_I^1/2`` (dense eigendecomposition: deterministic)."""
    user_degree = np.asarray(matrix.sum(axis=1)).ravel()
    item_degree = np.asarray(matrix.sum(axis=0)).ravel()
    inverse_root = np.where(item_degree > 0, 1.0 / np.sqrt(np.maximum(item_degree, 1e-12)), 0.0)
    user_weights = np.where(user_degree > 0, 1.0 / np.maximum(user_degree, 1e-12), 0.0)
    normalised_gram = (matrix.T @ matrix.multiply(user_weights[:, None]).tocsr()).toarray()
    normalised_gram *= inverse_root[:, None] * inverse_root[None, :]
    n_items = len(item_degree)
    k = min(max(factors, 0), n_items)
    if k == 0:
        return np.zeros((n_items, n_items))
    _, vectors = scipy.linalg.eigh(normalised_gram, subset_by_index=[n_items - k, n_items - 1], check_finite=False)
    return (inverse_root[:, None] * vectors) @ (vectors.T * np.sqrt(item_degree)[None, :])
