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
from scipy import sparse

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
_REFIT_CELLS = 4_000_000
"""(position, item) cells x resamples refitted at once, to bound memory."""
_REFIT_TOLERANCE = 1e-6
"""The refits of a resample (warm-started at the whole log's fit) and of a cross-validation fold stop when no theta
moves more than this (far below their spread)."""


@dataclass(frozen=True, eq=False)
class SlateLog:
    """Logged rows (one per shown position) with the target policy's probabilities, as arrays of one length.

    ``lists`` says which list each row belongs to (any integers; rows of a list share it), ``positions`` are 1-based,
    ``logging`` = pi0(logged item at p), ``target`` = pi(logged item at p). For dm/dr: ``predicted`` = q(logged item,
    p) and ``expected`` = sum_c pi(c at p) q(c, p), the target's modelled reward at the row's (list, position);
    with ``refit`` the bootstrap refits that reward model on every resample, else it holds it fixed."""

    lists: np.ndarray
    positions: np.ndarray
    rewards: np.ndarray
    logging: np.ndarray
    target: np.ndarray
    predicted: np.ndarray | None = None
    expected: np.ndarray | None = None
    refit: RewardRefit | None = None

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
        if self.refit is not None:
            self.refit.check(rows, int(self.positions.max()))


@dataclass(frozen=True, eq=False)
class RewardRefit:
    """What lets dm and dr refit their reward model on every bootstrap resample, so that their intervals hold the
    model's own error: the `PositionBasedRewards` fitted on the whole log (its shrinkage is kept), each row's item
    code in [0, len(model.gamma_)) and ``target_mass`` (depth x (items + 1)): at [p - 1, i] the sum over the log's
    rows at position p of the target's probability of item i at p in that row's list; the last column is the mass on
    items the log never shows (the model gives them its mean)."""

    model: PositionBasedRewards
    items: np.ndarray
    target_mass: np.ndarray

    def check(self, rows: int, depth: int) -> None:
        """Refuse arrays that do not fit a log of ``rows`` rows and ``depth`` positions."""
        known = len(self.model.gamma_)
        if np.shape(self.items) != (rows,):
            raise DataError(f"RewardRefit.items has shape {np.shape(self.items)}; it needs ({rows},), one per row.")
        if np.shape(self.target_mass) != (depth, known + 1):
            raise DataError(f"RewardRefit.target_mass has shape {np.shape(self.target_mass)}; it needs ({depth}, "
                            f"{known + 1}): the log's positions x the model's items and one column for the rest.")
        _check((self.items < 0) | (self.items >= known), "refit.items", f"item codes outside [0, {known})")
        if len(self.model.theta_) != depth:
            raise DataError(f"RewardRefit.model was fitted on {len(self.model.theta_)} positions, the log has "
                            f"{depth}: fit it on the same log.")


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
    clicks, purchases and revenue alike), theta_1 = 1. Hierarchical shrinkage: ``prior`` pseudo-examinations pull
    each gamma_i towards the mean reward per examination (items never logged get that mean) and
    ``position_prior`` pseudo-rows pull each theta_p towards the pooled value (no position effect). `select` picks
    both by cross-validated log-loss on the log."""

    prior: float = 10.0
    position_prior: float = 0.0
    iterations: int = 100
    tolerance: float = 1e-10
    theta_: np.ndarray = field(init=False, repr=False)
    gamma_: np.ndarray = field(init=False, repr=False)
    mean_: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("prior", "position_prior"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"PositionBasedRewards.{name}={getattr(self, name)} must be >= 0.")

    def fit(self, items: np.ndarray, positions: np.ndarray, rewards: np.ndarray, n_items: int) -> PositionBasedRewards:
        """Fit on logged rows: ``items`` are codes in [0, n_items), ``positions`` 1-based."""
        cells = _Cells.of(items, positions, n_items)
        theta, gamma, mean = self._fit_cells(cells.shown()[None], cells.earned(rewards)[None])
        self.theta_, self.gamma_, self.mean_ = theta[0], gamma[0], float(mean[0])
        return self

    @classmethod
    def select(cls, items: np.ndarray, positions: np.ndarray, rewards: np.ndarray, n_items: int,
               lists: np.ndarray, weights: np.ndarray | None = None, folds: int = 5,
               seed: int = 0) -> PositionBasedRewards:
        """The model whose (prior, position_prior) on `SHRINKAGE_GRID` has the smallest ``folds``-fold
        cross-validated loss on the log (folds of whole lists, ``lists`` = each row's list code in [0, lists);
        Bernoulli log-loss for 0/1 rewards, Poisson deviance otherwise), refitted on the whole log. With
        ``weights`` (pi / pi0 per row) the held-out loss is importance-weighted (Sugiyama et al. 2007): the loss on
        the rows the target would show, which is what dm needs. Reads the log only."""
        cells = _Cells.of(items, positions, n_items)
        fold_of_list = np.random.default_rng(seed).permutation(int(lists.max()) + 1) % folds
        held = [fold_of_list[lists] == fold for fold in range(folds)]
        train_shown = np.stack([cells.shown(~rows) for rows in held])
        train_earned = np.stack([cells.earned(rewards, ~rows) for rows in held])
        weights = np.ones(len(rewards)) if weights is None else weights
        held_shown = np.stack([cells.shown(rows * weights) for rows in held])
        held_earned = np.stack([cells.earned(rewards, rows * weights) for rows in held])
        binary = bool(np.isin(rewards, (0.0, 1.0)).all())
        best, best_loss = SHRINKAGE_GRID[0], np.inf
        for prior, position_prior in SHRINKAGE_GRID:
            theta, gamma, _ = cls(prior, position_prior)._fit_cells(train_shown, train_earned,
                                                                    tolerance=_REFIT_TOLERANCE)
            predicted = theta[:, :, None] * gamma[:, None, :]
            loss = float(_held_out_loss(predicted, held_shown, held_earned, binary))
            if loss < best_loss:
                best, best_loss = (prior, position_prior), loss
        return cls(*best).fit(items, positions, rewards, n_items)

    def _fit_cells(self, shown: np.ndarray, earned: np.ndarray, theta: np.ndarray | None = None,
                   tolerance: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(theta, gamma, mean) fitted on each batch of ``shown`` and ``earned`` (batches x depth x items: rows
        shown and reward earned per (position, item) cell), from ``theta`` (batches x depth) or flat."""
        batches, depth, _ = shown.shape
        earned_by, earned_at = earned.sum(axis=1), earned.sum(axis=2)
        rows_at = shown.sum(axis=2)
        theta = np.ones((batches, depth)) if theta is None else theta.copy()
        first = np.where(rows_at > 0, 1.0, 0.0)
        tolerance = self.tolerance if tolerance is None else tolerance
        for _ in range(self.iterations):
            examined = (theta[:, None, :] @ shown)[:, 0]
            total = examined.sum(axis=1)
            mean = np.divide(earned_by.sum(axis=1), total, out=np.zeros(batches), where=total > 0)
            gamma = (earned_by + self.prior * mean[:, None]) / np.maximum(examined + self.prior, 1e-300)
            attraction = (shown @ gamma[:, :, None])[:, :, 0]
            per_row = attraction.sum(axis=1) / np.maximum(rows_at.sum(axis=1), 1.0)
            pooled = np.divide(earned_at.sum(axis=1), attraction.sum(axis=1), out=np.ones(batches),
                               where=attraction.sum(axis=1) > 0)
            weight = (self.position_prior * per_row)[:, None]
            denominator = attraction + weight
            updated = np.divide(earned_at + weight * pooled[:, None], denominator, out=np.zeros_like(attraction),
                                where=denominator > 0)
            top = updated[:, :1]
            updated = np.where(top > 0, updated / np.where(top > 0, top, 1.0), first)
            change = float(np.abs(updated - theta).max())
            theta = updated
            if change < tolerance:
                break
        return theta, gamma, mean

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


