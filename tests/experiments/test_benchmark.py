from __future__ import annotations

import numpy as np

from tailored.benchmarks.experiments import GENERATORS, assignment, cuped, daily_moments, peeking


def test_daily_moments_grow_with_the_days_and_carry_the_lift() -> None:
    control, treatment = daily_moments(GENERATORS["busy"], runs=3, users=4000, lift=0.5, days=4, seed=0)
    assert control.n.shape == (3, 4)
    assert (np.diff(control.n, axis=-1) >= 0).all() and (np.diff(control.x, axis=-1) > 0).all()
    rates = treatment.y[:, -1] / treatment.x[:, -1] / (control.y[:, -1] / control.x[:, -1])
    assert np.allclose(rates, 1.5, atol=0.1)
    assert np.allclose(control.y[:, -1] / control.x[:, -1], GENERATORS["busy"].rate, rtol=0.1)


def test_a_large_lift_ships_and_an_a_a_fixed_test_peeked_calls_more_than_the_rule() -> None:
    shipped = peeking(0.5, runs=4, users=3000, generators=["busy"], days=5)
    assert shipped.loc[0, "ship"] == 1.0 and shipped.loc[0, "roll_back"] == 0.0
    a_a = peeking(0.0, runs=40, users=1500, generators=["typical", "sparse"], days=7, seed=3)
    assert a_a["generator"].tolist() == ["typical", "sparse"] and (a_a["users_per_arm"] == 1500).all()
    assert (a_a["ship"] + a_a["roll_back"] <= a_a["fixed_test_peeked"]).all()
    assert (a_a["group_sequential_ship"] + a_a["group_sequential_roll_back"] <= a_a["fixed_test_peeked"]).all()


def test_cuped_narrows_where_the_pre_period_predicts_and_not_where_it_does_not() -> None:
    table = cuped(runs=4, users=5000, predictive=(1.0, 0.0))
    assert table.loc[0, "width_ratio"] < 0.85 and table.loc[0, "correlation"] > 0.5
    assert table.loc[1, "width_ratio"] > 0.97


def test_assignment_figures() -> None:
    table = assignment(users=20_000)
    assert abs(table.loc[0, "control_share"] - 0.5) < 0.02 and table.loc[0, "seconds"] >= 0
