"""`tailored logs export`: the whole feedback log of a store in one frame, in time order."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from tailored.store.attribution import LOG_SCHEMA

if TYPE_CHECKING:
    from tailored.store import EventStore


def feedback_log_frame(store: EventStore, window: float) -> pd.DataFrame:
    """Every row of ``store``'s feedback log (`LOG_SCHEMA`, events attributed within ``window`` seconds), ordered by
    ``created_at``, then exposure and position; an empty log keeps the columns and their types."""
    chunks = list(store.feedback_log(window))
    if not chunks:
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in LOG_SCHEMA.items()})
    return (pd.concat(chunks, ignore_index=True).sort_values(["created_at", "exposure_id", "position"], kind="stable")
            .reset_index(drop=True))
