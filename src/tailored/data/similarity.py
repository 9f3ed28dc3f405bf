"""Item-item similarity: collaborative (who interacted with one also interacted with the other) blended with
attribute similarity (same category, genres, words, colours), trusting the collaborative side as far as both items
have interactions, so that items without history are matched on their attributes alone."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tailored.data.features import normalize_rows


def item_similarities(interactions: sp.csr_matrix, features: sp.csr_matrix | None, items: np.ndarray,
                      shrink: float = 10.0) -> np.ndarray:
    """Rows: the given item indices; columns: every item (those beyond ``interactions``' columns have no history).
    ``w * cosine(interactions) + (1 - w) * cosine(features)`` with ``w = c_i c_j`` and ``c = n / (n + shrink)`` for
    an item with n users."""
    n_items = interactions.shape[1] if features is None else features.shape[0]
    history = sp.hstack([interactions, sp.csr_matrix((interactions.shape[0], n_items - interactions.shape[1]))])
    columns = normalize_rows(history.T.tocsr())
    similarity = (columns[items] @ columns.T).toarray()
    counts = history.getnnz(axis=0).astype(np.float64)
    confidence = counts / (counts + shrink)
    weight = confidence[items, None] * confidence[None, :]
    similarity *= weight
    if features is not None:
        normalized = normalize_rows(features)
        similarity += (1 - weight) * (normalized[items] @ normalized.T).toarray()
    return similarity
