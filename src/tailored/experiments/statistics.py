"""An experiment's statistics: per-arm metrics, relative lift with intervals, the test fit to each metric, CUPED,
the sample-ratio-mismatch check and a peeking-safe decision.

The unit is the user: a user's lists are not independent of one another, so every metric is computed from per-user
totals (lists shown, clicks, purchases, revenue) and its variance from their spread over users (clustered by user).
A metric is a ratio of two per-user means, ``R = mean(y) / mean(x)``: clicks per list (click rate), purchasing users
per exposed user (conversion, x = 1), revenue per exposed user (x = 1), revenue per purchase (average basket). Its
variance is the delta method's (Deng, Knoblich & Lu 2018, "Applying the Delta Method in Metric Analytics"):
``Var(R) = Var(y - R x) / (n mean(x)^2)``, computed from the sums in `Moments`, so it broadcasts over any leading
axes (peeks, simulated experiments) without a loop.

CUPED (Deng, Xu, Kohavi & Walker 2013) subtracts ``theta (c - mean c)`` with a pre-period covariate ``c``, where
``theta = Cov(phi, c) / Var(c)`` is pooled over the arms (within-arm covariances weighted by users) and ``phi`` is the
metric's per-user linearisation ``(y - R x) / mean(x)``: the same mean, less variance where ``c`` predicts ``y``.

Lift ``T / C - 1`` gets its interval from the delta method. The decision uses the mixture sequential probability
ratio test (mSPRT) of Johari, Pekelis & Walsh 2017 ("Peeking at A/B tests"), with a normal mixture N(0, tau^2) over
the lift: its p-value is valid at whatever moment it is read, however often, so the A/A false-positive rate stays
below alpha under daily peeks. The fixed-horizon test of each metric (two-proportion z for conversion, Welch for
revenue per user, the delta method's z for ratio metrics) is reported beside it, for one look at a planned size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from tailored.errors import ConfigError, DataError

CLICK_RATE = "click_rate"
CONVERSION = "conversion"
REVENUE_PER_USER = "revenue_per_user"
AVERAGE_BASKET = "average_basket"


@dataclass(frozen=True)
class MetricSpec:
    """A metric as the ratio of two per-user totals (``denominator`` None: per exposed user) and its fixed test."""

    numerator: str
    denominator: str | None
    test: str  # "two-proportion", "welch" or "delta"


METRICS: dict[str, MetricSpec] = {
    CLICK_RATE: MetricSpec("clicks", "lists", "delta"),
    CONVERSION: MetricSpec("converted", None, "two-proportion"),
    REVENUE_PER_USER: MetricSpec("revenue", None, "welch"),
    AVERAGE_BASKET: MetricSpec("revenue", "purchases", "delta"),
}
"""Click rate = clicks per list shown; conversion = users with a purchase / users exposed; revenue per exposed user;
average basket = revenue / purchases (docs/PROTOCOLS, "Experiments")."""


@dataclass(frozen=True)
class UserTotals:
    """One arm's exposed users, one entry each: lists shown, clicks, purchases, revenue, and an optional pre-period
    covariate for CUPED (e.g. each user's spend in the weeks before the experiment; 0 for new users)."""

    lists: np.ndarray
    clicks: np.ndarray
    purchases: np.ndarray
    revenue: np.ndarray
    pre_period: np.ndarray | None = None

    def __post_init__(self) -> None:
        sizes = {name: np.shape(getattr(self, name)) for name in ("lists", "clicks", "purchases", "revenue")}
        if self.pre_period is not None:
            sizes["pre_period"] = np.shape(self.pre_period)
        if len(set(sizes.values())) != 1:
            raise DataError(f"User totals have different lengths {sizes}: give one entry per exposed user in each.")
        for name in sizes:
            values = np.asarray(getattr(self, name), dtype=np.float64)
            invalid = ~np.isfinite(values) | ((values < 0) if name != "pre_period" else False)
            if invalid.any():
                row = int(np.flatnonzero(invalid)[0])
                raise DataError(f"User totals '{name}' has an invalid value {float(values[row])} at row {row}: "
                                "counts and revenue must be finite and >= 0 (the covariate finite).")
            object.__setattr__(self, name, values)

    @property
    def converted(self) -> np.ndarray:
        return (self.purchases > 0).astype(np.float64)

    @property
    def users(self) -> int:
        return len(self.lists)

    def moments(self, metric: str) -> Moments:
        spec = metric_spec(metric)
        return Moments.of(getattr(self, spec.numerator),
                          None if spec.denominator is None else getattr(self, spec.denominator), self.pre_period)


def metric_spec(metric: str) -> MetricSpec:
    if metric not in METRICS:
        raise ConfigError(f"Unknown metric {metric!r}: choose one of {', '.join(METRICS)}.")
    return METRICS[metric]


@dataclass(frozen=True)
class Moments:
    """The sums over users (along the last axis of the values; leading axes broadcast) that a ratio metric's value,
    delta-method variance and CUPED adjustment need: y the numerator, x the denominator, c the covariate."""

    n: np.ndarray
    y: np.ndarray
    x: np.ndarray
    c: np.ndarray
    yy: np.ndarray
    xx: np.ndarray
    xy: np.ndarray
    cc: np.ndarray
    yc: np.ndarray
    xc: np.ndarray

    @classmethod
    def of(cls, numerator: np.ndarray, denominator: np.ndarray | None = None, covariate: np.ndarray | None = None,
           where: np.ndarray | None = None) -> Moments:
        """Sums over the last axis; ``where`` (bool) keeps only some users (e.g. those exposed by a given day)."""
        y = np.asarray(numerator, dtype=np.float64)
        x = np.ones_like(y) if denominator is None else np.asarray(denominator, dtype=np.float64)
        c = np.zeros_like(y) if covariate is None else np.asarray(covariate, dtype=np.float64)
        w = np.ones_like(y) if where is None else np.asarray(where, dtype=np.float64)
        return cls(w.sum(-1), (w * y).sum(-1), (w * x).sum(-1), (w * c).sum(-1), (w * y * y).sum(-1),
                   (w * x * x).sum(-1), (w * x * y).sum(-1), (w * c * c).sum(-1), (w * y * c).sum(-1),
                   (w * x * c).sum(-1))

    def cov(self, a: str, b: str) -> np.ndarray:
        """The sample covariance over users of two of y, x, c (``n - 1`` in the denominator)."""
        cross = getattr(self, "".join(sorted(a + b, key="xyc".index)))
        with np.errstate(divide="ignore", invalid="ignore"):
            return (cross - getattr(self, a) * getattr(self, b) / self.n) / (self.n - 1)

    def ratio(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.y / self.x

    def linearised(self) -> tuple[np.ndarray, np.ndarray]:
        """Var(phi) and Cov(phi, c) over users, phi = (y - R x) / mean(x) (the ratio's influence per user)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            r, mean_x = self.ratio(), self.x / self.n
            var = (self.cov("y", "y") - 2 * r * self.cov("y", "x") + r * r * self.cov("x", "x")) / mean_x**2
            cov = (self.cov("y", "c") - r * self.cov("x", "c")) / mean_x
        return var, cov


@dataclass(frozen=True)
class ArmEstimate:
    """One arm's metric: the value (CUPED-adjusted when theta != 0), its variance, and the per-user variance."""

    value: np.ndarray
    variance: np.ndarray
    users: np.ndarray


def cuped_theta(arms: Sequence[Moments]) -> np.ndarray:
    """CUPED's theta = Cov(phi, c) / Var(c), pooled over the arms (within-arm covariances weighted by n - 1)."""
    weights = [m.n - 1 for m in arms]
    cov = sum(w * m.linearised()[1] for w, m in zip(weights, arms, strict=True))
    var = sum(w * m.cov("c", "c") for w, m in zip(weights, arms, strict=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 0, cov / np.where(var > 0, var, 1.0), 0.0)


def estimate(moments: Moments, theta: np.ndarray | float = 0.0,
             covariate_mean: np.ndarray | float = 0.0) -> ArmEstimate:
    """An arm's value ``R - theta (mean c - covariate_mean)`` and its delta-method variance
    ``(Var(phi) - 2 theta Cov(phi, c) + theta^2 Var(c)) / n``; ``covariate_mean`` is the mean of c over all arms."""
    var_phi, cov_phi = moments.linearised()
    with np.errstate(divide="ignore", invalid="ignore"):
        per_user = var_phi - 2 * theta * cov_phi + np.square(theta) * moments.cov("c", "c")
        value = moments.ratio() - theta * (moments.c / moments.n - covariate_mean)
        return ArmEstimate(value, per_user / moments.n, moments.n)


def pooled_covariate_mean(arms: Sequence[Moments]) -> np.ndarray:
    return sum(m.c for m in arms) / sum(m.n for m in arms)


@dataclass(frozen=True)
class Comparison:
    """Treatment against control on one metric: lift = T / C - 1 with its interval, the always-valid p-value that
    the decision reads, and the metric's fixed-horizon test (for one look at a planned size)."""

    control: ArmEstimate
    treatment: ArmEstimate
    lift: np.ndarray
    lift_variance: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_value: np.ndarray
    test: str
    test_p_value: np.ndarray


def lift_of(control: ArmEstimate, treatment: ArmEstimate) -> tuple[np.ndarray, np.ndarray]:
    """T / C - 1 and its delta-method variance Var(T) / C^2 + T^2 Var(C) / C^4 (independent arms)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = treatment.value / control.value - 1
        variance = treatment.variance / control.value**2 + treatment.value**2 * control.variance / control.value**4
    return lift, variance


def msprt_p_value(lift: np.ndarray, variance: np.ndarray, tau: float) -> np.ndarray:
    """The mSPRT's p-value 1 / Lambda (capped at 1) for an estimate ~ N(lift, variance) under H0: lift = 0 with the
    mixture N(0, tau^2): Lambda = sqrt(v / (v + tau^2)) exp(tau^2 lift^2 / (2 v (v + tau^2))) (Johari et al. 2017,
    eq. 11 with the estimate's variance v). Valid at any reading; the running minimum over readings is too."""
    tau2 = tau * tau
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_lambda = 0.5 * np.log(variance / (variance + tau2)) + tau2 * lift**2 / (2 * variance * (variance + tau2))
        p = np.minimum(1.0, np.exp(-log_lambda))
    return np.where(np.isfinite(variance) & (variance > 0), p, 1.0)


def sup_brownian_sf(c: np.ndarray) -> np.ndarray:
    """P(max over [0, 1] of |W(t)| >= c) for a standard Brownian motion W: the reflection series
    4 sum_k>=1 (-1)^(k+1) Phi-bar((2k-1) c) for c >= 1, its Fourier form 1 - (4/pi) sum_k>=0 (-1)^k / (2k+1)
    exp(-(2k+1)^2 pi^2 / (8 c^2)) below (each converges fast on its side)."""
    c = np.asarray(c, dtype=np.float64)[..., None]
    k = np.arange(40)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        reflection = 4 * np.sum((-1.0) ** k * stats.norm.sf((2 * k + 1) * c), -1)
        fourier = 1 - 4 / np.pi * np.sum((-1.0) ** k / (2 * k + 1) * np.exp(-((2 * k + 1) * np.pi) ** 2 / (8 * c * c)),
                                         -1)
    return np.clip(np.where(c[..., 0] >= 1, reflection, np.where(c[..., 0] > 0, fourier, 1.0)), 0.0, 1.0)


def group_sequential_p_value(lift: np.ndarray, variance: np.ndarray, users: np.ndarray,
                             planned_users: float) -> np.ndarray:
    """The p-value of an O'Brien-Fleming-type group-sequential design under continuous monitoring up to a planned
    size: with z = lift / sqrt(variance) and the information fraction t = users / planned_users (at most 1), the
    B-value z sqrt(t) crosses a constant boundary c with probability P(max |W| >= c) under no effect, whatever the
    schedule of looks (Lan & DeMets 1983's spending alpha(t) = P(max_[0,t] |W| >= c), the continuous limit of the
    O'Brien-Fleming boundary z >= c / sqrt(t); c = 2.2414 at alpha = 0.05). Valid until ``planned_users``: stop
    there."""
    with np.errstate(divide="ignore", invalid="ignore"):
        b_value = np.abs(lift) / np.sqrt(variance) * np.sqrt(np.minimum(np.asarray(users) / planned_users, 1.0))
    return np.where(np.isfinite(b_value), sup_brownian_sf(np.where(np.isfinite(b_value), b_value, 0.0)), 1.0)


def fixed_test(spec: MetricSpec, control: Moments, treatment: Moments, c: ArmEstimate, t: ArmEstimate,
               cuped: bool) -> np.ndarray:
    """The fixed-horizon two-sided p-value of T = C: the pooled two-proportion z-test for conversion (without CUPED),
    Welch's t (`scipy.stats.ttest_ind_from_stats`) for per-user means, else the delta method's z."""
    if spec.test == "two-proportion" and not cuped:
        pooled = (control.y + treatment.y) / (control.n + treatment.n)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (t.value - c.value) / np.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n))
        return np.where(np.isfinite(z), 2 * stats.norm.sf(np.abs(z)), 1.0)
    if spec.test == "welch" or spec.test == "two-proportion":
        with np.errstate(divide="ignore", invalid="ignore"):
            result = stats.ttest_ind_from_stats(t.value, np.sqrt(t.variance * t.users), t.users, c.value,
                                                np.sqrt(c.variance * c.users), c.users, equal_var=False)
        return np.where(np.isfinite(result.pvalue), result.pvalue, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (t.value - c.value) / np.sqrt(t.variance + c.variance)
    return np.where(np.isfinite(z), 2 * stats.norm.sf(np.abs(z)), 1.0)


def compare(control: Moments, treatment: Moments, metric: str, *, cuped: bool = False, tau: float = 0.05,
            confidence: float = 0.95, planned_users: float | None = None) -> Comparison:
    """Treatment against control on ``metric`` (a key of `METRICS`, which picks the fixed test); ``cuped`` adjusts
    both arms with the pooled theta. The peeking-safe p-value is the mSPRT's, with ``tau`` the mixture's standard
    deviation on the lift scale (set it to the minimum effect worth detecting), or, given ``planned_users`` (in the
    two arms), the group-sequential design's that ends there."""
    spec = metric_spec(metric)
    if not 0 < confidence < 1:
        raise ConfigError(f"Confidence is {confidence}: give a level in (0, 1), e.g. 0.95.")
    if tau <= 0:
        raise ConfigError(f"mSPRT tau is {tau}: give the minimum relative effect worth detecting, e.g. 0.05.")
    if planned_users is not None and planned_users <= 0:
        raise ConfigError(f"Planned users is {planned_users}: give the users (both arms) the experiment ends at.")
    theta = cuped_theta([control, treatment]) if cuped else 0.0
    mean_c = pooled_covariate_mean([control, treatment]) if cuped else 0.0
    c, t = estimate(control, theta, mean_c), estimate(treatment, theta, mean_c)
    lift, variance = lift_of(c, t)
    half = stats.norm.ppf(0.5 + confidence / 2) * np.sqrt(variance)
    test = "welch" if spec.test == "two-proportion" and cuped else spec.test  # adjusted values are not 0/1
    p_value = (msprt_p_value(lift, variance, tau) if planned_users is None
               else group_sequential_p_value(lift, variance, control.n + treatment.n, planned_users))
    return Comparison(c, t, lift, variance, lift - half, lift + half, p_value, test,
                      fixed_test(spec, control, treatment, c, t, cuped))


def srm_p_value(users: Sequence[int] | np.ndarray, shares: Sequence[float] | np.ndarray) -> float:
    """Sample-ratio mismatch: the chi-square goodness-of-fit p-value of the users per arm against the configured
    shares (`scipy.stats.chisquare`). Below 0.001 the split is broken (a bug, a bot, a redirect): trust no lift."""
    observed = np.asarray(users, dtype=np.float64)
    expected_shares = np.asarray(shares, dtype=np.float64)
    if observed.shape != expected_shares.shape or len(observed) < 2:
        raise ConfigError(f"SRM check needs one share per arm and two arms or more: {len(observed)} arm counts, "
                          f"{len(expected_shares)} shares.")
    if observed.sum() == 0:
        return 1.0
    expected = observed.sum() * expected_shares / expected_shares.sum()
    return float(stats.chisquare(observed, expected).pvalue)


def msprt_boundary(variance: np.ndarray, tau: float, alpha: float) -> np.ndarray:
    """The |lift| at which the mSPRT rejects for an estimate of ``variance``: Lambda >= 1 / alpha solved for lift."""
    tau2 = tau * tau
    return np.sqrt(2 * variance * (variance + tau2) / tau2 * (math.log(1 / alpha)
                                                                 + 0.5 * np.log((variance + tau2) / variance)))


def needed_users(users: float, lift_variance: float, mde: float, *, alpha: float = 0.05, power: float = 0.8,
                 tau: float | None = None) -> int:
    """Users (in the two compared arms, their current proportions kept) at which the mSPRT reading rejects with
    probability ``power`` when the true lift is ``mde``, at the observed per-user variance (the lift's variance
    shrinks as 1 / users)."""
    if users <= 0 or not np.isfinite(lift_variance) or lift_variance <= 0:
        raise DataError(f"Cannot size the experiment from {users} users and lift variance {lift_variance}: it needs "
                        "exposed users with clicks in both arms.")
    tau = mde if tau is None else tau
    per_user = lift_variance * users
    z_power = stats.norm.ppf(power)

    def shortfall(log_n: float) -> float:
        variance = per_user / math.exp(log_n)
        return float(mde - msprt_boundary(np.asarray(variance), tau, alpha)) / math.sqrt(variance) - z_power

    low, high = math.log(2.0), math.log(2.0)
    while shortfall(high) < 0:
        high += math.log(2.0)
    if shortfall(low) >= 0:
        return 2
    return math.ceil(math.exp(optimize.brentq(shortfall, low, high, xtol=1e-6)))


@dataclass(frozen=True)
class Decision:
    """"ship", "roll back" or "keep running: N more users needed", with N. N is 0 once decided, and also when the
    experiment is already large enough to detect the minimum effect and has not: the true lift is likely smaller
    than that effect (stopping and keeping the control is then the usual reading)."""

    text: str
    needed_users: int


def verdict(comparison: Comparison, *, alpha: float = 0.05, min_users: int = 100) -> np.ndarray:
    """The primary metric's stop rule, vectorised over readings: 1 ship (lift > 0 at ``alpha`` by the always-valid
    p-value), -1 roll back (lift < 0), 0 keep running; always 0 until each arm has ``min_users``."""
    enough = np.minimum(comparison.control.users, comparison.treatment.users) >= min_users
    return np.where(enough & (comparison.p_value <= alpha), np.sign(comparison.lift), 0).astype(np.int64)


def decide(comparison: Comparison, *, alpha: float = 0.05, mde: float = 0.05, power: float = 0.8,
           min_users: int = 100, guardrails: Mapping[str, Comparison] | None = None,
           planned_users: float | None = None) -> Decision:
    """One reading's decision: "roll back" when a guardrail (higher is better) is worse by its always-valid p-value
    at ``alpha``; else the `verdict` on the primary metric; while it is 0, keep running, with the users still needed
    to detect ``mde`` at ``power`` (``min_users`` more while the variance cannot be estimated yet: no clicks), or,
    for a group-sequential design (comparisons made with ``planned_users``), the users left to its planned end. No
    decision before each arm has ``min_users``."""
    for guardrail in (guardrails or {}).values():
        if verdict(guardrail, alpha=alpha, min_users=min_users) < 0:
            return Decision("roll back", 0)
    found = int(verdict(comparison, alpha=alpha, min_users=min_users))
    if found:
        return Decision("ship" if found > 0 else "roll back", 0)
    users = float(comparison.control.users + comparison.treatment.users)
    variance = float(comparison.lift_variance)
    if planned_users is not None:
        more = math.ceil(max(planned_users - users, 0))
    elif not np.isfinite(variance) or variance <= 0:  # no clicks (or no users) yet: nothing to size from
        more = max(2 * min_users - int(users), min_users)
    else:
        more = max(needed_users(users, variance, mde, alpha=alpha, power=power), 2 * min_users) - int(users)
    return Decision(f"keep running: {max(more, 0):,} more users needed", max(more, 0))
