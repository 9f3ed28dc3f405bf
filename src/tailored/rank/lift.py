"""Periodic lifts shared by the time stages: how much more (or less) an item sells in one bucket of a cycle (week of
the year, hour of the week) than the catalogue does, and the score adjustment that applies it."""

from __future__ import annotations

import numpy as np


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
    """Each row's finite scores standardised (z-scores), plus ``strength * log(lift)`` of their item; items beyond
    ``lift`` (added after training) get no lift; -inf stays -inf."""
    full = np.ones(scores.shape[1], np.float32)
    full[: len(lift)] = np.maximum(lift, 1e-6)
    finite = np.isfinite(scores)
    count = np.maximum(finite.sum(axis=1, keepdims=True), 1)
    mean = np.where(finite, scores, 0.0).sum(axis=1, keepdims=True) / count
    spread = np.sqrt(np.where(finite, (scores - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / count)
    rows, columns = np.nonzero(finite)
    adjusted = scores.copy()
    adjusted[rows, columns] = (scores[rows, columns] - mean[rows, 0]) / np.maximum(spread[rows, 0], 1e-12) \
        + strength * np.log(full[columns])
    return adjusted
