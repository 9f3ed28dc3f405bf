"""`tailored events export`: the stored events as a training file, less those of items not in the catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from tailored.data.columns import ITEM_ID
from tailored.data.io import read_attributes
from tailored.store.database import EXPORT_COLUMNS

if TYPE_CHECKING:
    from tailored.store import EventStore


def catalogue_events(store: EventStore, items: Path | None = None) -> tuple[pd.DataFrame, int, set[str]]:
    """The events of ``store`` whose item is in the catalogue (the stored items plus the ``item_id`` column of
    ``items``; every event when the catalogue is empty), the number held out, and the catalogue."""
    catalogue = store.item_ids() | (set(read_attributes(items, ITEM_ID)[ITEM_ID]) if items is not None else set())
    chunks, held_out = [], 0
    for chunk in store.export_events():
        known = chunk[ITEM_ID].isin(catalogue) if catalogue else pd.Series(True, index=chunk.index)
        chunks.append(chunk[known])
        held_out += int((~known).sum())
    frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=EXPORT_COLUMNS)
    return frame, held_out, catalogue
