"""Items known only by their attributes -- catalogue items without training interactions and items added after
training (`Recommender.with_items`) -- scored by the scorer when it scores new items (`NewItemScorer`), otherwise by
the item model (`content-ridge`, fitted when items carry attributes), whose scores are mapped per user onto the
scorer's scale by least squares over the items with interactions (`calibrated`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.data.columns import ITEM_ID
from tailored.data.dataset import Dataset
from tailored.data.features import ItemEncoder
from tailored.data.idmap import IdMap
from tailored.errors import DataError
from tailored.models.base import Capabilities, Scorer, create_scorer, standardize, user_rows

ITEM_MODEL = "content-ridge"
"""The catalogue algorithm that scores new items for a scorer that cannot (`fit_item_model`)."""


def fit_item_model(dataset: Dataset) -> Scorer | None:
    """The `ITEM_MODEL` fitted on the items' attributes (None when items carry no usable attribute)."""
    if dataset.item_attributes is None or not (dataset.item_counts() > 0).any():
        return None
    try:
        return create_scorer(ITEM_MODEL).fit(dataset)
    except DataError:
        return None


@dataclass(frozen=True, eq=False)
class NewItems:
    """Scores the items known only by their attributes for a block of users. ``scorer`` and what it can do
    (``can``), the ``item_model`` (None when the scorer scores new items, or without item attributes), the trained
    items with interactions (``warm_items``) and the items added after training (``added``: ``item_id`` + attribute
    columns, after the trained items)."""

    scorer: Scorer
    can: Capabilities
    item_model: Scorer | None
    warm_items: np.ndarray
    added: pd.DataFrame | None = None

    @property
    def scorable(self) -> bool:
        """Whether items known only by their attributes can be scored at all."""
        return self.can.new_items or self.item_model is not None

    def unknown(self, attributes: pd.DataFrame, items: IdMap) -> pd.DataFrame:
        """The rows of ``attributes`` (``item_id`` + attribute columns) of items that ``items`` does not hold, the
        last of each; a DataError when there are some and nothing can score them."""
        known = items.index(attributes[ITEM_ID].to_numpy(), missing="mask") >= 0
        new = attributes[~known].drop_duplicates(ITEM_ID, keep="last").reset_index(drop=True)
        if len(new) and not self.scorable:
            raise DataError(f"{len(new)} new item(s) (e.g. {new[ITEM_ID].iloc[0]!r}) cannot be scored: the model was "
                            "trained without item attributes. Retrain with an items table (--items FILE) to recommend "
                            "new items.")
        return new

    def with_added(self, table: pd.DataFrame) -> NewItems:
        """These new items added after the ones already added."""
        added = table if self.added is None else pd.concat([self.added, table], ignore_index=True)
        return dataclasses.replace(self, added=added)

    def fill(self, scores: np.ndarray, users: np.ndarray, trained: np.ndarray, candidates: np.ndarray,
             user_attributes: pd.DataFrame | None = None, session: tuple[sp.csr_matrix, np.ndarray] | None = None
             ) -> np.ndarray:
        """``scores`` (block rows x all items, the trained items' columns filled) with the columns of the items
        known only by their attributes filled too, among the ``candidates``. ``users``: the rows' user indices (-1:
        unknown), ``trained`` those with training interactions; ``user_attributes`` describe the (new) users of the
        rows when given; ``session``: the row over the trained items that they all share and the prior's weight for
        it (a column), which the models fold in."""
        n_trained = len(self.warm_items)
        interacted = np.flatnonzero(self.warm_items)
        if self.added is not None and self.can.new_items:
            new = slice(n_trained, scores.shape[1])
            if session is not None and self.can.new_item_histories:  # the scorer folds the session in
                source = self._session_scores(self.scorer, *session)
                scores[:, new] = calibrated(scores[:, interacted], source[:, interacted], source[:, new])
            else:
                scores[:, new] = self.scorer.score_new_items(users, self.added, user_attributes)  # type: ignore[attr-defined]
        if self.item_model is None:
            return scores
        targets = np.concatenate([np.flatnonzero(candidates[:n_trained] & ~self.warm_items),
                                  np.arange(n_trained, scores.shape[1])])
        if len(targets) == 0:
            return scores
        if session is None:
            rows = user_rows(self.item_model.user_items_, np.where(trained, users, -1))  # type: ignore[attr-defined]
            source = self._history_scores(self.item_model, rows)
        else:
            source = self._session_scores(self.item_model, *session)
        scores[:, targets] = calibrated(scores[:, interacted], source[:, interacted], source[:, targets])
        return scores

    def _history_scores(self, model: Scorer, rows: sp.csr_matrix) -> np.ndarray:
        """A history model's scores of interaction rows over the trained items, then the added ones."""
        scores = model.score_rows(rows)  # type: ignore[attr-defined]
        if self.added is None:
            return scores
        return np.hstack([scores, model.score_new_rows(rows, self.added)])  # type: ignore[attr-defined]

    def _session_scores(self, model: Scorer, history: sp.csr_matrix, prior_weight: np.ndarray) -> np.ndarray:
        """``model``'s scores of a session's row blended with its scores of a user without history (the average
        taste) as the session's scores of the trained items are with the prior: both standardised, the latter
        weighted by ``prior_weight``."""
        session = self._history_scores(model, history)
        average = self._history_scores(model, sp.csr_matrix(history.shape, dtype=np.float32))
        everything = np.ones(session.shape, bool)
        return standardize(session, everything) + prior_weight * standardize(average, everything)


