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
import scipy.sparse.linalg

from tailored.data.dataset import Dataset
from tailored.models.base import Float, Int, register
from tailored.models.ease import BLOCK, ItemItemScores, ease_weights

DENSE_EIGEN_ITEMS = 5000
"""Up to this many items the low-pass filter's eigenvectors come from a dense eigendecomposition."""


@register("ease-lowpass")
@dataclass(eq=False)
class EASELowPassScorer(ItemItemScores):
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
        linear = ease_weights(matrix, self.reg, "ease-lowpass")
        left, right = ideal_lowpass(matrix, self.factors)
        self.weights_ = np.empty(linear.shape, np.float32)
        for start in range(0, len(linear), BLOCK):  # the sum a block of rows at a time: no second dense matrix
            rows = slice(start, start + BLOCK)
            self.weights_[rows] = linear[rows] + self.lowpass_weight * (left[rows] @ right)
        self.user_items_ = matrix.astype(np.float32).tocsr()
        return self


def ideal_lowpass(matrix: sp.spmatrix, factors: int, dense_up_to: int = DENSE_EIGEN_ITEMS
                  ) -> tuple[np.ndarray, np.ndarray]:
    """GF-CF's ideal low-pass filter ``D_I^-1/2 V_k V_k^T D_I^1/2`` as two factors (items x k, k x items).

    ``V_k``: the top-k eigenvectors of ``R~^T R~``, from a dense eigendecomposition up to ``dense_up_to`` items,
    beyond from a truncated SVD of the sparse ``R~`` (ARPACK, fixed start: deterministic), whose cost grows with
    the interactions rather than the cube of the catalogue."""
    user_degree = np.asarray(matrix.sum(axis=1)).ravel()
    item_degree = np.asarray(matrix.sum(axis=0)).ravel()
    inverse_root = np.where(item_degree > 0, 1.0 / np.sqrt(np.maximum(item_degree, 1e-12)), 0.0)
    user_weights = np.where(user_degree > 0, 1.0 / np.maximum(user_degree, 1e-12), 0.0)
    n_items = len(item_degree)
    k = min(max(factors, 0), n_items)
    if k == 0:
        vectors = np.zeros((n_items, 0))
    elif n_items <= dense_up_to or k >= min(matrix.shape) - 1:
        normalised_gram = (matrix.T @ matrix.multiply(user_weights[:, None]).tocsr()).toarray()
        normalised_gram *= inverse_root[:, None] * inverse_root[None, :]
        _, vectors = scipy.linalg.eigh(normalised_gram, subset_by_index=[n_items - k, n_items - 1], check_finite=False)
    else:
        normalised = sp.diags(np.sqrt(user_weights)) @ matrix @ sp.diags(inverse_root)
        start = np.full(min(matrix.shape), 1.0 / np.sqrt(min(matrix.shape)))
        _, _, rows = scipy.sparse.linalg.svds(normalised, k=k, v0=start)
        vectors = rows.T
    return inverse_root[:, None] * vectors, vectors.T * np.sqrt(item_degree)[None, :]
