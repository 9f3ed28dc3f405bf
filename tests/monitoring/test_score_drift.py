"""``psi_scores``: the PSI of the served scores over the deciles of the baseline's, per model version, weighted by
today's impressions -- by hand on small frames, and on seeded stores where a model's scores shift (raised well
above 0.25) or do not (under 0.1); rows without scores, fallback lists and versions new today are left out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.monitoring.daily import BASELINE_DAYS, DAY_SECONDS, daily_figures, day_start, psi_scores
from tailored.monitoring.drift import population_stability_index
from tailored.store import EventStore
from tailored.store.database import exposure_row

DAY = "2026-03-10"
S = day_start(DAY)
LISTS_PER_DAY, K = 100, 5


def scored(versions: list[str], scores: list[list[float]], fallback: bool = False) -> pd.DataFrame:
    """`EventStore.served_scores` rows: each version's scores (created_at 0)."""
    return pd.DataFrame({"created_at": 0.0, "model_version": np.repeat(versions, list(map(len, scores))),
                         "fallback": fallback, "score": np.concatenate(scores)})


def test_each_versions_today_is_bucketed_by_its_own_baseline_deciles_and_weighted_by_impressions() -> None:
    baseline = scored(["m1", "m2"], [list(range(1, 11)), [5.0] * 4])
    today = scored(["m1", "m2"], [[1.0, 1.0, 10.0], [4.0]])
    # m1: deciles 1.9, 2.8, ... 9.1 put each of 1..10 in its own bucket; m2: one distinct decile (5), two buckets
    m1 = population_stability_index(np.ones(10), np.array([2, 0, 0, 0, 0, 0, 0, 0, 0, 1]))
    m2 = population_stability_index(np.array([0, 4]), np.array([1, 0]))
    assert psi_scores(baseline, today) == pytest.approx((3 * m1 + 1 * m2) / 4)
    assert psi_scores(baseline, scored(["m1"], [list(range(1, 11))])) == pytest.approx(0.0, abs=1e-9)


def test_versions_new_today_and_fallback_lists_are_left_out_and_nothing_comparable_is_nan() -> None:
    baseline = scored(["m1"], [list(range(1, 11))])
    same = scored(["m1"], [list(range(1, 11))])
    assert psi_scores(baseline, pd.concat([same, scored(["m9"], [[1e6] * 50])])) == pytest.approx(0.0, abs=1e-9)
    assert psi_scores(baseline, pd.concat([same, scored(["m1"], [[-1e6] * 50], fallback=True)])) == pytest.approx(
        0.0, abs=1e-9)
    assert np.isnan(psi_scores(baseline, scored(["m9"], [[1.0]])))
    assert np.isnan(psi_scores(baseline.iloc[:0], same)) and np.isnan(psi_scores(baseline, same.iloc[:0]))
    assert np.isnan(psi_scores(scored(["m1"], [[1.0]], fallback=True), same))


def log_days(store: EventStore, rng: np.random.Generator, version: str, scale: float = 1.0, noise: float = 0.0,
             today_lists: int = 2 * LISTS_PER_DAY, with_scores: bool = True) -> None:
    """``LISTS_PER_DAY`` lists a day over the `BASELINE_DAYS` before `DAY` with the model's scores (gamma(2, 1), each
    list sorted), then ``today_lists`` on `DAY` with scores times ``scale`` plus normal ``noise``."""
    rows = []
    for day in range(-BASELINE_DAYS, 1):
        count = today_lists if day == 0 else LISTS_PER_DAY
        scores = -np.sort(-rng.gamma(2.0, 1.0, (count, K)), axis=1)
        if day == 0:
            scores = scores * scale + rng.normal(0.0, noise, scores.shape)
        at = S + day * DAY_SECONDS + rng.uniform(0, DAY_SECONDS - 1, count)
        users = rng.integers(0, 40, count)
        rows += [exposure_row(f"u{user}", version, [f"i{item}" for item in rng.choice(50, K, replace=False)],
                              scores=list(each) if with_scores else None) | {"created_at": float(when)}
                 for user, each, when in zip(users, scores, at, strict=True)]
    store.log_exposures(rows)


def psi_of_day(store: EventStore) -> float:
    rows = daily_figures(store, [DAY])
    return float(rows.query("kind == '' and metric == 'psi_scores'")["value"].iloc[0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_model_whose_scores_halve_raises_psi_scores_and_an_unchanged_one_does_not(tmp_path, seed) -> None:
    shifted, unchanged = (EventStore(f"sqlite:///{tmp_path / name}.db") for name in ("shifted", "unchanged"))
    rng = np.random.default_rng(seed)
    log_days(shifted, rng, "m1", scale=0.5, noise=0.05)
    log_days(unchanged, rng, "m1")
    drifted, stable = psi_of_day(shifted), psi_of_day(unchanged)
    assert drifted > 0.25 and stable < 0.1, (drifted, stable)
    for store in (shifted, unchanged):
        store.engine.dispose()


def test_two_models_of_different_scales_do_not_drift_when_their_traffic_shares_change(events) -> None:
    """Pooled, m2's scores (100 times m1's) taking 90 % of today's impressions instead of half would read as a large
    drift; per version, each model's scores are unchanged."""
    rng = np.random.default_rng(7)
    log_days(events, rng, "m1", today_lists=LISTS_PER_DAY // 5)
    rows = []
    for day, count in [(day, LISTS_PER_DAY) for day in range(-BASELINE_DAYS, 0)] + [(0, 9 * LISTS_PER_DAY // 5)]:
        at = S + day * DAY_SECONDS + rng.uniform(0, DAY_SECONDS - 1, count)
        rows += [exposure_row("u1", "m2", [f"i{n}" for n in range(K)], scores=list(100 * rng.gamma(2.0, 1.0, K)))
                 | {"created_at": float(when)} for when in at]
    events.log_exposures(rows)
    pooled = events.served_scores(S - BASELINE_DAYS * DAY_SECONDS, S + DAY_SECONDS)
    before, today = pooled[pooled["created_at"] < S], pooled[pooled["created_at"] >= S]
    assert psi_scores(before.assign(model_version="all"), today.assign(model_version="all")) > 0.25
    assert psi_of_day(events) < 0.1


def test_lists_logged_without_scores_are_skipped(any_events, tmp_path) -> None:
    """Old rows (no scores) alone give no figure; the scored rows beside them give the figure they give alone."""
    log_days(any_events, np.random.default_rng(3), "m1", with_scores=False)
    assert np.isnan(psi_of_day(any_events))
    log_days(any_events, np.random.default_rng(4), "m1", scale=0.5, noise=0.05)
    alone = EventStore(f"sqlite:///{tmp_path / 'alone.db'}")
    log_days(alone, np.random.default_rng(4), "m1", scale=0.5, noise=0.05)
    assert psi_of_day(any_events) == pytest.approx(psi_of_day(alone)) and psi_of_day(alone) > 0.25
    alone.engine.dispose()
