"""An experiment's status as the contract's JSON: per-arm metrics with intervals, each arm's lift over the control
with its interval and always-valid p-value, the sample-ratio-mismatch p-value and the decision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from tailored.errors import ConfigError, DataError
from tailored.experiments.assignment import HOLDOUT
from tailored.experiments.statistics import (
    METRICS,
    Comparison,
    UserTotals,
    compare,
    decide,
    estimate,
    metric_spec,
    srm_p_value,
)


SRM_ALPHA = 0.001
"""The sample-ratio-mismatch p-value below which the split is called broken (the field's usual threshold)."""


TOTALS = ("lists", "clicks", "purchases", "revenue")


def arms_from_frame(frame: pd.DataFrame, covariate: str | None = None) -> dict[str, UserTotals]:
    """Each arm's `UserTotals` from a frame with one row per (user, arm): columns ``arm``, lists, clicks,
    purchases, revenue (and ``covariate`` when given), e.g. the store's exposures and attributed events summed per
    user. Rows with no list shown are not exposed and left out."""
    needed = ["arm", *TOTALS, *([covariate] if covariate else [])]
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise DataError(f"Experiment frame lacks the columns {missing}: give one row per user and arm with "
                        f"{', '.join(needed)}.")
    exposed = frame[frame["lists"] > 0]
    return {str(arm): UserTotals(*(rows[column].to_numpy(np.float64) for column in TOTALS),
                                 pre_period=rows[covariate].to_numpy(np.float64) if covariate else None)
            for arm, rows in exposed.groupby("arm", sort=False)}


def _number(value: np.ndarray | float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def experiment_status(name: str, arms: Mapping[str, UserTotals], shares: Mapping[str, float], *,
                      control: str = "control", metric: str = "click_rate", guardrails: Sequence[str] = (),
                      cuped: bool = False, alpha: float = 0.05, mde: float = 0.05, power: float = 0.8,
                      min_users: int = 100, confidence: float = 0.95,
                      holdouts: Sequence[str] = (HOLDOUT,), planned_users: float | None = None) -> dict[str, Any]:
    """``{"name", "arms": {arm: {"users", "exposures", metric: {"value", "ci"}, ...}}, "lift": {arm: {metric:
    {"value", "ci", "p_value", "test", "test_p_value"}}}, "srm_p_value", "decision", "needed_users"}``.

    ``arms`` holds each arm's exposed users (a holdout arm is one of them); ``shares`` the configured traffic of the
    same arms. Every other arm's lift over ``control`` is reported. The decision compares the treatments (not the
    ``holdouts``, whose lift measures the engine's own value) with ``control`` on ``metric`` by the mSPRT with tau =
    ``mde``; ``guardrails`` (metric names, higher is better) can roll back. With several treatments the first that
    is decided decides, else the largest number of users needed is reported. ``p_value`` is the always-valid p-value
    the decision reads (the mSPRT's, or with ``planned_users`` per compared pair of arms the group-sequential
    design's that ends there: "rule" says which); ``test_p_value`` the metric's fixed-horizon test, valid for one
    look at a planned size."""
    if control not in arms:
        raise ConfigError(f"Control arm {control!r} is not among the arms {', '.join(arms)}: name it with 'control'.")
    if len([arm for arm in arms if arm != control and arm not in holdouts]) < 1:
        raise ConfigError(f"Experiment {name!r} has no treatment arm beside {control!r} and the holdout: give one.")
    if set(shares) != set(arms):
        raise ConfigError(f"Traffic shares name arms {sorted(shares)} but the data has arms {sorted(arms)}: give one "
                          "share per arm.")
    for name_of in (metric, *guardrails):
        metric_spec(name_of)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    report: dict[str, Any] = {"name": name, "rule": "msprt" if planned_users is None else "group-sequential",
                              "arms": {}, "lift": {}}
    for arm, totals in arms.items():
        entry: dict[str, Any] = {"users": totals.users, "exposures": int(totals.lists.sum())}
        for metric_name in METRICS:
            found = estimate(totals.moments(metric_name))
            half = z * np.sqrt(found.variance)
            entry[metric_name] = {"value": _number(found.value),
                                  "ci": [_number(found.value - half), _number(found.value + half)]}
        report["arms"][arm] = entry
    decisions = []
    for arm, totals in arms.items():
        if arm == control:
            continue
        comparisons: dict[str, Comparison] = {
            metric_name: compare(arms[control].moments(metric_name), totals.moments(metric_name), metric_name,
                                 cuped=cuped and totals.pre_period is not None
                                 and arms[control].pre_period is not None, tau=mde, confidence=confidence,
                                 planned_users=planned_users)
            for metric_name in METRICS}
        report["lift"][arm] = {metric_name: {"value": _number(found.lift),
                                             "ci": [_number(found.ci_low), _number(found.ci_high)],
                                             "p_value": _number(found.p_value), "test": found.test,
                                             "test_p_value": _number(found.test_p_value)}
                               for metric_name, found in comparisons.items()}
        if arm not in holdouts:
            decisions.append(decide(comparisons[metric], alpha=alpha, mde=mde, power=power, min_users=min_users,
                                    guardrails={g: comparisons[g] for g in guardrails}, planned_users=planned_users))
    report["srm_p_value"] = srm_p_value([arms[arm].users for arm in arms], [shares[arm] for arm in arms])
    final = next((d for d in decisions if not d.text.startswith("keep")), max(decisions, key=lambda d: d.needed_users))
    report["decision"], report["needed_users"] = final.text, final.needed_users
    report["warnings"] = [f"sample-ratio mismatch (p = {report['srm_p_value']:.2g} < {SRM_ALPHA}): the split is "
                          "broken (a bug, bots, a redirect); trust no lift until it is found"
                          ] if report["srm_p_value"] < SRM_ALPHA else []
    return report
