"""The online state of the learning policies: order-independent sums keyed by external item id. Items arrive while
serving (rows grow by doubling), positions too (columns grow to the deepest position shown); memory is bounded by
the catalogue times the slate length."""

from __future__ import annotations

from itertools import repeat

import numpy as np

from tailored.errors import DataError


def item_keys(item_ids: np.ndarray) -> np.ndarray:
    """External item ids as the strings that key the state (the store and the requests carry strings)."""
    return np.asarray(item_ids).astype(str).astype(object)


class ItemPositionCounts:
    """Impressions and rewards per (item, position): ``impressions[row, p - 1]`` lists shown with the item at
    position p, ``rewards[row, p - 1]`` the rewards attributed to them (clicks, or a purchase's value). Sums only,
    so any interleaving of the same feedback gives the same state."""

    def __init__(self) -> None:
        self._rows: dict[str, int] = {}
        self._ids: list[str] = []
        self.impressions = np.zeros((16, 10))
        self.rewards = np.zeros((16, 10))
        self.totals = np.zeros((2, 10))
        """Per position, the impressions (row 0) and rewards (row 1) of all items: the column sums, kept."""

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def item_ids(self) -> np.ndarray:
        return np.array(self._ids, dtype=object)

    def rows(self, item_ids: np.ndarray) -> np.ndarray:
        """The rows of ``item_ids`` (-1: an item without feedback yet)."""
        return self._rows_of(item_keys(item_ids).tolist())

    def _rows_of(self, keys: list[str]) -> np.ndarray:
        return np.fromiter(map(self._rows.get, keys, repeat(-1, len(keys))), np.int64, len(keys))

    def add(self, item_ids: np.ndarray, positions: np.ndarray, values: np.ndarray | None) -> None:
        """Adds one impression per row (``values`` None) or the rows' rewards at (item, position)."""
        positions = np.asarray(positions, dtype=np.int64)
        if len(positions) != len(item_ids) or (values is not None and len(values) != len(item_ids)):
            raise DataError(f"Feedback rows disagree: {len(item_ids)} item_ids, {len(positions)} positions"
                            + ("" if values is None else f", {len(values)} rewards") + "; give one of each per row.")
        if len(positions) == 0:
            return
        if positions.min() < 1:
            raise DataError(f"Feedback position {positions.min()} (row {int(np.argmin(positions))}) must be >= 1 "
                            "(1 = the top of the list).")
        if values is not None and not np.isfinite(values).all():
            raise DataError(f"Feedback reward of row {int(np.flatnonzero(~np.isfinite(values))[0])} is not finite.")
        rows = self._grown(item_keys(item_ids).tolist(), int(positions.max()))
        target = self.impressions if values is None else self.rewards
        added = np.ones(len(rows)) if values is None else np.asarray(values, np.float64)
        np.add.at(target, (rows, positions - 1), added)
        self.totals[int(values is not None)] += np.bincount(positions - 1, added, self.totals.shape[1])

    def _grown(self, keys: list[str], depth: int) -> np.ndarray:
        """Rows of ``keys``, adding the unknown ones (in order of arrival), with room for ``depth`` positions."""
        rows = self._rows_of(keys)
        if (rows < 0).any():
            for item in dict.fromkeys(np.array(keys, dtype=object)[rows < 0].tolist()):
                self._rows[item] = len(self._ids)
                self._ids.append(item)
            rows = self._rows_of(keys)
        rows_needed, columns = len(self._ids), max(depth, self.impressions.shape[1])
        if rows_needed > self.impressions.shape[0] or columns > self.impressions.shape[1]:
            shape = (max(rows_needed, 2 * self.impressions.shape[0]) if rows_needed > self.impressions.shape[0]
                     else self.impressions.shape[0], columns)
            self.impressions, self.rewards = (_padded(matrix, shape) for matrix in (self.impressions, self.rewards))
            self.totals = _padded(self.totals, (2, columns))
        return rows

    def matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """(impressions, rewards) of the items with feedback, rows in `item_ids` order."""
        return self.impressions[:len(self)], self.rewards[:len(self)]

    def snapshot(self) -> dict[str, np.ndarray]:
        """The state independent of arrival order: ids sorted, their (impressions, rewards) rows, trailing empty
        positions dropped -- equal for any two interleavings of the same feedback."""
        order = np.argsort(self.item_ids) if len(self) else np.zeros(0, np.int64)
        impressions, rewards = self.matrices()
        used = np.flatnonzero((impressions != 0).any(axis=0) | (rewards != 0).any(axis=0))
        depth = int(used.max()) + 1 if len(used) else 0
        return {"item_ids": self.item_ids[order], "impressions": impressions[order, :depth],
                "rewards": rewards[order, :depth]}


def _padded(matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    grown = np.zeros(shape)
    grown[:matrix.shape[0], :matrix.shape[1]] = matrix
    return grown
