"""Top-n items by inner product of precomputed vectors: exact (one matrix product and `argpartition`) for small
catalogues, an HNSW graph (faiss, Malkov & Yashunin, TPAMI 2020) for large ones, where scoring every item for every
request costs too much. ``ef_search`` trades recall for speed; `recall_at` measures it against exact scoring."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from tailored.config import num_threads
from tailored.errors import ConfigError
from tailored.models.base import top_k

ANN_MIN_ITEMS = 50_000
"""Below this many items, exact scoring is fast enough (and exact)."""


@dataclass(eq=False)
class VectorIndex:
    """``search(user_vectors, n)`` over ``item_vectors`` (items x factors)."""

    item_vectors: np.ndarray
    kind: Literal["auto", "exact", "hnsw"] = "auto"
    links: int = 32
    ef_construction: int = 80
    ef_search: int = 256
    _graph: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.item_vectors = np.ascontiguousarray(self.item_vectors, np.float32)
        if self.kind == "hnsw" or (self.kind == "auto" and len(self.item_vectors) >= ANN_MIN_ITEMS):
            faiss = _faiss()
            self._graph = faiss.IndexHNSWFlat(self.item_vectors.shape[1], self.links, faiss.METRIC_INNER_PRODUCT)
            self._graph.hnsw.efConstruction = self.ef_construction
            self._graph.add(self.item_vectors)
            self._graph.hnsw.efSearch = self.ef_search

    @property
    def approximate(self) -> bool:
        return self._graph is not None

    def search(self, user_vectors: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(items[b, n], scores[b, n])``, best first; -1 / -inf where fewer than n items exist."""
        queries = np.ascontiguousarray(np.atleast_2d(user_vectors), np.float32)
        if self._graph is None:
            return top_k(queries @ self.item_vectors.T, n)
        scores, items = self._graph.search(queries, n)
        return items.astype(np.int64), np.where(items >= 0, scores, -np.inf).astype(np.float32)


def recall_at(index: VectorIndex, user_vectors: np.ndarray, n: int = 10) -> float:
    """Share of the exact top-``n`` that ``index`` returns, averaged over the users."""
    exact, _ = top_k(np.asarray(user_vectors, np.float32) @ index.item_vectors.T, n)
    found, _ = index.search(user_vectors, n)
    return float(np.mean([len(set(a) & set(b)) / n for a, b in zip(exact, found)]))


def _faiss() -> Any:
    """faiss, its OpenMP pool bounded by TAILORED_NUM_THREADS (it loads after the CLI's thread limits apply)."""
    try:
        import faiss
    except ImportError as error:
        raise ConfigError('Approximate search needs faiss: pip install ".[serve]" in the tailored checkout '
                          "(faiss-cpu).") from error
    faiss.omp_set_num_threads(num_threads())
    return faiss