SHRINKAGE_GRID = tuple((prior, position_prior) for prior in 10.0 ** np.arange(0, 7)
                       for position_prior in (0.0, *10.0 ** np.arange(1, 7)))
"""(prior, position_prior) pairs `PositionBasedRewards.select` chooses among."""


def _held_out_loss(predicted: np.ndarray, shown: np.ndarray, earned: np.ndarray, binary: bool) -> float:
    """Held-out loss of per-cell predictions: Bernoulli log-loss (0/1 rewards) or Poisson deviance up to a constant."""
    if binary:
        q = np.clip(predicted, 1e-9, 1 - 1e-9)
        return float(-(earned * np.log(q) + (shown - earned) * np.log1p(-q)).sum())
    q = np.maximum(predicted, 1e-12)
    return float((shown * q - earned * np.log(q)).sum())


@dataclass(frozen=True, eq=False)
class _Cells:
    """Logged rows gathered into (position, item) cells: per row its cell ``slot * n_items + item``."""

    of_row: np.ndarray
    depth: int
    n_items: int

    @classmethod
    def of(cls, items: np.ndarray, positions: np.ndarray, n_items: int) -> _Cells:
        depth = int(positions.max())
        return cls((positions.astype(np.int64) - 1) * n_items + items, depth, n_items)

    def shown(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Rows per cell (of the rows where ``rows`` is true), depth x items."""
        weights = None if rows is None else rows.astype(np.float64)
        return self._grid(np.bincount(self.of_row, weights, minlength=self.depth * self.n_items))

    def earned(self, rewards: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Reward per cell (of the rows where ``rows`` is true), depth x items."""
        return self._grid(np.bincount(self.of_row, rewards if rows is None else rewards * rows,
                                      minlength=self.depth * self.n_items))

    def _grid(self, totals: np.ndarray) -> np.ndarray:
        return totals.astype(np.float64).reshape(self.depth, self.n_items)


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
    refit = _Refit(log, n) if log.refit is not None and needs_model else None
    replicates = _bootstrap(statistics, estimators, samples, seed, refit)
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
               seed: int, refit: _Refit | None) -> dict[str, np.ndarray]:
    """Each estimator (and the mean weight) on ``samples`` resamples of the lists with replacement; with ``refit``
    dm and dr move by their reward model's change when it is refitted on the resample."""
    rng = np.random.default_rng(seed)
    n = statistics.n
    chunk = max(1, min(samples, _BOOTSTRAP_CELLS // n))
    means = np.empty((samples, statistics.matrix.shape[1]))
    shifts = np.zeros((samples, 2))
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        drawn = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        counts = np.bincount(drawn.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)
        means[start:start + size] = (statistics.matrix.T @ counts.T).T / n  # faster in OpenBLAS than counts @ matrix
        if refit is not None:
            shifts[start:start + size] = refit.shifts(counts)
    replicates = {name: np.asarray(_value(name, means, statistics)) for name in estimators}
    for column, name in enumerate(MODEL_ESTIMATORS):
        if name in replicates:
            replicates[name] = replicates[name] + shifts[:, column]
    replicates["weight"] = means[:, _Statistics.weight]
    return replicates


class _Refit:
    """dm's and dr's change on a resample when their reward model is refitted on it (warm-started at the whole log's
    fit): the model's change is carried through the whole log's target mass and weights, to first order in the
    resample (the cross term of model change x list resampling, O(1/n), is left out)."""

    def __init__(self, log: SlateLog, n: int) -> None:
        refit = log.refit
        assert refit is not None
        self.model = refit.model
        lists = pd.factorize(log.lists)[0]
        cells = _Cells.of(refit.items, log.positions, len(refit.model.gamma_))
        self.grid = (cells.depth, cells.n_items)
        shape = (cells.depth * cells.n_items, n)
        self.shown = sparse.csr_matrix((np.ones(len(lists)), (cells.of_row, lists)), shape=shape)
        paid = np.flatnonzero(log.rewards)
        self.earned = sparse.csr_matrix((log.rewards[paid].astype(np.float64), (cells.of_row[paid], lists[paid])),
                                        shape=shape)
        self.batch = max(1, _REFIT_CELLS // shape[0])
        depth, width = refit.target_mass.shape
        weighted = np.bincount((log.positions - 1) * width + refit.items, log.target / log.logging,
                               minlength=depth * width).reshape(depth, width)
        self.dm_mass, self.dr_mass = refit.target_mass / n, (refit.target_mass - weighted) / n
        theta, gamma = self.model.theta_[None], self.model.gamma_[None]
        self.base = self._values(theta, gamma, np.array([self.model.mean_]))

    def _values(self, theta: np.ndarray, gamma: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """(batches x 2): sum_p,i theta_p gamma_i mass[p, i] for dm's and dr's mass."""
        extended = np.hstack([gamma, mean[:, None]])
        return np.stack([((theta @ mass) * extended).sum(axis=1) for mass in (self.dm_mass, self.dr_mass)], axis=1)

    def shifts(self, counts: np.ndarray) -> np.ndarray:
        """(resamples x 2): dm's and dr's change under the model refitted on each resample (``counts``: resamples x
        lists, how often each list is drawn)."""
        moved = np.empty((len(counts), 2))
        for start in range(0, len(counts), self.batch):
            drawn = np.ascontiguousarray(counts[start:start + self.batch].T)
            shown = (self.shown @ drawn).T.reshape(-1, *self.grid)
            earned = (self.earned @ drawn).T.reshape(-1, *self.grid)
            theta = np.repeat(self.model.theta_[None], len(shown), axis=0)
            theta, gamma, mean = self.model._fit_cells(shown, earned, theta, _REFIT_TOLERANCE)
            moved[start:start + len(shown)] = self._values(theta, gamma, mean) - self.base
        return moved


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
