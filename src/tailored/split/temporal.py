"""Global temporal split: everything before a cut trains, what follows (optionally within a horizon) tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tailored.data.columns import TIMESTAMP
from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.split.base import Split, check_fraction, make_split, time_order

SECONDS_PER_DAY = 86_400


def split_temporal(
    dataset: Dataset,
    cutoff: Any = None,
    test_fraction: float | None = None,
    horizon_days: float | None = None,
) -> Split:
    """Rows before the cut train, rows at or after it test; give exactly one of ``cutoff`` or ``test_fraction``.

    ``cutoff`` is a time in the timestamps' own unit, or a date (string / datetime) for numeric timestamps, which
    are then read as Unix seconds. ``test_fraction`` cuts at the timestamp that leaves ``round(f * rows)`` rows
    after it (ties at the cut go to test). With ``horizon_days``, test keeps only the rows within that many days
    after the cut; later rows are dropped and counted. Test rows of users or items unseen in training are kept
    and counted in ``params``.
    """
    if (cutoff is None) == (test_fraction is None):
        raise ConfigError("split_temporal needs exactly one of cutoff (a time) or test_fraction (e.g. 0.2).")
    time_order(dataset, "split_temporal")  # checks the column exists and has no gaps
    times = dataset.interactions[TIMESTAMP]
    numeric = pd.api.types.is_numeric_dtype(times)
    if test_fraction is not None:
        n_test = int(np.rint(check_fraction(test_fraction, "test_fraction") * len(dataset)))
        cut = times.sort_values().iloc[len(dataset) - max(n_test, 1)]
    else:
        cut = as_time(cutoff, numeric)
    train = (times < cut).to_numpy()
    after_horizon = np.zeros(len(dataset), bool)
    if horizon_days is not None:
        if horizon_days <= 0:
            raise ConfigError(f"Parameter horizon_days={horizon_days!r} must be positive (days after the cut).")
        span = horizon_days * SECONDS_PER_DAY if numeric else pd.Timedelta(days=horizon_days)
        after_horizon = (times >= cut + span).to_numpy()
    params = {
        "cutoff": cut,
        "test_fraction": test_fraction,
        "horizon_days": horizon_days,
        "rows_after_horizon": int(after_horizon.sum()),
    }
    test = ~train & ~after_horizon
    params.update(_unseen_counts(dataset, train, test))
    return make_split(dataset, test, "temporal", params, train=train)


def as_time(value: Any, numeric: bool) -> Any:
    """A cut comparable with the timestamps (dates become Unix seconds for numeric timestamps)."""
    if isinstance(value, (int, float, np.number)):
        return value if numeric else pd.Timestamp(value, unit="s")
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"cutoff={value!r} is not a time; give a date such as '1998-03-01' or a number.") from error
    return stamp.timestamp() if numeric else stamp


def _unseen_counts(dataset: Dataset, train: np.ndarray, test: np.ndarray) -> dict[str, int]:
    """Test rows, users and items that never occur in training (kept in test, flagged here)."""
    counts = {}
    for kind, index in (("user", dataset.user_index), ("item", dataset.item_index)):
        unseen = ~np.isin(index[test], index[train])
        counts[f"test_rows_unseen_{kind}"] = int(unseen.sum())
        counts[f"test_{kind}s_unseen"] = int(np.unique(index[test][unseen]).size)
    return counts
