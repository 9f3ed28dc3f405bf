"""Maximal Marginal Relevance (Carbonell & Goldstein, "The use of MMR, diversity-based reranking for reordering
documents and producing summaries", SIGIR 1998): each user's list is built greedily from the candidate pool, each
pick the candidate maximising

    (1 - λ) * relevance(i) - λ * max_{j already picked} similarity(i, j)

so that an item too like one already listed gives way to a slightly less relevant but different one. Relevance is
the pool's scores min-max scaled per user (best 1, worst 0), so λ (``diversity``) means the same whatever the
scorer's scale: 0 keeps the scorer's order, 1 picks the top item and then, each time, the item least like those
already picked. Similarity is the cosine of the items' encoded attribute vectors (``Catalogue.features``: title,
genres, year...), or, for items without attributes, the collaborative cosine of their training interaction
columns (items added after training have no interactions: similarity 0 to everything). Scores keep their
original values; the list order is the MMR order. Vectorised over the users of a block (a loop over the ``n``
picks only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
import scipy.sparse as sp

from tailored.data.dataset import Dataset
from tailored.data.features import normalize_rows
from tailored.errors import ConfigError
from tailored.rank.base import Request, item_similarity, register_stage

MAX_SIMILARITY_ITEMS = 4096
"""Largest item set whose dense pairwise similarity is computed at once (users are taken in chunks beyond it)."""


@register_stage("diversity")
@dataclass(eq=False)
class MMRDiversifier:
    """Re-ranks each user's pool by MMR with trade-off ``diversity`` (λ in [0, 1], 0 = unchanged)."""

    pool_factor: int = 5
    diversity: float = 0.3

    def fit(self, dataset: Dataset) -> Self:
        return self

    def rerank(self, items: np.ndarray, scores: np.ndarray, request: Request, n: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0.0 <= self.diversity <= 1.0:
            raise ConfigError(f"MMRDiversifier diversity must lie in [0, 1], got {self.diversity}; 0 keeps the order.")
        vectors = item_vectors(request)
        picked = np.full((len(items), n), -1, np.int64)
        if items.shape[1] == 0:
            return picked, np.full((len(items), n), -np.inf, scores.dtype)
        small = len(request.catalogue) <= MAX_SIMILARITY_ITEMS
        chunk = len(items) if small else max(1, MAX_SIMILARITY_ITEMS // items.shape[1])
        for start in range(0, len(items), chunk):
            rows = slice(start, start + chunk)
            picked[rows] = mmr_positions(items[rows], scores[rows], vectors, n, self.diversity)
        found = picked >= 0
        position = np.where(found, picked, 0)
        return (np.where(found, np.take_along_axis(items, position, axis=1), -1),
                np.where(found, np.take_along_axis(scores, position, axis=1), -np.inf))


def item_vectors(request: Request) -> sp.csr_matrix:
    """Unit-norm vectors of every catalogue item: attributes, else interaction columns (shared for the run)."""
    catalogue = request.catalogue
    if catalogue.interactions is None:
        if catalogue.features is None:
            return sp.csr_matrix((len(catalogue), 1))
        return normalize_rows(catalogue.features)
    similarity = item_similarity(request)
    return similarity.attributes if similarity.attributes is not None else similarity.columns


def mmr_positions(items: np.ndarray, scores: np.ndarray, vectors: sp.csr_matrix, n: int,
                  diversity: float) -> np.ndarray:
    """Pool positions ``[b, n]`` picked by MMR (-1 once a pool is exhausted)."""
    users = np.arange(len(items))
    available = items >= 0
    union, local = np.unique(np.where(available, items, 0), return_inverse=True)
    local = local.reshape(items.shape)
    union_vectors = vectors[union]
    similarity = (union_vectors @ union_vectors.T).toarray().astype(np.float32)
    low = np.where(available, scores, np.inf).min(axis=1, keepdims=True)
    high = np.where(available, scores, -np.inf).max(axis=1, keepdims=True)
    spread = np.where(high > low, high - low, 1.0)
    relevance = np.where(available, (scores - low) / spread + (high == low), 0.0)
    closest = np.zeros(items.shape, np.float32)
    picked = np.full((len(items), n), -1, np.int64)
    for slot in range(min(n, items.shape[1])):
        value = np.where(available, (1.0 - diversity) * relevance - diversity * closest, -np.inf)
        best = value.argmax(axis=1)
        chosen = available[users, best]
        picked[chosen, slot] = best[chosen]
        available[users, best] = False
        closest = np.maximum(closest, similarity[local, local[users, best][:, None]])
    return picked
