"""Experiment benchmarks: the assignment's balance and speed, the decision rule's false-positive rate over A/A
experiments read after every day, its power on a true +5 % click-rate lift, and CUPED's narrowing of the revenue
interval. Simulated users arrive over the days, see Poisson lists per day at a Gamma-spread rate, and click
Binomial(lists, p_u) with p_u ~ Beta around the baseline rate; several generators vary the heterogeneity, the list
counts and the baseline rate so the rule is not fitted to one world. Figures only: nothing here asserts."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from tailored.experiments.assignment import Assignment
from tailored.experiments.statistics import Moments, compare, group_sequential_p_value, verdict

ALPHA = 0.05
MDE = 0.05
MIN_USERS = 100
MAX_CELLS = 8_000_000
"""Bounds the users x days values simulated at once (memory), runs are drawn in chunks below it."""


@dataclass(frozen=True)
class Traffic:
    """A simulated world's users: ``rate`` the mean click probability per list, ``strength`` its Beta concentration
    (small: heterogeneous users), ``lists_per_day`` the mean lists of an arrived user per day, spread by a Gamma of
    shape ``lists_shape`` (small: a few heavy users)."""

    rate: float
    strength: float
    lists_per_day: float
    lists_shape: float


GENERATORS: dict[str, Traffic] = {
    "typical": Traffic(rate=0.08, strength=5.0, lists_per_day=0.5, lists_shape=1.0),
    "homogeneous": Traffic(rate=0.08, strength=200.0, lists_per_day=0.5, lists_shape=5.0),
    "heterogeneous": Traffic(rate=0.08, strength=1.0, lists_per_day=0.5, lists_shape=0.3),
    "busy": Traffic(rate=0.15, strength=5.0, lists_per_day=2.0, lists_shape=1.0),
    "sparse": Traffic(rate=0.03, strength=5.0, lists_per_day=0.2, lists_shape=1.0),
}


def daily_moments(traffic: Traffic, runs: int, users: int, lift: float, days: int, seed: int) -> list[Moments]:
    """Each arm's click-rate moments per (run, day) from cumulative per-user totals at each day's end (users not yet
    shown a list are not exposed); the treatment's click probabilities are multiplied by ``1 + lift``."""
    rng = np.random.default_rng(seed)
    chunk = max(1, MAX_CELLS // (users * days))
    arms: list[list[Moments]] = [[], []]
    for start in range(0, runs, chunk):
        shape = (min(chunk, runs - start), users)
        for arm, factor in enumerate((1.0, 1.0 + lift)):
            arrival = rng.integers(0, days, shape)
            per_day = rng.gamma(traffic.lists_shape, traffic.lists_per_day / traffic.lists_shape, shape)
            lists = rng.poisson(per_day[..., None] * (np.arange(days) >= arrival[..., None]))
            p = rng.beta(traffic.rate * traffic.strength, (1 - traffic.rate) * traffic.strength, shape)
            clicks = rng.binomial(lists, np.minimum(p * factor, 1.0)[..., None]).cumsum(-1)
            lists = lists.cumsum(-1)
            arms[arm].append(Moments.of(np.moveaxis(clicks, -1, -2), np.moveaxis(lists, -1, -2),
                                        where=np.moveaxis(lists, -1, -2) > 0))
    return [Moments(*(np.concatenate([getattr(m, name) for m in parts]) for name in vars(parts[0])))
            for parts in arms]


def _first_decision(decisions: np.ndarray) -> np.ndarray:
    """Per run (row), the first non-zero decision over the readings (columns): the one acted on; 0 if none."""
    decided = decisions != 0
    return np.where(decided.any(-1), decisions[np.arange(len(decisions)), np.argmax(decided, -1)], 0)


def peeking(lift: float, runs: int, users: int, generators: Sequence[str] = tuple(GENERATORS), days: int = 14,
            seed: int = 0, on_row: Callable[[dict[str, object]], None] | None = None) -> pd.DataFrame:
    """Per generator: ``runs`` experiments of ``users`` per arm with a true click-rate ``lift`` (0: A/A), read after
    every day by the engine's rule (mSPRT, tau = 5 %, alpha 5 %): the share that ever ships, that ever rolls back,
    that is decided by the last day; the same for the group-sequential design planned to end at the last day's
    users (`group_sequential_p_value`); and, for contrast, the share a fixed-horizon test calls when peeked at daily
    and at one look on the last day (about the most any rule could detect there)."""
    rows = []
    for offset, name in enumerate(generators):
        control, treatment = daily_moments(GENERATORS[name], runs, users, lift, days, seed + 1000 * offset)
        comparison = compare(control, treatment, "click_rate", tau=MDE)
        exposed = control.n + treatment.n
        sequential = replace(comparison, p_value=group_sequential_p_value(
            comparison.lift, comparison.lift_variance, exposed, exposed[:, -1:]))
        first = _first_decision(verdict(comparison, alpha=ALPHA, min_users=MIN_USERS))
        first_called = _first_decision(verdict(sequential, alpha=ALPHA, min_users=MIN_USERS))
        enough = np.minimum(control.n, treatment.n) >= MIN_USERS
        row = {"generator": name, "lift": lift, "runs": runs, "users_per_arm": users, "days": days,
               "click_rate": float(np.mean(control.y[:, -1] / control.x[:, -1])),
               "lists_per_user": float(np.mean(control.x[:, -1] / control.n[:, -1])),
               "lift_se_last_day": float(np.median(np.sqrt(comparison.lift_variance[:, -1]))),
               "ship": float(np.mean(first > 0)), "roll_back": float(np.mean(first < 0)),
               "decided_by_last_day": float(np.mean(first != 0)),
               "group_sequential_ship": float(np.mean(first_called > 0)),
               "group_sequential_roll_back": float(np.mean(first_called < 0)),
               "fixed_test_peeked": float(np.mean(((comparison.test_p_value <= ALPHA) & enough).any(-1))),
               "fixed_test_last_day": float(np.mean(comparison.test_p_value[:, -1] <= ALPHA))}
        rows.append(row)
        if on_row:
            on_row(row)
    return pd.DataFrame(rows)


def cuped(runs: int = 100, users: int = 50_000, predictive: Sequence[float] = (1.0, 0.7, 0.4),
          seed: int = 0) -> pd.DataFrame:
    """Revenue per exposed user with and without CUPED. Users have a latent level of spending (lognormal); each
    period's purchases are Poisson at a mix of that level (share ``predictive``) and another user's, times lognormal
    baskets, so the pre-period spend predicts the in-period spend by ``predictive``. Per setting: the realised
    correlation, the median ratio of the lift intervals' widths (target <= 0.8), the lift's spread over runs and the
    A/A rejection rate of CUPED's Welch test (should stay near 5 %)."""
    rng = np.random.default_rng(seed)
    rows = []
    for share in predictive:
        level = 2.0 * rng.lognormal(0.0, 1.0, (2, runs, users))

        def spend(level: np.ndarray = level, share: float = share) -> np.ndarray:
            purchases = rng.poisson(share * level + (1 - share) * rng.permuted(level, axis=-1))
            return purchases * rng.lognormal(3.5, 0.4, purchases.shape)

        before, during = spend(), spend()
        arms = [Moments.of(during[arm], covariate=before[arm]) for arm in range(2)]
        plain, adjusted = compare(*arms, "revenue_per_user"), compare(*arms, "revenue_per_user", cuped=True)
        rows.append({"predictive": share, "runs": runs, "users_per_arm": users,
                     "correlation": float(np.corrcoef(before[0, 0], during[0, 0])[0, 1]),
                     "width_ratio": float(np.median((adjusted.ci_high - adjusted.ci_low)
                                                    / (plain.ci_high - plain.ci_low))),
                     "lift_sd_plain": float(np.std(plain.lift)), "lift_sd_cuped": float(np.std(adjusted.lift)),
                     "a_a_rejections_cuped": float(np.mean(adjusted.test_p_value <= ALPHA))})
    return pd.DataFrame(rows)


def assignment(users: int = 1_000_000, salt: str = "benchmark") -> pd.DataFrame:
    """The 50/50 split of ``users`` ids ("user0", ...): the control share and the seconds (wall and CPU) to assign
    them all."""
    ids = np.array([f"user{i}" for i in range(users)])
    wall, cpu = time.perf_counter(), time.process_time()
    codes = Assignment(salt, {"control": 50, "treatment": 50}).codes(ids)
    return pd.DataFrame([{"users": users, "control_share": float(np.mean(codes == 0)),
                          "seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu}])


def experiments_benchmark(aa_runs: int = 200, aa_users: int = 20_000, power_runs: int = 100,
                          power_users: int = 200_000, cuped_runs: int = 100, cuped_users: int = 50_000,
                          generators: Sequence[str] = tuple(GENERATORS), seed: int = 0,
                          on_row: Callable[[dict[str, object]], None] | None = None) -> dict[str, pd.DataFrame]:
    """Every figure: assignment, A/A peeking (target: ship + roll back <= 5 %), power at +5 % (target: ship >= 80 %
    at 200,000 users per arm) and CUPED (target: width ratio <= 0.8)."""
    return {"assignment": assignment(),
            "a/a": peeking(0.0, aa_runs, aa_users, generators, seed=seed, on_row=on_row),
            "power": peeking(MDE, power_runs, power_users, generators, seed=seed + 1, on_row=on_row),
            "cuped": cuped(cuped_runs, cuped_users, seed=seed + 2)}
