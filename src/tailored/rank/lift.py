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


HOLDOUT = 0.2
"""The latest share of the interactions on which learned profiles must predict better than the catalogue's curve."""


def learn_lift(dataset: Dataset, buckets: Buckets, n_buckets: int, prior: float, smoothing: int,
               min_history_days: float, min_gain: float) -> np.ndarray:
    """`periodic_lift` of the dataset's interactions; empty (no lift) without timestamps, with a history shorter than
    ``min_history_days`` (too short to show the cycle), or when the items' profiles do not predict when they are
    taken: profiles learned on all but the latest ``HOLDOUT`` of the interactions must raise the log-likelihood of
    the held-out interactions' buckets by more than ``min_gain`` nats over the catalogue's curve. Rating sessions at
    odd hours (MovieLens: -0.04) fail; breakfast in the morning and foie gras at Christmas pass (+0.08 to +0.25),
    even for items with a dozen sales."""
    timestamps = dataset.timestamps
    if timestamps is None or len(timestamps) == 0 or np.ptp(timestamps) < min_history_days * DAY:
        return np.ones((0, n_buckets), np.float32)
    seconds = np.asarray(timestamps, np.int64)
    cells = buckets(seconds)
    early = seconds < np.quantile(seconds, 1 - HOLDOUT)
    lift = periodic_lift(dataset.item_index[early], cells[early], dataset.n_items, n_buckets, prior, smoothing)
    gain = float(np.mean(np.log(np.maximum(lift[dataset.item_index[~early], cells[~early]], 1e-6)))) if (~early).any() else 0.0
    if gain <= min_gain:
        return np.ones((0, n_buckets), np.float32)
    return periodic_lift(dataset.item_index, cells, dataset.n_items, n_buckets, prior, smoothing)


def apply_lift(scores: np.ndarray, lift: np.ndarray, buckets: Buckets, context: Context, strength: float) -> np.ndarray:
    """`add_log_lift` for the bucket of the request's moment; scores unchanged when nothing was learned or the
    request has no moment."""
    if len(lift) == 0 or context.moment is None:
        return scores
    bucket = request_bucket(buckets, context)
    return add_log_lift(scores, lift[:, bucket], strength)


def request_bucket(buckets: Buckets, context: Context) -> int:
    """The bucket of the request's moment."""
    return int(buckets(np.array([int(context.when().timestamp())]))[0])


def lift_reasons(items: np.ndarray, lift: np.ndarray, buckets: Buckets, context: Context, rising: str, falling: str,
                 threshold: float = 1.5) -> np.ndarray:
    """``"<rising> x2.4"`` / ``"<falling> x0.3"`` for listed items whose lift in the request's bucket is at least
    ``threshold`` (or at most its inverse); "" otherwise."""
    reasons = np.full(items.shape, "", dtype=object)
    if len(lift) == 0 or context.moment is None:
        return reasons
    bucket = request_bucket(buckets, context)
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
