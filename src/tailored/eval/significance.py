"""Paired significance tests between two systems' per-user metric values, and the shared user bootstrap."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from tailored.errors import DataError

MAX_RESAMPLE_ELEMENTS = 1 << 22  # bounds the memory of one chunk of resampled indices


def bootstrap_indices(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """``resamples`` draws of ``n`` positions with replacement, as ``(chunk, n)`` index blocks from one seeded stream."""
    rng = np.random.default_rng(seed)
    chunk = max(1, MAX_RESAMPLE_ELEMENTS // max(n, 1))
    for start in range(0, resamples, chunk):
        yield rng.integers(0, n, (min(chunk, resamples - start), n))


def resample_weights(indices: np.ndarray, n: int) -> np.ndarray:
    """How often each of ``n`` positions occurs in each resample (row) of ``indices``."""
    offsets = np.arange(len(indices))[:, None] * n
    return np.bincount((indices + offsets).ravel(), minlength=len(indices) * n).reshape(len(indices), n)


@dataclass(frozen=True)
class PairedTestResult:
    """A minus B over the same users: mean difference with a bootstrap CI, paired t-test and Wilcoxon p-values."""

    n_users: int
    mean_a: float
    mean_b: float
    mean_difference: float
    ci_low: float
    ci_high: float
    t_statistic: float
    t_pvalue: float
    wilcoxon_statistic: float
    wilcoxon_pvalue: float
    confidence: float = 0.95

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    def describe(self, name_a: str, name_b: str, metric: str) -> str:
        """One sentence: the difference, its interval and both p-values."""
        return (f"{name_a} - {name_b} on {metric} over the same {self.n_users} users: {self.mean_difference:+.4f} "
                f"({self.mean_a:.4f} vs {self.mean_b:.4f}; {self.confidence:.0%} bootstrap interval [{self.ci_low:+.4f}, "
                f"{self.ci_high:+.4f}]), paired t-test p = {self.t_pvalue:.3g}, Wilcoxon signed-rank p = "
                f"{self.wilcoxon_pvalue:.3g}.")


def paired_test(
    per_user_a: pd.Series | np.ndarray,
    per_user_b: pd.Series | np.ndarray,
    bootstrap: int = 1000,
    seed: int = 42,
    confidence: float = 0.95,
) -> PairedTestResult:
    """Compare two systems on the same users (Series are aligned on their user index; pairs with a NaN are dropped).

    Identical values for every user give p = 1 (both tests are undefined there).
    """
    a, b = _paired(per_user_a, per_user_b)
    difference = a - b
    ci_low, ci_high = np.nan, np.nan
    if bootstrap > 0:
        means = np.concatenate(
            [resample_weights(rows, len(a)) @ difference / len(a) for rows in bootstrap_indices(len(a), bootstrap, seed)]
        )
        ci_low, ci_high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    if np.all(difference == 0):
        t_statistic, t_pvalue, w_statistic, w_pvalue = 0.0, 1.0, 0.0, 1.0
    else:
        from scipy import stats  # imported here: scipy.stats costs half a second at start-up

        t_statistic, t_pvalue = stats.ttest_rel(a, b)
        w_statistic, w_pvalue = stats.wilcoxon(a, b)
    return PairedTestResult(
        n_users=len(a),
        mean_a=float(a.mean()),
        mean_b=float(b.mean()),
        mean_difference=float(difference.mean()),
        ci_low=float(ci_low),
        ci_high=float(ci_high),
        t_statistic=float(t_statistic),
        t_pvalue=float(t_pvalue),
        wilcoxon_statistic=float(w_statistic),
        wilcoxon_pvalue=float(w_pvalue),
        confidence=confidence,
    )


def _paired(a: pd.Series | np.ndarray, b: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        only = a.index.symmetric_difference(b.index)
        if len(only):
            raise DataError(
                f"A paired test needs the same users on both sides; {len(only)} users are on one side only, "
                f"e.g. {only[:3].tolist()}. Evaluate both systems on the same split."
            )
        b = b.reindex(a.index)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise DataError(f"A paired test needs two 1-d arrays of equal length; got shapes {a.shape} and {b.shape}.")
    both = ~(np.isnan(a) | np.isnan(b))
    if both.sum() < 2:
        raise DataError(f"A paired test needs at least 2 users with values on both sides; got {both.sum()}.")
    return a[both], b[both]
