"""Dataset: immutable interactions plus user/item attributes, indexed once through IdMaps."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailored.data.columns import (
    EVENT_TYPE,
    ITEM_ID,
    ITEM_INDEX,
    TIMESTAMP,
    USER_ID,
    USER_INDEX,
    VALUE,
)
from tailored.data.idmap import IdMap
from tailored.errors import DataError


@dataclass(frozen=True, eq=False)
class Dataset:
    """Interactions as dense indices (``user_index, item_index, value[, timestamp, event_type, context...]``).

    ``user_attributes`` / ``item_attributes`` are indexed by dense index (one row per known id, NaN where unknown).
    Splits restrict the interactions but keep both IdMaps, so indices agree between train and test.
    """

    users: IdMap
    items: IdMap
    interactions: pd.DataFrame
    user_attributes: pd.DataFrame | None = None
    item_attributes: pd.DataFrame | None = None

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        users: pd.DataFrame | None = None,
        items: pd.DataFrame | None = None,
        user_map: IdMap | None = None,
        item_map: IdMap | None = None,
    ) -> Dataset:
        """Index a canonical interactions frame (``user_id, item_id[, value, timestamp, ...]``).

        Attribute tables are frames with a ``user_id`` / ``item_id`` column. Ids are indexed in order of
        appearance: interactions first, then attribute-only ids (cold users/items), unless maps are given.
        """
        for column in (USER_ID, ITEM_ID):
            if column not in frame.columns:
                raise DataError(f"Interactions have no '{column}' column; columns are {list(frame.columns)}.")
        if user_map is None:
            user_map = IdMap.from_values(frame[USER_ID], *(() if users is None else (users[USER_ID],)), name="user")
        if item_map is None:
            item_map = IdMap.from_values(frame[ITEM_ID], *(() if items is None else (items[ITEM_ID],)), name="item")
        user_index = user_map.index(frame[USER_ID])
        item_index = item_map.index(frame[ITEM_ID])
        known = (user_index >= 0) & (item_index >= 0)
        table = pd.DataFrame(
            {
                USER_INDEX: user_index[known].astype(np.int32),
                ITEM_INDEX: item_index[known].astype(np.int32),
                VALUE: (frame[VALUE].to_numpy(np.float32)[known] if VALUE in frame
                        else np.ones(known.sum(), np.float32)),
            }
        )
        for column in frame.columns.difference([USER_ID, ITEM_ID, VALUE], sort=False):
            table[column] = frame[column].to_numpy()[known]
        return cls(
            users=user_map,
            items=item_map,
            interactions=table,
            user_attributes=_attributes(users, USER_ID, user_map),
            item_attributes=_attributes(items, ITEM_ID, item_map),
        )

    # -- shape and arrays -------------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def __len__(self) -> int:
        return len(self.interactions)

    @property
    def user_index(self) -> np.ndarray:
        return self.interactions[USER_INDEX].to_numpy()

    @property
    def item_index(self) -> np.ndarray:
        return self.interactions[ITEM_INDEX].to_numpy()

    @property
    def values(self) -> np.ndarray:
        return self.interactions[VALUE].to_numpy()

    @property
    def timestamps(self) -> np.ndarray | None:
        return self.interactions[TIMESTAMP].to_numpy() if TIMESTAMP in self.interactions else None

    @property
    def event_types(self) -> np.ndarray | None:
        return self.interactions[EVENT_TYPE].to_numpy() if EVENT_TYPE in self.interactions else None

    def matrix(self, values: np.ndarray | None = None, binary: bool = False) -> sp.csr_matrix:
        """User x item CSR matrix (duplicates summed); ``binary`` gives 1 for every observed pair."""
        data = np.ones(len(self), np.float32) if binary else (self.values if values is None else values)
        matrix = sp.csr_matrix(
            (np.asarray(data, np.float32), (self.user_index, self.item_index)), shape=(self.n_users, self.n_items)
        )
        matrix.sum_duplicates()
        if binary:
            matrix.data[:] = 1.0
        return matrix

    def item_counts(self) -> np.ndarray:
        """Number of interactions of each item (0 for items only known from attributes)."""
        return np.bincount(self.item_index, minlength=self.n_items)

    def user_counts(self) -> np.ndarray:
        return np.bincount(self.user_index, minlength=self.n_users)

    def history(self, user: int) -> np.ndarray:
        """Item indices the user interacted with, in time order when timestamps exist."""
        rows = self.interactions[self.interactions[USER_INDEX] == user]
        if TIMESTAMP in rows:
            rows = rows.sort_values(TIMESTAMP, kind="stable")
        return rows[ITEM_INDEX].to_numpy()

    # -- derived datasets -------------------------------------------------------------------------------------
    def subset(self, rows: np.ndarray) -> Dataset:
        """Same ids and attributes, only the interactions selected by a boolean mask or positions."""
        positions = np.flatnonzero(rows) if rows.dtype == bool else rows
        return replace(self, interactions=self.interactions.iloc[positions].reset_index(drop=True))

    def with_values(self, values: np.ndarray) -> Dataset:
        """Same interactions with new values (weighting, transforms)."""
        table = self.interactions.copy()
        table[VALUE] = np.asarray(values, np.float32)
        return replace(self, interactions=table)

    def to_frame(self) -> pd.DataFrame:
        """Interactions with external ids, in canonical column order."""
        table = self.interactions.drop(columns=[USER_INDEX, ITEM_INDEX])
        table.insert(0, ITEM_ID, self.items.ids(self.item_index))
        table.insert(0, USER_ID, self.users.ids(self.user_index))
        return table

    def fingerprint(self) -> str:
        """Stable hash of the interactions and ids: which data a model was trained on."""
        digest = hashlib.sha256()
        for array in (self.users.external_ids.astype(str), self.items.external_ids.astype(str)):
            digest.update("\x1f".join(array).encode())
        digest.update(pd.util.hash_pandas_object(self.interactions, index=False).to_numpy().tobytes())
        return digest.hexdigest()[:16]

    def save(self, directory: str | Path) -> None:
        """Write interactions (external ids) and attribute tables as Parquet files."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.to_frame().to_parquet(directory / "interactions.parquet", index=False)
        pd.DataFrame({USER_ID: self.users.external_ids}).to_parquet(directory / "users.parquet", index=False)
        pd.DataFrame({ITEM_ID: self.items.external_ids}).to_parquet(directory / "items.parquet", index=False)
        for name, table, id_column, idmap in (
            ("user_attributes", self.user_attributes, USER_ID, self.users),
            ("item_attributes", self.item_attributes, ITEM_ID, self.items),
        ):
            if table is not None:
                table.assign(**{id_column: idmap.external_ids}).to_parquet(directory / f"{name}.parquet", index=False)

    @classmethod
    def load(cls, directory: str | Path) -> Dataset:
        directory = Path(directory)
        if not (directory / "interactions.parquet").exists():
            raise DataError(f"{directory} holds no saved dataset (interactions.parquet is missing).")
        users = IdMap(pd.read_parquet(directory / "users.parquet")[USER_ID].to_numpy(), name="user")
        items = IdMap(pd.read_parquet(directory / "items.parquet")[ITEM_ID].to_numpy(), name="item")

        def attributes(name: str) -> pd.DataFrame | None:
            path = directory / f"{name}.parquet"
            return pd.read_parquet(path) if path.exists() else None

        return cls.from_frame(
            pd.read_parquet(directory / "interactions.parquet"),
            users=attributes("user_attributes"),
            items=attributes("item_attributes"),
            user_map=users,
            item_map=items,
        )


def _attributes(table: pd.DataFrame | None, id_column: str, idmap: IdMap) -> pd.DataFrame | None:
    """Attribute rows aligned on dense indices (last row wins for a repeated id)."""
    if table is None:
        return None
    if id_column not in table.columns:
        raise DataError(f"Attribute table has no '{id_column}' column; columns are {list(table.columns)}.")
    table = table.drop_duplicates(id_column, keep="last")
    aligned = table.set_index(id_column).reindex(pd.Index(idmap.external_ids, name=id_column))
    return aligned.reset_index(drop=True)
