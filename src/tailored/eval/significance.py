"""Paired significance tests between two systems' per-user metric values, and the percentile bootstrap over users
that gives them and the evaluator's metrics their intervals."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from tailored.errors import DataError

MAX_RESAMPLE_ELEMENTS = 1 << 22  # bounds the memory of one batch of resampled values


def percentile_bootstrap(
    users: int,
    statistic: Callable[[np.ndarray], np.ndarray],
    resamples: int,
    seed: int,
    confidence: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The percentile bootstrap interval over ``users`` by `scipy.stats.bootstrap` (``default_rng(seed)`` draws the
    users of each resample). ``statistic(counts)`` gives a value per resample (or one row of them per metric) from the
    ``(resamples, users)`` counts of how often each user was drawn: one matrix product for every metric, instead of
    gathering each metric's values per draw. NaN where a resample's value is NaN (scipy then warns of BCa, which is
    not used: silenced)."""
    from scipy import stats  # imported here: scipy.stats costs half a second at start-up

    def drawn(positions: np.ndarray, axis: int = -1) -> np.ndarray:
        if positions.ndim == 1:  # scipy's value on the whole sample: every user once
            return statistic(np.ones((1, users), np.int64))[..., 0]
        offsets = np.arange(len(positions))[:, None] * users
        counts = np.bincount((positions + offsets).ravel(), minlength=positions.size).reshape(positions.shape)
        return statistic(counts)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap((np.arange(users),), drawn, n_resamples=resamples, vectorized=True, axis=-1,
                                 batch=max(1, MAX_RESAMPLE_ELEMENTS // users), confidence_level=confidence,
                                 method="percentile", rng=np.random.default_rng(seed))
    return result.confidence_interval.low, result.confidence_interval.high


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
                f"({self.mean_a:.4f} vs {self.mean_b:.4f}; {self.confidence:.0%} bootstrap interval "
                f"[{self.ci_low:+.4f}, {self.ci_high:+.4f}]), paired t-test p = {self.t_pvalue:.3g}, "
                f"Wilcoxon signed-rank p = {self.wilcoxon_pvalue:.3g}.")


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
        ci_low, ci_high = percentile_bootstrap(len(a), lambda counts: counts @ difference / len(a), bootstrap, seed,
                                               confidence)
    if np.all(difference == 0):
        t_statistic, t_pvalue, w_statistic, w_pvalue = 0.0, 1.0, 0.0, 1.0
    else:
        from scipy import stats

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
