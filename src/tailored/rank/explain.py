"""Why an item was recommended: the history item it is most like, and what each stage did to it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tailored.rank.base import Request, item_similarity

MIN_SIMILARITY = 0.05


def reasons_for(items: np.ndarray, request: Request, stages: Sequence[object]) -> np.ndarray:
    """``str[b, n]``: "; "-joined reasons of each recommended item, the history one first, then each stage's."""
    parts = [history_reasons(items, request)]
    parts += [stage.explain(items, request) for stage in stages if hasattr(stage, "explain")]  # type: ignore[attr-defined]
    joined = np.full(items.shape, "", dtype=object)
    for part in parts:
        joined = np.where(part == "", joined, np.where(joined == "", part, joined + "; " + part))
    return np.where(items >= 0, joined, "")


def history_reasons(items: np.ndarray, request: Request) -> np.ndarray:
    """"like <item>": the item of the user's history with the highest collaborative cosine to the recommended one
    (users who took one also took the other), when it reaches ``MIN_SIMILARITY``."""
    reasons = np.full(items.shape, "", dtype=object)
    catalogue = request.catalogue
    if catalogue.interactions is None or request.history.nnz == 0:
        return reasons
    n_trained = catalogue.interactions.shape[1]
    columns = item_similarity(request).columns
    for row in np.flatnonzero(np.diff(request.history.indptr)):
        history = request.history.indices[request.history.indptr[row] : request.history.indptr[row + 1]]
        history = history[history < n_trained]
        listed = np.flatnonzero((items[row] >= 0) & (items[row] < n_trained))
        if len(history) == 0 or len(listed) == 0:
            continue
        similarity = (columns[history] @ columns[items[row, listed]].T).toarray()
        similarity[history[:, None] == items[row, listed][None, :]] = -1.0  # an item is not its own reason
        best = similarity.argmax(axis=0)
        strong = similarity[best, np.arange(len(listed))] >= MIN_SIMILARITY
        reasons[row, listed[strong]] = [f"like {catalogue.ids[h]}" for h in history[best[strong]]]
    return reasons
