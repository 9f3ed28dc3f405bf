"""Periodic lifts shared by the time stages: how much more (or less) an item sells in one bucket of a cycle (week of
the year, hour of the week) than the catalogue does, and the score adjustment that applies it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tailored.data.activity import DAY
from tailored.data.dataset import Dataset
from tailored.rank.context import Context

Buckets = Callable[[np.ndarray], np.ndarray]
"""Unix seconds -> bucket indices of the cycle."""


def learn_lift(dataset: Dataset, buckets: Buckets, n_buckets: int, prior: float, smoothing: int,
               min_history_days: float) -> np.ndarray:
    """`periodic_lift` of the dataset's interactions; empty (no lift) without timestamps or with a history shorter
    than ``min_history_days``, too short to show the cycle."""
    timestamps = dataset.timestamps
    if timestamps is None or len(timestamps) == 0 or np.ptp(timestamps) < min_history_days * DAY:
        return np.ones((0, n_buckets), np.float32)
    return periodic_lift(dataset.item_index, buckets(np.asarray(timestamps, np.int64)), dataset.n_items, n_buckets,
                         prior, smoothing)


def apply_lift(scores: np.ndarray, lift: np.ndarray, buckets: Buckets, context: Context, strength: float) -> np.ndarray:
    """`add_log_lift` for the bucket of the request's moment; scores unchanged when nothing was learned."""
    if len(lift) == 0:
        return scores
    bucket = int(buckets(np.array([int(context.when().timestamp())]))[0])
    return add_log_lift(scores, lift[:, bucket], strength)


def lift_reasons(items: np.ndarray, lift: np.ndarray, buckets: Buckets, context: Context, rising: str, falling: str,
                 threshold: float = 1.5) -> np.ndarray:
    """``"<rising> x2.4"`` / ``"<falling> x0.3"`` for listed items whose lift in the request's bucket is at least
    ``threshold`` (or at most its inverse); "" otherwise."""
    reasons = np.full(items.shape, "", dtype=object)
    if len(lift) == 0:
        return reasons
    bucket = int(buckets(np.array([int(context.when().timestamp())]))[0])
    learned = (items >= 0) & (items < len(lift))
    values = np.where(learned, lift[np.where(learned, items, 0), bucket], 1.0)
    reasons[values >= threshold] = [f"{rising} x{value:.1f}" for value in values[values >= threshold]]
    reasons[values <= 1 / threshold] = [f"{falling} x{value:.1f}" for value in values[values <= 1 / threshold]]
    return reasons


def periodic_lift(items: np.ndarray, buckets: np.ndarray, n_items: int, n_buckets: int, prior: float,
                  smoothing: int) -> np.ndarray:
    """Items x buckets lift ``share_i(b) / g(b)``, with ``share_i(b) = (c_i(b) + prior g(b)) / (n_i + prior)``, the
    counts circularly smoothed over ``±smoothing`` buckets and ``g`` the catalogue's share; buckets never seen: 1."""
    counts = np.zeros((n_items, n_buckets))
    np.add.at(counts, (items, buckets), 1.0)
    counts = sum(np.roll(counts, shift, axis=1) for shift in range(-smoothing, smoothing + 1)) / (2 * smoothing + 1)
    catalogue = counts.sum(axis=0) / max(counts.sum(), 1.0)
    share = (counts + prior * catalogue) / (counts.sum(axis=1, keepdims=True) + prior)
    return np.divide(share, catalogue, out=np.ones_like(share), where=catalogue > 0).astype(np.float32)


def add_log_lift(scores: np.ndarray, lift: np.ndarray, strength: float) -> np.ndarray:
    """`standardized` scores plus ``strength * log(lift)`` of their item; items beyond ``lift`` (added after
    training) get no lift; -inf stays -inf."""
    full = np.ones(scores.shape[1], np.float32)
    full[: len(lift)] = np.maximum(lift, 1e-6)
    return standardized(scores) + (strength * np.log(full)).astype(np.float32)


def standardized(scores: np.ndarray) -> np.ndarray:
    """Each row's finite scores as z-scores over the row's finite entries (a constant row gives zeros); -inf stays."""
    finite = np.isfinite(scores)
    count = np.maximum(finite.sum(axis=1, keepdims=True), 1)
    mean = np.where(finite, scores, 0.0).sum(axis=1, keepdims=True) / count
    spread = np.sqrt(np.where(finite, (scores - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / count)
    return np.where(finite, (scores - mean) / np.maximum(spread, 1e-12), scores).astype(scores.dtype)
