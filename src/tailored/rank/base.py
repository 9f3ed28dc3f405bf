"""The stage contracts, what a stage sees of a request, and the catalogue of stages by name.

Two kinds of stage run after the scorer, in the order given:

- an **adjuster** (`Stage.adjust`) changes a dense block of scores, users x items (``-inf`` = excluded): seasonal
  lift, events, distance, rules;
- a **re-ranker** (`Reranker.rerank`) picks the final ``n`` of each user's candidate pool (the best
  ``n * pool_factor`` items after the adjusters): diversity, exposure fairness, launch slots.

Either may also say why an item was moved: an optional ``explain(items[b, n], request) -> str[b, n]``, "" for
none. Hyperparameters are dataclass fields; learned state lives in
``name_`` attributes (arrays or scalars) so that a model directory saves stages too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.config import Registry, build_dataclass
from tailored.data.dataset import Dataset
from tailored.data.similarity import ItemSimilarity
from tailored.query import Context


@dataclass(frozen=True, eq=False)
class Catalogue:
    """The items at request time, by item index: external ids, raw attributes (category, price, tags, lat/lon... NaN
    where unknown), encoded attribute vectors, first interaction time (unix seconds, NaN for none) and the training
    interactions (users x items, binary)."""

    ids: np.ndarray
    attributes: pd.DataFrame | None = None
    features: sp.csr_matrix | None = None
    first_seen: np.ndarray | None = None
    interactions: sp.csr_matrix | None = None
    co_purchase: sp.csr_matrix | None = None
    basket_count: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, item_ids: list[str] | np.ndarray) -> np.ndarray:
        """Indices of the given external ids that the catalogue holds, in the given order (unknown ids dropped)."""
        positions = pd.Index(self.ids.astype(str)).get_indexer(np.asarray(item_ids, dtype=str))
        return positions[positions >= 0]

    def column(self, name: str) -> pd.Series | None:
        """The attribute column ``name`` (one value per item), or None when items do not carry it."""
        if self.attributes is None or name not in self.attributes:
            return None
        return self.attributes[name]


@dataclass(eq=False)
class Request:
    """One block of users being recommended: their indices (-1 = unknown to the model), the context, the catalogue,
    the items each has interacted with (block rows x items, binary) and when last (days since the epoch, or None
    without timestamps), and the scores that seen-item exclusion removed (so a rule may give them back)."""

    users: np.ndarray
    context: Context
    catalogue: Catalogue
    history: sp.csr_matrix
    last_seen: sp.csr_matrix | None = None
    excluded_seen: sp.coo_matrix | None = None
    scores: np.ndarray | None = None
    """The block's adjusted scores, set before the re-rankers run (for those that look beyond the pool)."""
    tally: dict[str, Any] = field(default_factory=dict)
    """State shared by the blocks of one recommendation run (e.g. how often each item was shown so far)."""


@runtime_checkable
class Stage(Protocol):
    """Adjusts a block of candidate scores (users x items, -inf = excluded) for a request. ``fit`` learns from the
    training interactions (a no-op for stages configured only by files, such as rules and calendars)."""

    def fit(self, dataset: Dataset) -> Self: ...

    def adjust(self, scores: np.ndarray, request: Request) -> np.ndarray: ...


@runtime_checkable
class Reranker(Protocol):
    """Chooses ``n`` items per user from a candidate pool (``items[b, m]`` best first, -1 = empty slot, and their
    scores); returns ``(items[b, n], scores[b, n])``."""

    pool_factor: int

    def fit(self, dataset: Dataset) -> Self: ...

    def rerank(self, items: np.ndarray, scores: np.ndarray, request: Request,
               n: int) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class Readmitter(Protocol):
    """A stage that gives back the scores of some seen items (repurchase cycles) before the adjusters run."""

    def readmit(self, request: Request) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


@runtime_checkable
class Switchable(Protocol):
    """A stage that may have learned to do nothing (``inert``): it does not keep the fast lane closed."""

    inert: bool


@runtime_checkable
class Explainer(Protocol):
    """A stage that says why it moved items: ``str[b, n]`` per recommended item, "" for none."""

    def explain(self, items: np.ndarray, request: Request) -> np.ndarray: ...


STAGES = Registry("stage", "tailored.rank")
"""Every stage by name (`tailored stages`); ``@register_stage(name)`` adds one."""
register_stage = STAGES.register


def create_stage(name: str, params: Mapping[str, Any] | None = None) -> Stage | Reranker:
    """The stage ``name`` with ``params`` (strings from the command line converted to the field types)."""
    return build_dataclass(STAGES[name], dict(params or {}), f"stage '{name}' parameter")


def item_similarity(request: Request) -> ItemSimilarity:
    """The catalogue's `ItemSimilarity` (unit interaction and attribute vectors), built once per recommendation run."""
    if "item-similarity" not in request.tally:
        catalogue = request.catalogue
        request.tally["item-similarity"] = ItemSimilarity(catalogue.interactions, catalogue.features,
                                                          n_items=len(catalogue))
    return request.tally["item-similarity"]


def bare_request(n_users: int, catalogue: Catalogue, context: Context | None = None) -> Request:
    """A request for ``n_users`` users unknown to the model, without history: a stage used on its own."""
    return Request(np.full(n_users, -1), context or Context(), catalogue, sp.csr_matrix((n_users, len(catalogue))))
