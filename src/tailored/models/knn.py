"""Neighbourhood models: item-based (Sarwar et al., WWW 2001; Deshpande & Karypis, TOIS 2004) and user-based
(Herlocker et al., SIGIR 1999) collaborative filtering for implicit feedback.

Similarities between the columns (items) or rows (users) of the interaction matrix:

* ``cosine`` -- ``x.y / (|x|^(2 alpha) |y|^(2 (1 - alpha)) + shrink)``: alpha = 0.5 is the cosine, other values the
  asymmetric cosine of Aiolli (RecSys 2013); ``shrink`` damps similarities built on little support.
* ``rp3beta`` (item only) -- the three-step random walk user -> item -> user -> item with transition probabilities
  raised to ``alpha``, each target item's column divided by its popularity ** ``beta``
  (Paudel et al., ACM TiiS 2017; Christoffel et al., RecSys 2015).

``feature_weighting`` re-weights the matrix before the cosine: ``bm25`` (Robertson's BM25, as in ``implicit``) or
``tfidf``; in both, prolific users (for item similarity) or popular items (for user similarity) count less. Each item
keeps its ``neighbors`` most similar items. Scores are ``sum_i h_ui * S[i, j]`` over the user's history ``h``, where
``recency_half_life`` (in interactions) weighs the user's k-th most recent interaction by ``0.5 ** (k / half_life)``.
The defaults were chosen on validation splits carved from MovieLens 100K training data (``tailored benchmark
movielens-100k --validation``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.data.transforms import recency_weighted
from tailored.models.base import Choice, Float, Int, SearchSpace, check_fitted, register, user_rows

FeatureWeighting = Literal["none", "bm25", "tfidf"]
BLOCK = 512
DENSE_SHARE = 0.05
"""Blocks of item similarities with more of their entries set are pruned dense."""


def term_statistics(documents: sp.csr_matrix) -> tuple[np.ndarray, float]:
    """Each term's inverse document frequency and the mean document length: what TF-IDF and BM25 weigh by."""
    coo = sp.coo_matrix(documents)
    document_frequency = np.bincount(coo.col, minlength=documents.shape[1])
    lengths = np.bincount(coo.row, weights=coo.data, minlength=documents.shape[0])
    return np.log(documents.shape[0]) - np.log1p(document_frequency), float(lengths.mean())


def reweight(
    documents: sp.csr_matrix, weighting: FeatureWeighting, statistics: tuple[np.ndarray, float] | None = None,
    k1: float = 1.2, b: float = 0.75,
) -> sp.csr_matrix:
    """TF-IDF / BM25 weights of a documents x terms matrix (a term used by many documents counts less), by the
    documents' own `term_statistics` or by given ones (new documents weighed as the training documents were)."""
    matrix = sp.csr_matrix(documents, dtype=np.float64, copy=True)
    if weighting == "none":
        return matrix
    idf, mean_length = term_statistics(matrix) if statistics is None else statistics
    coo = matrix.tocoo()
    if weighting == "tfidf":
        coo.data = np.sqrt(coo.data) * idf[coo.col]
    else:
        lengths = np.bincount(coo.row, weights=coo.data, minlength=matrix.shape[0])
        length_norm = (1.0 - b) + b * lengths / max(mean_length, 1e-12)
        coo.data = coo.data * (k1 + 1.0) / (k1 * length_norm[coo.row] + coo.data) * np.clip(idf, 0.0, None)[coo.col]
    return coo.tocsr()


