"""Why an item was recommended: the history item it is most like, and what each stage did to it; items named as
people know them (their title where the catalogue has one)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tailored.data.columns import ITEM_ID
from tailored.rank.base import Catalogue, Explainer, Request, item_similarity

MIN_SIMILARITY = 0.05
TITLE_COLUMNS = ("title", "name")
"""Item attribute columns that name an item for people, in order of preference."""
TITLE = "title"


def item_titles(catalogue: Catalogue) -> np.ndarray | None:
    """``object[n_items]``: each item's title (the first of ``TITLE_COLUMNS`` its attributes hold; None where empty),
    or None when the items carry no title column."""
    attributes = catalogue.attributes
    column = next((name for name in TITLE_COLUMNS if attributes is not None and name in attributes.columns), None)
    if column is None:
        return None
    titles = attributes[column].astype("string").str.strip()
    return titles.where(titles.notna() & (titles != ""), None).to_numpy(object)


def item_labels(catalogue: Catalogue) -> np.ndarray:
    """``object[n_items]``: how a reason names each item: its title where known, else its id."""
    ids = np.asarray(catalogue.ids, dtype=object)
    titles = item_titles(catalogue)
    return ids if titles is None else np.where(pd.isna(titles), ids, titles)


def with_titles(frame: pd.DataFrame, catalogue: Catalogue, id_column: str = ITEM_ID) -> pd.DataFrame:
    """``frame`` with a ``title`` column right after ``id_column``: the title of each row's item (empty where the
    item has none); ``frame`` itself when the items carry no title column."""
    titles = item_titles(catalogue)
    if titles is None or TITLE in frame.columns:
        return frame
    positions = pd.Index(np.asarray(catalogue.ids).astype(str)).get_indexer(frame[id_column].astype(str))
    titled = frame.copy()
    titled.insert(frame.columns.get_loc(id_column) + 1, TITLE,
                  pd.array(np.where(positions >= 0, titles[positions], None), dtype="string"))
    return titled


def reasons_for(items: np.ndarray, request: Request, stages: Sequence[object]) -> np.ndarray:
    """``str[b, n]``: "; "-joined reasons of each recommended item, the history one first, then each stage's."""
    parts = [history_reasons(items, request)]
    parts += [stage.explain(items, request) for stage in stages if isinstance(stage, Explainer)]
    joined = np.full(items.shape, "", dtype=object)
    for part in parts:
        joined = np.where(part == "", joined, np.where(joined == "", part, joined + "; " + part))
    return np.where(items >= 0, joined, "")


def history_reasons(items: np.ndarray, request: Request) -> np.ndarray:
    """"like <item>": the item of the user's history with the highest collaborative cosine to the recommended one
    (users who took one also took the other), when it reaches ``MIN_SIMILARITY``; named by its title where known."""
    reasons = np.full(items.shape, "", dtype=object)
    catalogue = request.catalogue
    if catalogue.interactions is None or request.history.nnz == 0:
        return reasons
    n_trained = catalogue.interactions.shape[1]
    labels = item_labels(catalogue)
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
        reasons[row, listed[strong]] = [f"like {labels[h]}" for h in history[best[strong]]]
    return reasons
