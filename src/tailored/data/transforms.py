"""Interaction weighting and transforms applied before training."""

from __future__ import annotations

from typing import Literal

import numpy as np

from tailored.data.columns import ITEM_INDEX, TIMESTAMP, USER_INDEX, VALUE
from tailored.data.dataset import Dataset

Weighting = Literal["raw", "log1p", "binary", "confidence"]
WEIGHTINGS: tuple[str, ...] = ("raw", "log1p", "binary", "confidence")


def aggregate_pairs(dataset: Dataset) -> Dataset:
    """One row per (user, item): values summed, latest timestamp kept."""
    table = dataset.interactions
    aggregations = {VALUE: "sum"} | ({TIMESTAMP: "max"} if TIMESTAMP in table else {})
    grouped = table.groupby([USER_INDEX, ITEM_INDEX], sort=False, as_index=False).agg(aggregations)
    return Dataset(dataset.users, dataset.items, grouped, dataset.user_attributes, dataset.item_attributes)


def apply_weighting(dataset: Dataset, weighting: Weighting, confidence_alpha: float = 1.0) -> Dataset:
    """Weight the (aggregated) interaction values.

    ``raw`` keeps rows as they are; ``log1p`` tames heavy buyers (569 purchases weigh log(570) ~ 6.3);
    ``binary`` keeps only presence; ``confidence`` is Hu et al.'s ``1 + alpha * log1p(value)``.
    """
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


