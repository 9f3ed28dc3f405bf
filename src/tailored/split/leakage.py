"""Leakage check: no test (or validation) row may also be a training row; cold splits keep their ids apart."""

from __future__ import annotations

from typing import Any

import pandas as pd

from tailored.data.columns import ITEM_ID, TIMESTAMP, USER_ID
from tailored.errors import DataError
from tailored.split.base import Split

_COLD_COLUMN = {"users": USER_ID, "items": ITEM_ID}


def check_leakage(split: Split) -> dict[str, Any]:
    """Raise ``DataError`` on leakage, else return a summary (rows per part, ids of test unseen in training).

    A row leaks when its (user, item[, timestamp]) key, by external id, is in an earlier part (test vs train,
    valid vs train, test vs valid); timestamps join the key when every part has them, so a repeat
    interaction at a later time is not leakage. In a cold-start split no test user (item) may occur in training.
    """
    parts = {name: part.to_frame() for name, part in split.parts().items()}
    key = [USER_ID, ITEM_ID] + ([TIMESTAMP] if all(TIMESTAMP in frame for frame in parts.values()) else [])
    summary: dict[str, Any] = {f"{name}_rows": len(frame) for name, frame in parts.items()}
    for later, earlier in (("test", "train"), ("valid", "train"), ("test", "valid")):
        if later in parts and earlier in parts:
            shared = _keys(parts[later], key).isin(_keys(parts[earlier], key))
            if shared.any():
                examples = parts[later].loc[shared, key].head(3).to_dict("records")
                raise DataError(
                    f"Leakage in split '{split.name}': {shared.sum()} {later} rows are also {earlier} rows, "
                    f"e.g. {examples}; re-create the split from de-duplicated data."
                )
    cold = split.params.get("cold")
    for kind, column in _COLD_COLUMN.items():
        unseen = ~parts["test"][column].isin(parts["train"][column])
        summary[f"test_{kind}_unseen_in_train"] = int(parts["test"].loc[unseen, column].nunique())
        if cold == kind and not unseen.all():
            leaked = parts["test"].loc[~unseen, column].unique()
            raise DataError(
                f"Leakage in cold-start split '{split.name}': {len(leaked)} test {kind} also occur in training, "
                f"e.g. {leaked[:3].tolist()}; cold {kind} must have no training rows."
            )
    summary["key"] = key
    return summary


def _keys(frame: pd.DataFrame, key: list[str]) -> pd.MultiIndex:
    return pd.MultiIndex.from_frame(frame[key])