def item_features(dataset: Dataset) -> tuple[dict[str, np.ndarray] | None, sp.csr_matrix | None]:
    """The fitted item encoder (as arrays) and the items' attribute vectors; None when items carry no usable
    attribute."""
    if dataset.item_attributes is None:
        return None, None
    try:
        encoder = ItemEncoder().fit(dataset.item_attributes)
    except DataError:
        return None, None
    return encoder.to_arrays(), encoder.transform(dataset.item_attributes)


def grown_items(new: pd.DataFrame, items: IdMap, candidates: np.ndarray, encoder: dict[str, np.ndarray] | None,
                features: sp.csr_matrix | None, attributes: pd.DataFrame | None, first_seen: np.ndarray | None,
                ) -> tuple[IdMap, np.ndarray, sp.csr_matrix | None, pd.DataFrame, np.ndarray | None]:
    """The catalogue with the ``new`` items after the known ones: their ids, candidate mask (new items are
    candidates), attribute vectors, attributes and first interaction times (none yet)."""
    grown = IdMap(np.concatenate([items.external_ids.astype(str), new[ITEM_ID].astype(str).to_numpy()]), name="item")
    first = None if first_seen is None else np.concatenate([first_seen, np.full(len(new), np.nan)])
    return (grown, np.concatenate([candidates, np.ones(len(new), bool)]), added_features(encoder, features, new),
            added_attributes(attributes, len(items), new), first)


def restricted(candidates: np.ndarray, items: IdMap, item_ids: np.ndarray) -> np.ndarray:
    """The ``candidates`` mask restricted to ``item_ids`` (a DataError names those that ``items`` does not hold)."""
    indices = items.index(np.asarray(item_ids).astype(str), missing="mask")
    if (indices < 0).any():
        unknown = np.asarray(item_ids)[indices < 0]
        raise DataError(f"{len(unknown)} candidate item(s) unknown to the model, e.g. {unknown[:3].tolist()}: "
                        "add new items with their attributes (--items FILE).")
    return candidates & np.isin(np.arange(len(items)), indices)


def added_features(encoder: dict[str, np.ndarray] | None, features: sp.csr_matrix | None, new: pd.DataFrame
                   ) -> sp.csr_matrix | None:
    """The items' attribute vectors followed by those of the ``new`` items (None without an item encoder)."""
    if encoder is None:
        return features
    return sp.vstack([features, ItemEncoder.from_arrays(encoder).transform(new)], format="csr")


def added_attributes(attributes: pd.DataFrame | None, n_items: int, new: pd.DataFrame) -> pd.DataFrame:
    """The ``n_items`` items' attributes (None: none known) followed by those of the ``new`` items."""
    known = attributes if attributes is not None else pd.DataFrame(index=range(n_items))
    return pd.concat([known, new.drop(columns=ITEM_ID)], ignore_index=True)


def new_item_problems(new: pd.DataFrame, encoder: dict[str, np.ndarray] | None, trained: pd.DataFrame | None
                      ) -> list[str]:
    """What the item encoder cannot use in the attributes of the ``new`` items (lacking or foreign columns, items
    that no trained value describes: `ItemEncoder.problems`); columns of the ``trained`` items' table that training
    left out (ids, paths) are not foreign."""
    if new.empty or encoder is None or trained is None:
        return []
    fitted = ItemEncoder.from_arrays(encoder)
    left_out = [name for name in new.columns if name in trained.columns and name not in fitted.blocks]
    return fitted.problems(new.drop(columns=left_out).reset_index(drop=True))


def padded(matrix: sp.csr_matrix | None, rows: int | None = None, columns: int | None = None
           ) -> sp.csr_matrix | None:
    """A copy of ``matrix`` with empty rows and columns added up to ``rows`` x ``columns`` (None: as many)."""
    if matrix is None:
        return None
    grown = matrix.copy()
    grown.resize((rows or matrix.shape[0], columns or matrix.shape[1]))
    return grown


def calibrated(target: np.ndarray, source: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` mapped per row by the least-squares affine fit of ``source`` onto ``target`` (same columns); the
    slope is kept positive so that the map never reverses the source's order. One source row may serve every
    target row."""
    source_mean = source.mean(axis=1, keepdims=True)
    target_mean = target.mean(axis=1, keepdims=True)
    variance = source.var(axis=1, keepdims=True)
    covariance = ((source - source_mean) * (target - target_mean)).mean(axis=1, keepdims=True)
    slope = np.maximum(np.divide(covariance, variance, out=np.zeros_like(covariance), where=variance > 0), 1e-6)
    return (target_mean + slope * (values - source_mean)).astype(np.float32)


def has_attributes(dataset: Dataset) -> np.ndarray:
    """Which items carry at least one attribute value."""
    table = dataset.item_attributes
    if table is None:
        return np.zeros(dataset.n_items, bool)
    return table.notna().any(axis=1).to_numpy()
