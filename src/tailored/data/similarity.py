"""Item-item similarity: collaborative (who interacted with one also interacted with the other) blended with
attribute similarity (same category, genres, words, colours), trusting the collaborative side as far as both items
have interactions, so that items without history are matched on their attributes alone."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tailored.data.features import normalize_rows


class ItemSimilarity:
    """Unit vectors of the ``n_items`` items (default: as many as ``features`` rows, else ``interactions`` columns),
    computed once: ``columns`` (interaction columns; items beyond ``interactions``, added later, have none) and
    ``attributes`` (encoded features, or None)."""

    def __init__(self, interactions: sp.csr_matrix, features: sp.csr_matrix | None, shrink: float = 10.0,
                 n_items: int | None = None) -> None:
        n_items = n_items or (interactions.shape[1] if features is None else features.shape[0])
        history = sp.hstack([interactions, sp.csr_matrix((interactions.shape[0], n_items - interactions.shape[1]))])
        self.columns = normalize_rows(history.T.tocsr())
        counts = history.getnnz(axis=0).astype(np.float64)
        self.confidence = counts / (counts + shrink)
        self.attributes = None if features is None else normalize_rows(features)

    def rows(self, items: np.ndarray) -> np.ndarray:
        """Rows: the given item indices; columns: every item. ``w * cosine(interactions) + (1 - w) *
        cosine(attributes)`` with ``w = c_i c_j`` and ``c = n / (n + shrink)`` for an item with n users."""
        weight = self.confidence[items, None] * self.confidence[None, :]
        similarity = weight * (self.columns[items] @ self.columns.T).toarray()
        if self.attributes is not None:
            similarity += (1 - weight) * (self.attributes[items] @ self.attributes.T).toarray()
        return similarity
