"""Interaction weighting and transforms applied before training."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import scipy.sparse as sp
import pandas as pd

from tailored.data.columns import ITEM_INDEX, TIMESTAMP, USER_INDEX, VALUE
from tailored.data.dataset import Dataset
from tailored.errors import ConfigError, DataError

Weighting = Literal["auto", "raw", "log1p", "binary", "confidence"]
WEIGHTINGS: tuple[str, ...] = ("raw", "log1p", "binary", "confidence")
"""The concrete weightings: what ``auto`` chooses from and what `tailored tune` searches."""
DEFAULT_WEIGHTING: Weighting = "auto"
HEAVY_TAIL_RATIO = 10.0
"""``auto`` calls the values heavy-tailed counts when the largest per-pair total is at least this many times the median
one (play counts: thousands against tens; star ratings: 5 against 4; purchases once each: 1 against 1)."""


def aggregate_pairs(dataset: Dataset) -> Dataset:
    """One row per (user, item), in order of first appearance: values summed, latest timestamp kept, and the other
    columns (event type, context: device, channel...) as the pair's latest row has them (its last row without
    timestamps)."""
    table, pair = dataset.interactions, [USER_INDEX, ITEM_INDEX]
    aggregations = {VALUE: "sum"} | ({TIMESTAMP: "max"} if TIMESTAMP in table else {})
    grouped = table.groupby(pair, sort=False, as_index=False).agg(aggregations)
    others = [column for column in table.columns if column not in (*pair, VALUE, TIMESTAMP)]
    if others:
        by_time = table[pair].assign(_row=np.arange(len(table)))
        if TIMESTAMP in table:
            by_time = by_time.iloc[np.argsort(table[TIMESTAMP].to_numpy(), kind="stable")]
        latest = by_time.groupby(pair, sort=False)["_row"].last().to_numpy()
        grouped = grouped.merge(table.iloc[latest][pair + others], on=pair, how="left", sort=False)
    return Dataset(dataset.users, dataset.items, grouped, dataset.user_attributes, dataset.item_attributes)


def resolve_weighting(weighting: Weighting, dataset: Dataset, explicit: bool) -> tuple[str, str]:
    """The concrete weighting for ``weighting`` on ``dataset`` and why; ``explicit``: the scorer predicts the values.

    ``auto`` looks at the per-(user, item) totals (duplicates summed): a rating predictor keeps them (``raw``);
    negative totals (signed feedback) stay ``raw`` since the other weightings clip them to 0; heavy-tailed counts
    (largest total >= ``HEAVY_TAIL_RATIO`` x the median positive one) get ``log1p``, so that a few pairs played
    thousands of times do not drown the rest; anything lighter (0/1, star ratings, small counts) gets ``binary``:
    for a ranking model the presence of a pair is the signal (a rating of 2 is still an item the user chose).
    """
    if weighting != "auto":
        return weighting, "given"
    if explicit:
        return "raw", "the algorithm predicts the values (ratings) themselves"
    totals = dataset.matrix().data
    if (totals < 0).any():
        return "raw", f"{int((totals < 0).sum()):,} negative (user, item) totals: signed feedback, kept as given"
    positive = totals[totals > 0]
    if not positive.size:
        return "binary", "no positive value"
    median, largest = float(np.median(positive)), float(positive.max())
    if largest >= HEAVY_TAIL_RATIO * median:
        return "log1p", (f"counts with a heavy tail: the largest (user, item) total {largest:g} is "
                         f"{largest / median:,.0f} x the median {median:g}")
    return "binary", (f"values without a heavy tail (largest (user, item) total {largest:g}, median {median:g}: "
                      "0/1, ratings or small counts): a ranking model learns from which pairs exist")


def apply_weighting(dataset: Dataset, weighting: Weighting, confidence_alpha: float = 1.0) -> Dataset:
    """Weight the (aggregated) interaction values.

    ``raw`` keeps rows as they are; ``log1p`` tames heavy buyers (569 purchases weigh log(570) ~ 6.3);
    ``binary`` keeps only presence; ``confidence`` is Hu et al.'s ``1 + alpha * log1p(value)``; resolve ``auto``
    first (`resolve_weighting`).
    """
    if weighting == "auto":
        raise ConfigError("apply_weighting needs a concrete weighting: resolve 'auto' with resolve_weighting first.")
    if weighting == "raw":
        return dataset
    aggregated = aggregate_pairs(dataset)
    values = np.clip(aggregated.values.astype(np.float64), 0.0, None)
    weighted = {
        "log1p": lambda v: np.log1p(v),
        "binary": lambda v: (v > 0).astype(np.float64),
        "confidence": lambda v: 1.0 + confidence_alpha * np.log1p(v),
    }[weighting](values)
    return aggregated.with_values(weighted)


def time_decay_weights(timestamps: np.ndarray, half_life_days: float, now: float | None = None) -> np.ndarray:
    """``0.5 ** (age / half_life)``: an interaction one half-life old counts half."""
    timestamps = np.asarray(timestamps, np.float64)
    reference = np.nanmax(timestamps) if now is None else now
    age_days = np.clip(reference - timestamps, 0.0, None) / 86400.0
    return np.power(0.5, age_days / half_life_days)


def binarise(dataset: Dataset, threshold: float) -> Dataset:
    """Keep the interactions with ``value >= threshold`` (e.g. ratings >= 4 as positives), each with value 1."""
    kept = dataset.subset(dataset.values >= threshold)
    return kept.with_values(np.ones(len(kept), np.float32))


def log1p_values(dataset: Dataset) -> Dataset:
    """Values replaced by ``log1p(value)``, which compresses heavy counts (no aggregation; see ``apply_weighting``)."""
    values = dataset.values.astype(np.float64)
    negative = values < 0
    if negative.any():
        raise DataError(
            f"log1p_values needs non-negative values, found {int(negative.sum())} negative (minimum {values.min():g}); "
            "reject them first with check_quality(rules=QualityRules(min_value=0))."
        )
    return dataset.with_values(np.log1p(values))


Moment = int | float | str | pd.Timestamp


def history_window(
    dataset: Dataset, days: float | None = None, start: Moment | None = None, end: Moment | None = None
) -> Dataset:
    """Interactions with ``start <= timestamp < end``.

    ``start``/``end`` are unix seconds, ISO dates or Timestamps (naive = UTC). ``days`` sets the window's length:
    with ``start`` it ends ``days`` later, otherwise it ends at ``end`` (default: just after the latest interaction).
    """
    timestamps = dataset.timestamps
    if timestamps is None:
        raise DataError(
            "history_window needs timestamps but the dataset has no 'timestamp' column; "
            "read the interactions with time=<your time column>."
        )
    lower, upper = window_bounds(days, start, end, lambda: float(timestamps.max()))
    keep = np.ones(len(timestamps), bool)
    if lower is not None:
        keep &= timestamps >= lower
    if upper is not None:
        keep &= timestamps < upper
    return dataset.subset(keep)


def window_bounds(days: float | None, start: Moment | None, end: Moment | None,
                  latest: Callable[[], float]) -> tuple[float | None, float | None]:
    """`history_window`'s ``[lower, upper)`` in unix seconds (None: open), checked; ``latest`` gives the latest
    timestamp, read only when the window ends just after it."""
    if days is None and start is None and end is None:
        raise ConfigError("history_window needs days, start or end (e.g. days=365).")
    if days is not None and start is not None and end is not None:
        raise ConfigError("history_window takes at most two of days, start and end; drop one of them.")
    if days is not None and days <= 0:
        raise ConfigError(f"history_window needs days > 0, got {days}.")
    lower = None if start is None else unix_seconds(start)
    upper = None if end is None else unix_seconds(end)
    if days is not None:
        if lower is None:
            upper = latest() + 1.0 if upper is None else upper
            lower = upper - days * 86400.0
        else:
            upper = lower + days * 86400.0
    return lower, upper


def unix_seconds(moment: Moment) -> float:
    """Unix seconds of a number (as given), an ISO date or a Timestamp (naive = UTC)."""
    if isinstance(moment, int | float):
        return float(moment)
    stamp = pd.Timestamp(moment)
    return (stamp if stamp.tzinfo is not None else stamp.tz_localize("UTC")).timestamp()


def k_core(dataset: Dataset, k_users: int, k_items: int | None = None) -> Dataset:
    """Repeatedly drop users with fewer than ``k_users`` and items with fewer than ``k_items`` (default ``k_users``)
    interactions until every remaining user and item has enough (rows are counted: aggregate_pairs first to count
    distinct items)."""
    k_items = k_users if k_items is None else k_items
    users, items = dataset.user_index, dataset.item_index
    keep = np.ones(len(dataset), bool)
    while True:
        user_counts = np.bincount(users[keep], minlength=dataset.n_users)
        item_counts = np.bincount(items[keep], minlength=dataset.n_items)
        survivors = keep & (user_counts[users] >= k_users) & (item_counts[items] >= k_items)
        if survivors.sum() == keep.sum():
            return dataset.subset(keep)
        keep = survivors


def recency_weighted(dataset: Dataset, half_life: float = math.inf) -> sp.csr_matrix:
    """User x item history; with ``half_life`` each user's k-th most recent interaction weighs
    ``0.5 ** (k / half_life)``.

    k counts the user's strictly later interactions (ties share a weight); row order stands in for time when
    the dataset has no timestamps; an infinite half-life keeps every interaction's value.
    """
    if math.isinf(half_life):
        return dataset.matrix()
    users = dataset.user_index.astype(np.int64)
    times = dataset.timestamps if dataset.timestamps is not None else np.arange(len(dataset))
    _, time_rank = np.unique(np.asarray(times), return_inverse=True)
    key = users * (int(time_rank.max(initial=0)) + 1) + time_rank
    sorted_keys = np.sort(key)
    group_end = np.cumsum(np.bincount(users, minlength=dataset.n_users))[users]
    later = group_end - np.searchsorted(sorted_keys, key, side="right")
    return dataset.matrix(values=dataset.values * np.power(0.5, later / half_life))


def decayed(dataset: Dataset, decay_half_life_days: float | None) -> Dataset:
    """Interaction values times ``0.5 ** (age / decay_half_life_days)``, the age counted back from the latest
    interaction: preferences drift, recent behaviour counts more. Unchanged without a half-life or timestamps."""
    if decay_half_life_days is None or dataset.timestamps is None:
        return dataset
    if decay_half_life_days <= 0:
        raise ConfigError(f"decay_half_life_days must be positive, got {decay_half_life_days}.")
    return dataset.with_values(dataset.values * time_decay_weights(dataset.timestamps, decay_half_life_days))
