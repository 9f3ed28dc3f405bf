"""How one metric is reduced over a set of users (all of them, a segment, a bootstrap resample): pooled sums of
per-user numerators and denominators, or a catalogue metric recomputed on the set's lists."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from tailored.eval.metrics import Metric, RankedLists, RatingMetric
from tailored.eval.significance import percentile_bootstrap


class Measure(Protocol):
    name: str

    def value(self, rows: np.ndarray) -> float: ...


@dataclass(frozen=True, eq=False)
class Pooled:
    """``finish(sum numerator / sum denominator)`` over users: per-user means and rating losses."""

    name: str
    numerator: np.ndarray
    denominator: np.ndarray
    finish: Callable[[np.ndarray], np.ndarray] = np.asarray
    user_values: np.ndarray | None = None

    @classmethod
    def per_user(cls, name: str, values: np.ndarray) -> Pooled:
        """Mean of per-user values, over the users where the value is defined (not NaN)."""
        defined = ~np.isnan(values)
        return cls(name, np.where(defined, values, 0.0), defined.astype(np.float64), user_values=values)

    def value(self, rows: np.ndarray) -> float:
        return float(self.finish(self.numerator[rows].sum() / self.denominator[rows].sum()))


@dataclass(frozen=True, eq=False)
class Catalogue:
    """A metric of the whole set of lists (coverage, Gini), recomputed on each set of users (segments).

    No bootstrap interval: a resample holds about 63% distinct users, so coverage and Gini of resampled lists are
    biased (the interval would not even contain the value); the report leaves their CI empty (NaN).
    """

    name: str
    metric: Metric
    lists: RankedLists

    def value(self, rows: np.ndarray) -> float:
        return float(self.metric(self.lists.subset(rows)))


def ranking_measures(metrics: Sequence[Metric], lists: RankedLists, suffix: str = "") -> list[Measure]:
    """Per-user metrics pooled as means, catalogue metrics recomputed on each set's lists; names end in ``suffix``."""
    return [Pooled.per_user(m.name + suffix, np.asarray(m(lists), np.float64)) if m.per_user
            else Catalogue(m.name + suffix, m, lists) for m in metrics]


def rating_measures(metrics: Sequence[RatingMetric], rows: np.ndarray, errors: np.ndarray,
                    n_users: int) -> list[Measure]:
    """Each rating metric as its users' summed losses over their pair counts (``rows``: the user of each error)."""
    counts = np.bincount(rows, minlength=n_users).astype(np.float64)
    return [Pooled(m.name, np.bincount(rows, weights=m.loss(errors), minlength=n_users), counts, m.finish)
            for m in metrics]


def intervals(measures: list[Pooled], bootstrap: int, seed: int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap intervals of pooled measures, all on the same resamples of users: each sums its
    numerators and denominators over the drawn users (a user drawn twice counts twice)."""
    numerators = np.column_stack([m.numerator for m in measures])
    denominators = np.column_stack([m.denominator for m in measures])

    def pooled(counts: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios = (counts @ numerators) / (counts @ denominators)
        return np.stack([m.finish(ratio) for m, ratio in zip(measures, ratios.T, strict=True)])

    return percentile_bootstrap(len(numerators), pooled, bootstrap, seed, confidence)
