"""Periodic lifts shared by the time stages: how much more (or less) an item sells in one bucket of a cycle (week of
the year, hour of the week) than the catalogue does, and the score adjustment that applies it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import chi2

from tailored.data.activity import DAY
from tailored.data.dataset import Dataset
from tailored.rank.context import Context

Buckets = Callable[[np.ndarray], np.ndarray]
"""Unix seconds -> bucket indices of the cycle."""


def learn_lift(dataset: Dataset, buckets: Buckets, n_buckets: int, prior: float, smoothing: int,
               min_history_days: float, significance: float) -> np.ndarray:
    """`periodic_lift` of the dataset's interactions; empty (no lift) without timestamps or with a history shorter
    than ``min_history_days``, too short to show the cycle."""
    timestamps = dataset.timestamps
    if timestamps is None or len(timestamps) == 0 or np.ptp(timestamps) < min_history_days * DAY:
        return np.ones((0, n_buckets), np.float32)
    return periodic_lift(dataset.item_index, buckets(np.asarray(timestamps, np.int64)), dataset.n_items, n_buckets,
                         prior, smoothing, significance)


def apply_lift(scores: np.ndarray, lift: np.ndarray, buckets: Buckets, context: Context, strength: float) -> np.ndarray:
    """`add_log_lift` for the bucket of the request's moment; scores unchanged when nothing was learned or the
    request has no moment."""
    if len(lift) == 0 or context.moment is None:
        return scores
    bucket = int(buckets(np.array([int(context.when().timestamp())]))[0])
    return add_log_lift(scores, lift[:, bucket], strength)


def lift_reasons(items: np.ndarray, lift: np.ndarray, buckets: Buckets, context: Context, rising: str, falling: str,
                 threshold: float = 1.5) -> np.ndarray:
    """``"<rising> x2.4"`` / ``"<falling> x0.3"`` for listed items whose lift in the request's bucket is at least
    ``threshold`` (or at most its inverse); "" otherwise."""
    reasons = np.full(items.shape, "", dtype=object)
    if len(lift) == 0 or context.moment is None:
        return reasons
    bucket = int(buckets(np.array([int(context.when().timestamp())]))[0])
    learned = (items >= 0) & (items < len(lift))
    values = np.where(learned, lift[np.where(learned, items, 0), bucket], 1.0)
    reasons[values >= threshold] = [f"{rising} x{value:.1f}" for value in values[values >= threshold]]
    reasons[values <= 1 / threshold] = [f"{falling} x{value:.1f}" for value in values[values <= 1 / threshold]]
    return reasons


def periodic_lift(items: np.ndarray, buckets: np.ndarray, n_items: int, n_buckets: int, prior: float,
                  smoothing: int, significance: float = 1.0) -> np.ndarray:
    """Items x buckets lift ``share_i(b) / g(b)``, with ``share_i(b) = (c_i(b) + prior g(b)) / (n_i + prior)``, the
    counts circularly smoothed over ``±smoothing`` buckets and ``g`` the catalogue's share; buckets never seen: 1.
    An item whose raw counts do not depart from the catalogue's curve at the ``significance`` level (G-test) keeps
    lift 1 everywhere: rating sessions at odd hours are not a daily pattern."""
    counts = np.zeros((n_items, n_buckets))
    np.add.at(counts, (items, buckets), 1.0)
    patterned = departs(counts, significance)
    counts = sum(np.roll(counts, shift, axis=1) for shift in range(-smoothing, smoothing + 1)) / (2 * smoothing + 1)
    catalogue = counts.sum(axis=0) / max(counts.sum(), 1.0)
    share = (counts + prior * catalogue) / (counts.sum(axis=1, keepdims=True) + prior)
    lift = np.divide(share, catalogue, out=np.ones_like(share), where=catalogue > 0)
    lift[~patterned] = 1.0
    return lift.astype(np.float32)


def departs(counts: np.ndarray, significance: float) -> np.ndarray:
    """Per row: does its distribution over the buckets differ from the column totals' (G-test, p < significance)?"""
    if significance >= 1.0:
        return np.ones(len(counts), bool)
    expected = counts.sum(axis=1, keepdims=True) * counts.sum(axis=0) / max(counts.sum(), 1.0)
    ratio = np.divide(counts, expected, out=np.ones_like(counts), where=(counts > 0) & (expected > 0))
    statistic = 2.0 * (counts * np.log(ratio)).sum(axis=1)
    return chi2.sf(statistic, max(counts.shape[1] - 1, 1)) < significance


BOUND = 3.0
"""Standardised scores are softly bounded to ±BOUND before an adjustment is added: a heavy-tailed scorer (popularity:
a bestseller 6 standard deviations above the rest) must not outvote a season in which the item never sells. Chosen
on the July validation month of the synthetic history (docs/stages.md)."""


def add_log_lift(scores: np.ndarray, lift: np.ndarray, strength: float) -> np.ndarray:
    """`bounded` scores plus ``strength * log(lift)`` of their item; items beyond ``lift`` (added after training)
    get no lift; -inf stays -inf."""
    full = np.ones(scores.shape[1], np.float32)
    full[: len(lift)] = np.maximum(lift, 1e-6)
    return bounded(scores) + (strength * np.log(full)).astype(np.float32)


def bounded(scores: np.ndarray) -> np.ndarray:
    """`standardized` scores through ``BOUND * tanh(z / BOUND)``: the same order, z near 0 unchanged, tails within
    ±BOUND; -inf stays -inf."""
    z = standardized(scores)
    return np.where(np.isfinite(z), BOUND * np.tanh(z / BOUND), z).astype(scores.dtype)


def standardized(scores: np.ndarray) -> np.ndarray:
    """Each row's finite scores as z-scores over the row's finite entries (a constant row gives zeros); -inf stays."""
    finite = np.isfinite(scores)
    count = np.maximum(finite.sum(axis=1, keepdims=True), 1)
    mean = np.where(finite, scores, 0.0).sum(axis=1, keepdims=True) / count
    spread = np.sqrt(np.where(finite, (scores - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / count)
    return np.where(finite, (scores - mean) / np.maximum(spread, 1e-12), scores).astype(scores.dtype)
