"""IdMap: the single converter between external ids and dense indices 0..n-1."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from tailored.errors import UnknownIdError

Missing = Literal["raise", "drop", "mask"]


FEW_IDS = 32
"""Up to this many ids, `IdMap.index` looks each up by hash instead of building an indexer."""


class IdMap:
    """Frozen bijection external id <-> ``0..n-1`` (ids keep their first-seen order)."""

    def __init__(self, ids: np.ndarray | pd.Index | list, name: str = "id") -> None:
        index = pd.Index(ids)
        if index.has_duplicates:
            raise ValueError(f"IdMap '{name}' received duplicate ids, e.g. {index[index.duplicated()][:3].tolist()}")
        self._index = index
        self._external: np.ndarray | None = None
        self.name = name

    @classmethod
    def from_values(cls, *columns: np.ndarray | pd.Series, name: str = "id") -> IdMap:
        """Build from one or more columns of (possibly repeated) ids, in order of first appearance."""
        values = pd.concat([pd.Series(np.asarray(c)) for c in columns], ignore_index=True) if columns else pd.Series([])
        return cls(pd.unique(values.dropna()), name=name)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._index.equals(other._index)

    __hash__ = None  # type: ignore[assignment]

    @property
    def external_ids(self) -> np.ndarray:
        """The ids as a numpy array, converted once (pandas' Arrow-backed strings copy on every ``to_numpy``)."""
        if self._external is None:
            self._external = self._index.to_numpy()
            self._external.setflags(write=False)
        return self._external

    def index(self, ids: np.ndarray | pd.Series | list, missing: Missing = "mask") -> np.ndarray:
        """Indices of ``ids``; unknown ids raise, are dropped, or become -1 (``mask``). A few ids are looked up one by
        one (`position`): building the indexer costs about 0.5 ms on a large Arrow-backed index, a request's worth."""
        ids = np.asarray(ids)
        if len(ids) <= FEW_IDS:
            positions = np.array([self.position(one) for one in ids.tolist()], np.int64)
        else:
            positions = self._index.get_indexer(ids)
        if missing == "mask":
            return positions.astype(np.int64)
        unknown = positions < 0
        if missing == "raise" and unknown.any():
            examples = pd.Series(np.asarray(ids))[unknown].unique()[:5].tolist()
            raise UnknownIdError(f"{unknown.sum()} unknown {self.name}(s), e.g. {examples}")
        return positions[~unknown].astype(np.int64)

    def position(self, external_id: object) -> int:
        """The index of one id, -1 if unknown (a hash lookup: no array is built)."""
        try:
            found = self._index.get_loc(external_id)
        except (KeyError, TypeError):
            return -1
        return found if isinstance(found, int) else -1

    def ids(self, indices: np.ndarray) -> np.ndarray:
        """External ids of dense ``indices``."""
        return self.external_ids[np.asarray(indices, dtype=np.int64)]


def id_strings(ids: pd.Series) -> pd.Series:
    """Ids as text; whole floats (ints that met a NaN) lose their ``.0``."""
    if pd.api.types.is_float_dtype(ids) and bool((ids.dropna() % 1 == 0).all()):
        ids = ids.astype("Int64")
    return ids.astype("str")