def prune_columns(block: np.ndarray | sp.spmatrix, k: int) -> sp.csc_matrix:
    """Keep the ``k`` largest positive entries of each column of a block: a dense one (or a sparse one with more than
    ``DENSE_SHARE`` of its entries set) by ``argpartition``, a sparse one -- a wide catalogue, where few item pairs
    share a user -- by sorting its entries, at a cost that follows them rather than the block's size."""
    if sp.issparse(block) and block.nnz > DENSE_SHARE * block.shape[0] * block.shape[1]:
        block = block.toarray()
    if sp.issparse(block):
        entries = sp.coo_matrix(block)
        positive = entries.data > 0
        rows, columns, values = entries.row[positive], entries.col[positive], entries.data[positive]
        order = np.lexsort((-values, columns))  # by column, the largest first
        rank = np.arange(len(order)) - np.searchsorted(columns[order], columns[order])
        top = order[rank < k]
        return sp.csc_matrix((values[top], (rows[top], columns[top])), shape=block.shape)
    k = min(k, block.shape[0])
    rows = np.argpartition(-block, k - 1, axis=0)[:k]
    values = np.take_along_axis(block, rows, axis=0)
    columns = np.broadcast_to(np.arange(block.shape[1]), rows.shape)
    keep = values > 0
    return sp.csc_matrix((values[keep], (rows[keep], columns[keep])), shape=block.shape)


def cosine_block(
    vectors: sp.csc_matrix, norms: np.ndarray, queries: sp.csc_matrix, query_norms: np.ndarray, alpha: float,
    shrink: float,
) -> sp.coo_matrix:
    """(Asymmetric) cosine between all columns of ``vectors`` (rows) and the columns of ``queries``, on the pairs
    that share a non-zero (the others are 0)."""
    dot = sp.coo_matrix(vectors.T @ queries)
    denominator = np.power(norms[dot.row], 2 * alpha) * np.power(query_norms[dot.col], 2 * (1 - alpha)) + shrink
    dot.data = dot.data / np.where(denominator > 0, denominator, 1.0)
    return dot


def _without_diagonal(block: sp.coo_matrix, start: int) -> sp.coo_matrix:
    """The block of columns ``start..`` of an items x items matrix, its entries (i, i) removed."""
    keep = block.row != start + block.col
    return sp.coo_matrix((block.data[keep], (block.row[keep], block.col[keep])), shape=block.shape)


@register("item-knn")
@dataclass(eq=False)
class ItemKNNScorer:
    """Item-based k-nearest-neighbours: a user's score for an item sums its similarity to the user's items."""

    neighbors: int = 200
    similarity: Literal["cosine", "rp3beta"] = "rp3beta"
    feature_weighting: FeatureWeighting = "none"
    shrink: float = 0.0
    alpha: float = 0.6
    beta: float = 0.5
    recency_half_life: float = math.inf

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = False
    handles_cold_items: ClassVar[bool] = False
    folds_in_history: ClassVar[bool] = True  # a trained user's scores follow from their history: later events fold in
    search_space: ClassVar[SearchSpace] = {
        "neighbors": Int(20, 1000, log=True),
        "similarity": Choice(("cosine", "rp3beta")),
        "feature_weighting": Choice(("none", "bm25", "tfidf")),
        "shrink": Float(0.0, 200.0),
        "alpha": Float(0.2, 1.0),
        "beta": Float(0.0, 1.0),
        "recency_half_life": Choice((math.inf, 1.0, 3.0, 10.0, 30.0, 100.0)),
    }

    def fit(self, dataset: Dataset) -> Self:
        matrix = dataset.matrix()
        if self.similarity == "rp3beta":
            blocks = self._rp3beta_blocks(matrix)
        else:
            vectors = reweight(matrix.T, self.feature_weighting).T.tocsc()
            norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=0)).ravel())
            blocks = (cosine_block(vectors, norms, vectors[:, c], norms[c], self.alpha, self.shrink)
                      for c in _column_blocks(matrix.shape[1]))
        pruned = [prune_columns(_without_diagonal(block, start), self.neighbors)
                  for start, block in zip(range(0, matrix.shape[1], BLOCK), blocks, strict=True)]
        self.similarity_ = sp.hstack(pruned).tocsr().astype(np.float32)
        self.user_items_ = recency_weighted(dataset, self.recency_half_life).astype(np.float32)
        return self

    def _rp3beta_blocks(self, matrix: sp.csr_matrix):
        """Columns of ``P_iu^alpha P_ui^alpha / popularity^beta``, one block at a time."""
        binary = (matrix > 0).astype(np.float64)
        user_degree = np.asarray(binary.sum(axis=1)).ravel()
        item_degree = np.asarray(binary.sum(axis=0)).ravel()
        user_to_item = (sp.diags(1.0 / np.maximum(user_degree, 1)) @ binary).power(self.alpha).tocsc()
        item_to_user = (binary @ sp.diags(1.0 / np.maximum(item_degree, 1))).T.power(self.alpha).tocsr()
        penalty = np.power(np.maximum(item_degree, 1), self.beta)
        for columns in _column_blocks(matrix.shape[1]):
            block = sp.coo_matrix(item_to_user @ user_to_item[:, columns])
            block.data = block.data / penalty[columns][block.col]
            yield block

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "similarity_")
        return self.score_rows(user_rows(self.user_items_, users), items)

    def score_rows(self, rows: sp.csr_matrix, items: np.ndarray | None = None) -> np.ndarray:
        """Scores for users given by history rows (users x items): a new user or a session, without refitting."""
        check_fitted(self, "similarity_")
        similarity = self.similarity_ if items is None else self.similarity_[:, items]
        return (sp.csr_matrix(rows) @ similarity).toarray()


