"""EASE: Embarrassingly Shallow Autoencoders for sparse data (Steck, WWW 2019).

A closed-form item-item model: ``B = argmin ||X - XB||^2 + reg ||B||^2`` with ``diag(B) = 0``, solved as
``P = (X^T X + reg I)^-1``, ``B = -P / diag(P)``. Scores are ``h_u B`` where the history ``h_u`` is ``X_u`` or,
with a finite ``recency_half_life``, ``X_u`` with the user's k-th most recent interaction weighted by
``0.5 ** (k / half_life)`` (the next item follows from the latest ones). The default ``reg`` sits in the flat
optimum (300-500) found on validation splits carved from MovieLens 100K training data (``tailored benchmark movielens-100k --validation``).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack
from threadpoolctl import threadpool_limits

from tailored.config import require_dense_items
from tailored.data.dataset import Dataset
from tailored.data.transforms import recency_weighted
from tailored.errors import ConfigError
from tailored.models.base import Choice, Float, check_fitted, register, user_rows

BLOCK = 2048
"""Items per block where dense items x items matrices are built or mirrored a slice at a time."""
THREADED_CHOLESKY_BYTES = 1.9e9
"""From this size (about 15,400 items) the Cholesky factorisation runs on one thread: OpenBLAS 0.3.30's threaded
``potrf`` crashed (segmentation fault) on a 16,000 x 16,000 matrix with 2 threads, and not with one."""
DENSE_BYTES_PER_ENTRY = 12
"""Peak bytes per item pair of an EASE fit: the float64 Gram matrix inverted in place, then the float32 weights."""


class ItemItemScores:
    """Scoring for the item-item models whose fit leaves dense ``weights_`` (items x items) and the users' history
    rows ``user_items_``: a user's scores are the history row times the weights."""

    weights_: np.ndarray
    user_items_: sp.csr_matrix
    folds_in_history: ClassVar[bool] = True  # a trained user's scores follow from their history: later events fold in

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "weights_")
        return self.score_rows(user_rows(self.user_items_, users), items)

    def score_rows(self, rows: sp.csr_matrix, items: np.ndarray | None = None) -> np.ndarray:
        """Scores for users given by history rows (users x items): a new user or a session, without refitting."""
        check_fitted(self, "weights_")
        weights = self.weights_ if items is None else self.weights_[:, items]
        return np.asarray(rows @ weights)


@register("ease")
@dataclass(eq=False)
class EASEScorer(ItemItemScores):
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
        self.weights_ = ease_weights(dataset.matrix(), self.reg, "ease").astype(np.float32)
        self.user_items_ = recency_weighted(dataset, self.recency_half_life)
        return self


def ease_weights(matrix: sp.spmatrix, reg: float, algorithm: str) -> np.ndarray:
    """EASE's closed form ``B = -P / diag(P)`` with ``P = (X^T X + reg I)^-1`` and a zero diagonal (float64).

    Computed in place: the Gram matrix is built a block at a time, inverted where it lies and divided there. With
    the caller's float32 copy the peak is ``DENSE_BYTES_PER_ENTRY`` bytes per item pair, and a catalogue for which
    that exceeds the available memory is refused before anything is allocated."""
    n_items = matrix.shape[1]
    require_dense_items(n_items, DENSE_BYTES_PER_ENTRY, algorithm)
    columns = sp.csc_matrix(matrix, dtype=np.float64)
    gram = np.empty((n_items, n_items))
    for start in range(0, n_items, BLOCK):  # a block of columns at a time: no sparse copy of the whole Gram matrix
        gram[:, start : start + BLOCK] = (columns.T @ columns[:, start : start + BLOCK]).toarray()
    return weights_from_gram(gram, reg, f"{algorithm}: X^T X")


def weights_from_gram(gram: np.ndarray, reg: float, what: str) -> np.ndarray:
    """EASE's ``B = -P / diag(P)`` with ``P = (G + reg I)^-1`` and a zero diagonal, for any positive semi-definite
    item-item matrix ``G`` (float64, overwritten: it becomes ``B``); ``what`` names ``G`` in errors."""
    gram[np.diag_indices_from(gram)] += reg
    precision = spd_inverse(gram, f"{what} + reg I with reg={reg:g}")
    precision /= -np.diag(precision).copy()
    np.fill_diagonal(precision, 0.0)
    return precision


def spd_inverse(matrix: np.ndarray, what: str, block: int = BLOCK) -> np.ndarray:
    """The inverse of a symmetric positive definite float64 matrix, overwriting it (LAPACK ``potrf`` + ``potri``;
    `scipy.linalg.inv` takes as long but copies the matrix first)."""
    single = threadpool_limits(limits=1, user_api="blas") if matrix.nbytes >= THREADED_CHOLESKY_BYTES else nullcontext()
    with single:
        factor, info = lapack.dpotrf(matrix.T, lower=False, overwrite_a=True, clean=False)  # .T: Fortran order
        if info == 0:
            factor, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise ConfigError(f"{what} is not positive definite (LAPACK info {info}); use a positive reg.")
    inverse = factor.T  # LAPACK wrote the Fortran upper triangle: this view's lower one; mirror it
    for start in range(0, len(inverse), block):
        stop = start + block
        diagonal = inverse[start:stop, start:stop]
        inverse[start:stop, start:stop] = np.tril(diagonal) + np.tril(diagonal, -1).T
        inverse[start:stop, stop:] = inverse[stop:, start:stop].T
    return inverse
