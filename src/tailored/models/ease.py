"""EASE: Embarrassingly Shallow Autoencoders for sparse data (Steck, WWW 2019).

A closed-form item-item model: ``B = argmin ||X - XB||^2 + reg ||B||^2`` with ``diag(B) = 0``, solved as
``P = (X^T X + reg I)^-1``, ``B = -P / diag(P)``. Scores are ``h_u B`` where the history ``h_u`` is ``X_u`` or,
with a finite ``recency_half_life``, ``X_u`` with the user's k-th most recent interaction weighted by
``0.5 ** (k / half_life)`` (the next item follows from the latest ones). The default ``reg`` sits in the flat
optimum (300-500) found on validation splits carved from MovieLens 100K training data (``tailored benchmark
movielens-100k --validation``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np
import scipy.sparse as sp
from scipy.linalg import eigh, lapack
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
        check_fitted(self, "user_items_")
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
        matrix = dataset.matrix()
        spectrum = shared_spectrum(matrix)
        if spectrum is None:
            self.weights_ = ease_weights(matrix, self.reg, "ease").astype(np.float32)
        else:  # within `sharing_spectra` (tuning): scored through the shared factors, B is never formed
            self.spectrum_ = spectrum.at(self.reg)
        self.user_items_ = recency_weighted(dataset, self.recency_half_life)
        return self

    def score_rows(self, rows: sp.csr_matrix, items: np.ndarray | None = None) -> np.ndarray:
        spectrum = getattr(self, "spectrum_", None)
        return super().score_rows(rows, items) if spectrum is None else spectrum.scores(rows, items)


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


@dataclass(frozen=True)
class GramSpectrum:
    """``X^T X = V diag(values) V^T`` for a matrix with fewer users than items (rank <= users): ``vectors`` (items x
    rank) are orthonormal, found from the small users x users matrix ``X X^T = U diag(values) U^T`` as
    ``V = X^T U diag(values)^-1/2``. Then for every ``reg``, ``P = (X^T X + reg I)^-1 = I / reg - V diag(c) V^T`` with
    ``c = values / (reg (values + reg))``: one decomposition serves every ``reg`` (tuning)."""

    vectors: np.ndarray
    values: np.ndarray
    reg: float | None = None

    @classmethod
    def of(cls, matrix: sp.spmatrix) -> GramSpectrum:
        rows = sp.csr_matrix(matrix, dtype=np.float64)
        values, users = eigh((rows @ rows.T).toarray(), overwrite_a=True, check_finite=False)
        kept = values > max(rows.shape) * np.finfo(np.float64).eps * max(values.max(initial=0.0), 1.0)
        values, users = values[kept], users[:, kept]
        return cls(np.asarray(rows.T @ users) / np.sqrt(values), values)

    def at(self, reg: float) -> GramSpectrum:
        """The same spectrum with ``reg`` set (what `scores` uses)."""
        if not reg > 0:
            raise ConfigError(f"ease: reg must be positive, got {reg}.")
        return GramSpectrum(self.vectors, self.values, reg)

    def scores(self, rows: sp.csr_matrix, items: np.ndarray | None = None) -> np.ndarray:
        """``rows @ B`` for EASE's ``B = I - P / diag(P)`` (zero diagonal) without forming ``B``: ``rows @ P`` costs
        a (users x rank) by (rank x items) product."""
        reg = float(self.reg)  # type: ignore[arg-type]
        shrink = self.values / (reg * (self.values + reg))
        columns = self.vectors if items is None else self.vectors[items]
        diagonal = 1.0 / reg - (columns**2) @ shrink
        history = sp.csr_matrix(rows, dtype=np.float64)
        history.sum_duplicates()
        # rows @ B = rows - (rows @ P) / diag(P), rows @ P = rows / reg - (rows @ V) diag(c) V^T: a dense low-rank
        # part and a sparse one on the history's own items
        scores = (np.asarray(history @ self.vectors) * shrink) @ columns.T
        scores /= diagonal
        own = sp.coo_matrix(history if items is None else history[:, items])
        scores[own.row, own.col] += own.data * (1.0 - 1.0 / (reg * diagonal[own.col]))
        return scores.astype(np.float32)


_SPECTRA: ContextVar[dict[str, GramSpectrum] | None] = ContextVar("ease_spectra", default=None)


@contextmanager
def sharing_spectra() -> Iterator[None]:
    """Within the block, EASE fits on the same training matrix (one per weighting when tuning) share one
    `GramSpectrum` when the catalogue has more than ``sqrt(2)`` x as many items as users (where ``rows @ P`` through
    the spectrum costs less than inverting: ``2 users x rank`` against ``items ** 2`` per item); fits on other
    shapes invert as usual. The spectra are dropped when the block ends."""
    token = _SPECTRA.set({})
    try:
        yield
    finally:
        _SPECTRA.reset(token)


def shared_spectrum(matrix: sp.csr_matrix) -> GramSpectrum | None:
    """The spectrum of ``matrix`` shared within `sharing_spectra` (computed on first use), None outside it or where
    the shape does not gain from it."""
    spectra = _SPECTRA.get()
    n_users, n_items = matrix.shape
    if spectra is None or 2 * n_users**2 >= n_items**2:
        return None
    digest = hashlib.blake2b(digest_size=16)
    for array in (np.asarray(matrix.shape), matrix.indptr, matrix.indices, matrix.data):
        digest.update(np.ascontiguousarray(array).tobytes())
    key = digest.hexdigest()
    if key not in spectra:
        spectra[key] = GramSpectrum.of(matrix)
    return spectra[key]


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