@register("user-knn")
@dataclass(eq=False)
class UserKNNScorer:
    """User-based k-nearest-neighbours: an item's score sums the similarities of the ``neighbors`` most similar
    users who have it."""

    neighbors: int = 200
    feature_weighting: FeatureWeighting = "bm25"
    shrink: float = 0.0
    alpha: float = 0.5

    explicit: ClassVar[bool] = False
    handles_cold_users: ClassVar[bool] = False
    handles_cold_items: ClassVar[bool] = False
    search_space: ClassVar[SearchSpace] = {
        "neighbors": Int(10, 1000, log=True),
        "feature_weighting": Choice(("none", "bm25", "tfidf")),
        "shrink": Float(0.0, 200.0),
        "alpha": Float(0.2, 0.8),
    }

    def fit(self, dataset: Dataset) -> Self:
        matrix = dataset.matrix()
        self.idf_, self.mean_length_ = term_statistics(matrix)
        vectors = reweight(matrix, self.feature_weighting)
        self.user_vectors_ = vectors.T.tocsc()
        self.norms_ = _row_norms(vectors)
        self.user_items_ = matrix.astype(np.float32)
        return self

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        check_fitted(self, "user_vectors_")
        users = np.asarray(users, np.int64)
        n_users = self.user_vectors_.shape[1]
        inside = (users >= 0) & (users < n_users)
        targets = np.where(inside, users, 0)
        # similarities of each target user (columns) to every user (rows)
        similarity = cosine_block(self.user_vectors_, self.norms_, self.user_vectors_[:, targets], self.norms_[targets],
                                  1 - self.alpha, self.shrink).toarray()
        similarity[users[inside], np.flatnonzero(inside)] = 0.0
        similarity[:, ~inside] = 0.0
        return self._neighbour_scores(similarity, items)

    def score_rows(self, rows: sp.csr_matrix, items: np.ndarray | None = None) -> np.ndarray:
        """Scores for users given by history rows (users x items), a new user or a session, without refitting: the
        rows are weighted by the training users' term statistics and compared with every training user."""
        check_fitted(self, "user_vectors_")
        vectors = reweight(rows, self.feature_weighting, (self.idf_, self.mean_length_))
        similarity = cosine_block(self.user_vectors_, self.norms_, vectors.T.tocsc(), _row_norms(vectors),
                                  1 - self.alpha, self.shrink).toarray()
        return self._neighbour_scores(similarity, items)

    def _neighbour_scores(self, similarity: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        """Sum of the rows of each target's (columns of ``similarity``) ``neighbors`` most similar users."""
        neighbours = prune_columns(similarity, self.neighbors).T.tocsr()
        user_items = self.user_items_ if items is None else self.user_items_[:, items]
        return (neighbours @ user_items).toarray()


def _row_norms(matrix: sp.csr_matrix) -> np.ndarray:
    return np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())


def _column_blocks(n: int) -> list[np.ndarray]:
    return [np.arange(start, min(start + BLOCK, n)) for start in range(0, n, BLOCK)]
