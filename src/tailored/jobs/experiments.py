"""An experiment's status from the store: each user's lists and attributed rewards per arm (`experiment_totals`)
and purchase value before it (CUPED's covariate), the statistics and decision of `experiments.status`, then the
design's bound guardrails (``metric<=bound``, ``p99_ms<=bound``: the arm's serving latency), any breach of which
rolls the experiment back."""

from __future__ import annotations

from typing import Any

import numpy as np

from tailored.experiments.design import BASELINE, LATENCY, Design
from tailored.experiments.statistics import UserTotals
from tailored.experiments.status import arms_from_frame, experiment_status
from tailored.store.attribution import ATTRIBUTION_WINDOW_SECONDS
from tailored.store.database import EventStore
from tailored.store.experiments import (arm_latencies, experiment_totals, experiments, first_exposure,
                                        spend_before)

PRE_PERIOD, PRE_PERIOD_DAYS = "pre_period", 28.0
"""CUPED's covariate: each user's purchase value in the 28 days before the experiment's first list."""
MIN_LATENCIES = 100
"""Exposures an arm needs before its latency guardrail is judged (a 99th percentile of fewer says little)."""


def status_of(store: EventStore, name: str, window: float = ATTRIBUTION_WINDOW_SECONDS) -> dict[str, Any]:
    """The contract's status JSON of experiment ``name`` (`experiments.status.experiment_status`), with the
    experiment's ``status`` (running/stopped), each arm's ``p99_ms`` and the guardrails checked."""
    row = experiments(store, name)[0]
    design = Design.from_json(row["design"])
    totals = experiment_totals(store, name, window)
    started = min(row["created_at"], first_exposure(store, name) or row["created_at"])
    totals[PRE_PERIOD] = spend_before(store, totals["user_id"].tolist(), started, PRE_PERIOD_DAYS)
    found = arms_from_frame(totals, covariate=PRE_PERIOD)
    empty = np.zeros(0)
    arms = {arm.name: found.get(arm.name, UserTotals(empty, empty, empty, empty, empty)) for arm in design.arms}
    report = experiment_status(name, arms, {arm.name: arm.share / 100 for arm in design.arms},
                               control=design.control.name, metric=design.metric, min_users=design.min_users,
                               holdouts=[arm.name for arm in design.arms if arm.ref == BASELINE],
                               cuped=bool(totals[PRE_PERIOD].any()))
    report["cuped"] = {"covariate": f"purchase value in the {PRE_PERIOD_DAYS:g} days before the experiment",
                       "applied": bool(totals[PRE_PERIOD].any())}
    latencies = arm_latencies(store, name)
    for arm in design.arms:
        times = latencies.get(arm.name, empty)
        report["arms"][arm.name][LATENCY] = float(np.percentile(times, 99)) if len(times) else None
    breaches = _breaches(design, report, {arm: len(times) for arm, times in latencies.items()})
    report["guardrails"] = [{"guardrail": str(rail), "breached_by": arms} for rail, arms in breaches]
    if any(arms for _, arms in breaches):
        worst = next(f"{rail} breached by {', '.join(arms)}" for rail, arms in breaches if arms)
        report["decision"] = f"roll back: {worst}"
    report["status"] = row["status"]
    return report


def _breaches(design: Design, report: dict[str, Any], latency_counts: dict[str, int]) -> list[tuple[Any, list[str]]]:
    """Per bound guardrail, the treatment arms (not the control, not the holdouts) whose value breaks it: latency
    once `MIN_LATENCIES` exposures are timed, the other metrics once the arm has ``min_users`` users."""
    treatments = [arm.name for arm in design.arms[1:] if arm.ref != BASELINE]
    found = []
    for rail in design.guardrails:
        arms = []
        for arm in treatments:
            entry = report["arms"][arm]
            if rail.metric == LATENCY:
                value, judged = entry[LATENCY], latency_counts.get(arm, 0) >= MIN_LATENCIES
            else:
                value, judged = entry[rail.metric]["value"], entry["users"] >= design.min_users
            if judged and value is not None and not rail.holds(value):
                arms.append(arm)
        found.append((rail, arms))
    return found
