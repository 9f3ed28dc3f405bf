"""Off-policy estimators for ranked lists: what a target policy would have earned per list, from the logs of another.

A logged row is one shown position of one list: the item, its position p (1 = top), the logging policy's exact
probability pi0(item at p | candidates) and the reward (click, purchase or revenue). Under the position-based model
the expected reward of a list is a sum over positions, so each estimator is a mean over lists of a sum over rows
(``w = pi(item at p) / pi0(item at p)``, ``q`` a reward model):

- ``ips``   item-position IPS (Li et al. 2018):      mean_l sum_p r w
- ``snips`` self-normalised per position:            sum_p (n_p / n) * sum_l r w / sum_l w   (rows at position p)
- ``dm``    direct method:                           mean_l sum_p sum_c pi(c at p) q(c, p)
- ``dr``    doubly robust (Dudik et al. 2011):       dm + mean_l sum_p w (r - q(item, p))
- ``pi``    slate pseudo-inverse (Swaminathan et al. 2017), for a whole-list reward R_l = sum_p r:
            mean_l R_l (sum_p w - (K_l - 1)); exact when the logging policy fills positions independently.

Relation to Open Bandit Pipeline (which averages per logged row): ips, dm and dr here equal (rows / lists) x obp's
(``len_list`` x obp's for lists of a fixed length); snips equals sum_p (n_p / n) x obp's SNIPW on the rows of
position p. Intervals are percentile bootstrap intervals over lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tailored.errors import ConfigError, DataError

ESTIMATORS = ("ips", "snips", "dm", "dr", "pi")
"""Every estimator, in the order reports list them."""
MODEL_ESTIMATORS = ("dm", "dr")
"""The estimators that need a reward model (``predicted`` and ``expected``)."""
REWARDS = ("click", "purchase", "revenue")
MIN_ESS = 10.0
MIN_ESS_FRACTION = 0.01
"""An effective sample size below MIN_ESS or below this fraction of the rows (lists for ``pi``) is warned about."""
_BOOTSTRAP_CELLS = 20_000_000
"""Resample counts drawn at once (resamples x lists), to bound memory."""
_SHOWN_ROWS = 5


@dataclass(frozen=True, eq=False)
class SlateLog:
    """Logged rows (one per shown position) with the target policy's probabilities, as arrays of one length.

    ``lists`` says which list each row belongs to (any integers; rows of a list share it), ``positions`` are 1-based,
    ``logging`` = pi0(logged item at p), ``target`` = pi(logged item at p). For dm/dr: ``predicted`` = q(logged item,
    p) and ``expected`` = sum_c pi(c at p) q(c, p), the target's modelled reward at the row's (list, position)."""

    lists: np.ndarray
    positions: np.ndarray
    rewards: np.ndarray
    logging: np.ndarray
    target: np.ndarray
    predicted: np.ndarray | None = None
    expected: np.ndarray | None = None

    def __post_init__(self) -> None:
        rows = len(self.lists)
        arrays = {"lists": self.lists, "positions": self.positions, "rewards": self.rewards,
                  "logging": self.logging, "target": self.target, "predicted": self.predicted,
                  "expected": self.expected}
        for name, values in arrays.items():
            if values is not None and np.shape(values) != (rows,):
                raise DataError(f"SlateLog.{name} has shape {np.shape(values)}; every array needs shape ({rows},).")
        if rows == 0:
            raise DataError("The log has no rows: nothing to estimate from.")
        for name in ("rewards", "logging", "target", "predicted", "expected"):
            values = arrays[name]
            if values is not None:
                _check(~np.isfinite(values), name, "values that are NaN or infinite")
        _check((self.logging <= 0) | (self.logging > 1), "logging", "logging propensities outside (0, 1]")
        _check((self.target < 0) | (self.target > 1), "target", "target probabilities outside [0, 1]")
        _check(self.positions < 1, "positions", "positions below 1 (position 1 is the top)")


def _check(bad: np.ndarray, name: str, problem: str) -> None:
    rows = np.flatnonzero(bad)
    if len(rows):
        shown = ", ".join(map(str, rows[:_SHOWN_ROWS])) + (", ..." if len(rows) > _SHOWN_ROWS else "")
        raise DataError(f"SlateLog.{name} has {len(rows)} {problem} (rows {shown}, counting from 0).")


@dataclass(frozen=True)
class Estimate:
    """One estimator's value (expected reward per list), its percentile bootstrap interval and its effective sample
    size (Kish's (sum w)^2 / sum w^2 over its weights: rows for ips/snips/dr, lists for pi; None for dm)."""

    value: float
    low: float
    high: float
    ess: float | None


@dataclass(frozen=True)
class OffPolicyReport:
    """The estimates of one target policy from one log: ``n`` lists of ``rows`` shown positions, the logging
    policy's own mean reward per list, and warnings (support, effective sample size)."""

    n: int
    rows: int
    logged_value: float
    estimates: dict[str, Estimate]
    warnings: list[str] = field(default_factory=list)


@dataclass(eq=False)
class PositionBasedRewards:
    """Reward model of the direct method and doubly robust: E[r | item i at position p] = theta_p * gamma_i (the
    position-based model; Chuklin et al. 2015), fitted by alternating closed-form Poisson maximum likelihood (for
    clicks, purchases and revenue alike), theta_1 = 1. ``prior`` pseudo-examinations shrink each gamma_i towards the
    mean reward; items never logged get that mean."""

    prior: float = 10.0
    iterations: int = 100
    tolerance: float = 1e-10
    theta_: np.ndarray = field(init=False, repr=False)
    gamma_: np.ndarray = field(init=False, repr=False)
    mean_: float = field(init=False, repr=False)

    def fit(self, items: np.ndarray, positions: np.ndarray, rewards: np.ndarray, n_items: int) -> PositionBasedRewards:
        """Fit on logged rows: ``items`` are codes in [0, n_items), ``positions`` 1-based."""
        depth = int(positions.max())
        slots = positions - 1
        shown_at = np.bincount(slots, minlength=depth).astype(np.float64)
        earned_at = np.bincount(slots, rewards, minlength=depth)
        earned_by = np.bincount(items, rewards, minlength=n_items)
        theta = np.ones(depth)
        mean = float(rewards.sum() / len(rewards))
        gamma = np.full(n_items, mean)
        for _ in range(self.iterations):
            examined = np.bincount(items, theta[slots], minlength=n_items)
            mean = float(earned_by.sum() / examined.sum())
            gamma = (earned_by + self.prior * mean) / (examined + self.prior)
            attraction = np.bincount(slots, gamma[items], minlength=depth)
            updated = np.divide(earned_at, attraction, out=np.zeros(depth), where=attraction > 0)
            updated = updated / updated[0] if updated[0] > 0 else np.where(shown_at > 0, 1.0, 0.0)
            change = float(np.abs(updated - theta).max())
            theta = updated
            if change < self.tolerance:
                break
        self.theta_, self.gamma_, self.mean_ = theta, gamma, mean
        return self

    def attraction(self, items: np.ndarray) -> np.ndarray:
        """gamma of item codes; codes outside the fitted range (items never logged) get the mean."""
        known = (items >= 0) & (items < len(self.gamma_))
        return np.where(known, self.gamma_[np.where(known, items, 0)], self.mean_)

    def examination(self, positions: np.ndarray) -> np.ndarray:
        """theta of 1-based positions; positions deeper than any logged one get the deepest logged theta."""
        return self.theta_[np.minimum(positions, len(self.theta_)) - 1]

    def predict(self, items: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """q(item, position) row by row."""
        return self.examination(positions) * self.attraction(items)

    def expected(self, marginals: np.ndarray, items: np.ndarray) -> np.ndarray:
        """sum_c pi(c at p) q(c, p) for each position p of one list: ``marginals`` (candidates, k), ``items`` the
        candidates' codes."""
        return self.examination(np.arange(1, marginals.shape[1] + 1)) * (self.attraction(items) @ marginals)


def estimate(
    log: SlateLog,
    estimators: tuple[str, ...] | list[str] = ESTIMATORS,
    samples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> OffPolicyReport:
    """The target policy's expected reward per list by each of ``estimators``, with percentile bootstrap intervals
    over lists (``samples`` resamples, seeded), effective sample sizes and warnings."""
    unknown = sorted(set(estimators) - set(ESTIMATORS))
    if unknown:
        raise ConfigError(f"Unknown estimator(s) {', '.join(unknown)}; valid: {', '.join(ESTIMATORS)}.")
    needs_model = [name for name in estimators if name in MODEL_ESTIMATORS]
    if needs_model and (log.predicted is None or log.expected is None):
        raise ConfigError(f"{', '.join(needs_model)} need a reward model: give SlateLog.predicted and .expected.")
    if samples < 1 or not 0 < level < 1:
        raise ConfigError(f"samples={samples} must be >= 1 and level={level} in (0, 1).")
    statistics = _list_statistics(log)
    n, rows = statistics.n, len(log.lists)
    values = {name: float(_value(name, statistics.matrix.mean(axis=0), statistics)) for name in estimators}
    replicates = _bootstrap(statistics, estimators, samples, seed)
    tail = (1 - level) / 2
    weights = log.target / log.logging
    estimates: dict[str, Estimate] = {}
    for name in estimators:
        low, high = np.quantile(replicates[name], [tail, 1 - tail])
        ess = None if name == "dm" else _kish(statistics.slate_weights if name == "pi" else weights)
        estimates[name] = Estimate(values[name], float(low), float(high), ess)
    warnings = _support_warnings(log, weights, replicates["weight"], level) + _ess_warnings(estimates, n, rows)
    return OffPolicyReport(n, rows, float(statistics.matrix[:, statistics.logged].mean()), estimates, warnings)


@dataclass(frozen=True, eq=False)
class _Statistics:
    """Per-list sums whose column means determine every estimate (so a resample of lists is a weighted mean)."""

    matrix: np.ndarray
    depth: int
    slate_weights: np.ndarray

    @property
    def n(self) -> int:
        return self.matrix.shape[0]

    # column layout: [ips, dm, dr, pi, logged, weight, numerator_1..K, denominator_1..K, shown_1..K]
    ips, dm, dr, pi, logged, weight = range(6)

    def block(self, part: int) -> slice:
        start = 6 + part * self.depth
        return slice(start, start + self.depth)


def _list_statistics(log: SlateLog) -> _Statistics:
    lists = pd.factorize(log.lists)[0]
    n, depth = int(lists.max()) + 1, int(log.positions.max())
    slots = log.positions.astype(np.int64) - 1
    cell = lists * depth + slots
    if np.bincount(cell, minlength=n * depth).max() > 1:
        order = np.argsort(cell, kind="stable")
        twice = order[1:][np.diff(cell[order]) == 0]
        raise DataError(f"{len(twice)} logged rows repeat a (list, position) of an earlier row (rows "
                        f"{', '.join(map(str, np.sort(twice)[:_SHOWN_ROWS]))}, counting from 0): each position of a "
                        "list is logged once.")
    weights = log.target / log.logging
    rewards = log.rewards.astype(np.float64)
    matrix = np.zeros((n, 6 + 3 * depth))

    def per_list(values: np.ndarray) -> np.ndarray:
        return np.bincount(lists, values, minlength=n)

    matrix[:, _Statistics.ips] = per_list(rewards * weights)
    if log.expected is not None and log.predicted is not None:
        matrix[:, _Statistics.dm] = per_list(log.expected)
        matrix[:, _Statistics.dr] = matrix[:, _Statistics.dm] + per_list(weights * (rewards - log.predicted))
    length = np.bincount(lists, minlength=n)
    slate_weights = per_list(weights) - (length - 1)
    matrix[:, _Statistics.logged] = per_list(rewards)
    matrix[:, _Statistics.pi] = matrix[:, _Statistics.logged] * slate_weights
    matrix[:, _Statistics.weight] = per_list(weights) / length
    statistics = _Statistics(matrix, depth, slate_weights)
    for part, values in enumerate((rewards * weights, weights, np.ones(len(weights)))):
        block = matrix[:, statistics.block(part)]
        block[lists, slots] = values
    return statistics


def _value(name: str, means: np.ndarray, statistics: _Statistics) -> float:
    """An estimator from column means of the per-list statistics (``means`` may be (resamples, columns))."""
    if name != "snips":
        return means[..., getattr(_Statistics, name)]
    numerator, denominator, shown = (means[..., statistics.block(part)] for part in range(3))
    ratio = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
    return (shown * ratio).sum(axis=-1)


def _bootstrap(statistics: _Statistics, estimators: tuple[str, ...] | list[str], samples: int,
               seed: int) -> dict[str, np.ndarray]:
    """Each estimator (and the mean weight) on ``samples`` resamples of the lists with replacement."""
    rng = np.random.default_rng(seed)
    n = statistics.n
    chunk = max(1, min(samples, _BOOTSTRAP_CELLS // n))
    means = np.empty((samples, statistics.matrix.shape[1]))
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        drawn = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        counts = np.bincount(drawn.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)
        means[start:start + size] = (statistics.matrix.T @ counts.T).T / n  # faster in OpenBLAS than counts @ matrix
    replicates = {name: np.asarray(_value(name, means, statistics)) for name in estimators}
    replicates["weight"] = means[:, _Statistics.weight]
    return replicates


def _kish(weights: np.ndarray) -> float:
    squares = float(np.square(weights).sum())
    return float(weights.sum()) ** 2 / squares if squares > 0 else 0.0


def _support_warnings(log: SlateLog, weights: np.ndarray, mean_weights: np.ndarray, level: float) -> list[str]:
    warnings = []
    certain = (log.logging >= 1.0) & (log.target < 1.0)
    if certain.any():
        mass = float((1.0 - log.target[certain]).sum())
        warnings.append(
            f"support: {int(certain.sum())} rows were logged with propensity 1 (the logging policy could show no "
            f"other item there) where the target shows another item with total probability {mass:.4g}: that part of "
            "the target is outside the logging policy's support and no estimator but dm sees it.")
    mean, high = float(weights.mean()), float(np.quantile(mean_weights, 1 - (1 - level) / 2))
    if high < 1.0:
        warnings.append(
            f"support: the mean importance weight is {mean:.4g} (upper {level:.0%} bound {high:.4g}), below 1: the "
            f"target puts about {1 - mean:.0%} of its probability on items or positions the logging policy does not "
            "show, so ips, snips, dr and pi miss that part of its value.")
    if (log.target == 0).all():
        warnings.append("support: the target gives probability 0 to every logged (item, position): the log says "
                        "nothing about it; ips, snips, dr and pi estimate 0.")
    return warnings


def _ess_warnings(estimates: dict[str, Estimate], n: int, rows: int) -> list[str]:
    warnings = []
    for name, found in estimates.items():
        if found.ess is None:
            continue
        units, total = ("lists", n) if name == "pi" else ("rows", rows)
        if found.ess < max(MIN_ESS, MIN_ESS_FRACTION * total):
            warnings.append(f"ess: {name}'s effective sample size is {found.ess:.1f} of {total} {units}: a few "
                            "heavily weighted rows decide it; its interval is unreliable.")
    return warnings
