"""Off-policy evaluation benchmarks: the Open Bandit Dataset's Random policy estimated from its Bernoulli Thompson
Sampling logs, the estimators' speed on a million logged impressions, and their accuracy against online runs in the
simulator. Figures only: nothing here asserts."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from tailored.data.feedback_log import read_feedback_log
from tailored.data.open_bandit import read_open_bandit
from tailored.jobs.ope import evaluate_log

OPEN_BANDIT_ESTIMATORS = ("ips", "snips", "dm", "dr")
ACCURACY_ESTIMATORS = ("snips", "dr")
ACCURACY_LOGGING = "softmax:temperature=0.5"
"""An exploring policy with full support over the candidates (thompson's lists turn deterministic where its posterior
is sure: propensity 1, and greedy's other items there are outside its support)."""
ACCURACY_TARGETS = ("greedy", "epsilon-greedy:epsilon=0.1")


def open_bandit(campaign: str = "all", estimators: Sequence[str] = OPEN_BANDIT_ESTIMATORS, samples: int = 1000,
                seed: int = 0) -> pd.DataFrame:
    """The Random (uniform) policy's click rate per shown position estimated from the Bernoulli Thompson Sampling
    log of ``campaign``, beside its on-policy rate (the mean click of the random log): one row per estimator with
    the value, the 95 % interval, the effective sample size and whether the interval contains the on-policy rate."""
    result = evaluate_log(read_feedback_log(read_open_bandit("bts", campaign)), "uniform", estimators=estimators,
                          samples=samples, seed=seed)
    on_policy = float(read_open_bandit("random", campaign)["click"].mean())
    rows = [{"estimator": name, "estimate": found["value"], "ci_low": low, "ci_high": high, "ess": found["ess"],
             "random_on_policy": on_policy, "contains": low <= on_policy <= high}
            for name, found in result["estimates"].items() for low, high in [found["ci"]]]
    table = pd.DataFrame(rows)
    table.attrs["warnings"] = result["warnings"]
    table.attrs["bts_on_policy"] = result["logged_value"]
    return table


def speed(impressions: int = 1_000_000, k: int = 10, items: int = 10_000, samples: int = 1000,
          seed: int = 0) -> pd.DataFrame:
    """Seconds to estimate a uniform target with every estimator and its bootstrap from a synthetic log of
    ``impressions`` shown positions (lists of ``k``; a position-based world, random propensities), wall and CPU."""
    rng = np.random.default_rng(seed)
    lists = impressions // k
    shown = rng.integers(0, items, impressions)
    positions = np.tile(np.arange(1, k + 1), lists)
    attraction = rng.uniform(0.01, 0.3, items)
    clicks = (rng.random(impressions) < positions ** -0.8 * attraction[shown]).astype(np.int64)
    log = pd.DataFrame({"exposure_id": np.repeat(np.arange(lists), k).astype(str), "user_id": "u",
                        "position": positions, "item_id": shown.astype(str),
                        "propensity": rng.uniform(1e-4, 1.0, impressions), "click": clicks})
    wall, cpu = time.perf_counter(), time.process_time()
    checked = read_feedback_log(log)
    checked_wall, checked_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    evaluate_log(checked, "uniform", estimators=("ips", "snips", "dm", "dr", "pi"), samples=samples, seed=seed)
    return pd.DataFrame([
        {"step": "validate the log", "impressions": impressions, "lists": lists, "seconds": checked_wall,
         "cpu_seconds": checked_cpu},
        {"step": "ips+snips+dm+dr+pi with bootstrap", "impressions": impressions, "lists": lists,
         "seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu},
    ])


def accuracy(seeds: int = 20, impressions: int = 10_000, scenario: str = "static", logging: str = ACCURACY_LOGGING,
             targets: Sequence[str] = ACCURACY_TARGETS, estimators: Sequence[str] = ACCURACY_ESTIMATORS,
             samples: int = 1000, on_row: Callable[[dict[str, object]], None] | None = None) -> pd.DataFrame:
    """Per seed: ``logging`` runs through a simulated world (`tailored.simulation`) and each target's click rate
    (clicks per list) is estimated from its log with each estimator, beside the rate the target earns when run
    online on the same traffic: relative error and whether the 95 % interval contains the online rate."""
    from tailored.simulation.run import simulate
    from tailored.simulation.world import world_of

    rows = []
    for seed in range(seeds):
        report = simulate(world_of(scenario, seed), [logging, *targets], impressions=impressions, seed=seed,
                          keep_log=True)
        logged = report.runs[0]
        for target, online in zip(targets, report.runs[1:], strict=True):
            rate = float(online.clicks.mean())
            result = evaluate_log(logged.log, target, candidates=logged.candidates, estimators=estimators,
                                  samples=samples, seed=seed)
            for name, found in result["estimates"].items():
                low, high = found["ci"]
                row: dict[str, object] = {
                    "seed": seed, "target": target, "estimator": name, "online": rate, "estimate": found["value"],
                    "ci_low": low, "ci_high": high, "error": found["value"] / rate - 1 if rate else np.nan,
                    "contains": low <= rate <= high, "ess": found["ess"], "logging_rate": result["logged_value"],
                    "warnings": len(result["warnings"])}
                rows.append(row)
                if on_row is not None:
                    on_row(row)
    return pd.DataFrame(rows)


def accuracy_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per target and estimator: seeds, mean and worst absolute relative error, seeds within +-10 %, seeds whose
    interval contains the online rate."""
    grouped = table.assign(within=table["error"].abs() <= 0.10, absolute=table["error"].abs()).groupby(
        ["target", "estimator"], sort=False)
    return grouped.agg(seeds=("seed", "size"), mean_abs_error=("absolute", "mean"),
                       worst_abs_error=("absolute", "max"), within_10pct=("within", "sum"),
                       ci_contains=("contains", "sum")).reset_index()
