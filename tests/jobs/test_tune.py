"""`tailored.jobs.tune.tune`: the defaults with every weighting first (auto's choice first), each recorded with its
real validation score, the best trial the argmax (argmin for rating metrics) of the recorded ones, a clearly better
non-default value found, deterministic for a seed, validation carved from the given (training) data only, trials
reported and stopped by a timeout, EASE trials sharing one eigendecomposition."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tailored.jobs.tune as tuning
from tailored.data.dataset import Dataset
from tailored.data.transforms import WEIGHTINGS, apply_weighting
from tailored.errors import ConfigError
from tailored.models.base import params_of
from tailored.models.ease import EASEScorer, GramSpectrum, sharing_spectra
from tailored.split import carve_validation, split_per_user
from tailored.pipeline.recommender import build_recommender
from tailored.jobs.tune import score_on, tune, validation_method
from tests.pipeline.test_auto_weighting import play_counts
from tests.cli.helpers import cli, flat, ok

KEY = ["user_id", "item_id", "timestamp"]


def implicit_dataset(seed: int = 0) -> Dataset:
    """Users in two taste groups over 30 items, unique pairs, timestamps."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(60):
        group = np.arange(15) if u % 2 else np.arange(15, 30)
        p = np.full(30, 0.2 / 15)
        p[group] = 0.8 / 15
        for j, i in enumerate(rng.choice(30, 10, replace=False, p=p)):
            rows.append((f"u{u}", f"i{i}", 1.0, 1_700_000_000 + 100 * u + j))
    return Dataset.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"]))


def ratings_dataset() -> Dataset:
    rng = np.random.default_rng(1)
    users, items = rng.normal(size=(40, 2)), rng.normal(size=(25, 2))
    rows = []
    for u in range(40):
        for i in rng.choice(25, 12, replace=False):
            value = float(np.clip(np.rint(3 + users[u] @ items[i] + rng.normal(scale=0.3)), 1, 5))
            rows.append((f"r{u}", f"m{i}", value, 1_700_000_000 + 50 * u + int(i)))
    return Dataset.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"]))


def rows_of(dataset: Dataset) -> Counter:
    return Counter(map(tuple, dataset.to_frame()[KEY].astype(str).to_numpy()))


def walks() -> Dataset:
    """200 users each walking 10 steps along a line of items (i07, i08, ... in time order): the next item follows the
    latest one, so weighting recent items (EASE's ``recency_half_life``) predicts it, and equal weights cannot tell
    the walk's two ends apart."""
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{start + step:02d}", 1.0, 1_700_000_000 + 1000 * u + step)
            for u, start in enumerate(rng.integers(1, 40, size=200)) for step in range(10)]
    return Dataset.from_frame(pd.DataFrame(rows, columns=["user_id", "item_id", "value", "timestamp"]))


def best_recorded(result: tuning.TuneResult, minimise: bool = False) -> tuple[float, dict[str, object]]:
    """The score and parameters of the first recorded trial with the best score."""
    trials = result.trials
    row = trials.loc[trials["value"].idxmin() if minimise else trials["value"].idxmax()]
    params = {name.removeprefix("params_"): row[name] for name in trials.columns if name.startswith("params_")}
    return row["value"], params


@pytest.fixture(scope="module")
def data() -> Dataset:
    return implicit_dataset()


@pytest.fixture(scope="module")
def ease_result(data: Dataset) -> tuning.TuneResult:
    return tune(data, "ease", "ndcg@10", trials=5, seed=3)


def test_defaults_with_every_weighting_are_the_first_trials() -> None:
    ratings = ratings_dataset()
    result = tune(ratings, "ease", "ndcg@10", trials=6, seed=3)
    trials = result.trials
    assert len(trials) == 6 and trials["number"].tolist() == list(range(6))
    defaults = params_of(build_recommender("ease", {}).scorer)
    # star ratings: auto chooses binary, tried first; then the defaults with every other weighting
    assert trials["params_weighting"].tolist()[:4] == ["binary", "raw", "log1p", "confidence"]
    for _, trial in trials.iloc[:4].iterrows():
        assert {name: trial[f"params_{name}"] for name in ("reg", "recency_half_life")} == {
            name: defaults[name] for name in ("reg", "recency_half_life")}
    assert result.default_value == pytest.approx(trials.iloc[0]["value"])
    # each default trial is recorded with its real score on the validation split tune carves (per_user)
    split = carve_validation(ratings, method="per_user", seed=3)
    assert result.default_value == pytest.approx(score_on(build_recommender("ease", {}), split, "ndcg@10"))
    for _, trial in trials.iloc[:4].iterrows():
        defaults_weighted = build_recommender("ease", {"weighting": trial["params_weighting"]})
        assert trial["value"] == pytest.approx(score_on(defaults_weighted, split, "ndcg@10"))


def test_constant_values_keep_the_auto_weighting_and_search_the_rest(data: Dataset,
                                                                     ease_result: tuning.TuneResult) -> None:
    """Every pair 1.0: the weightings differ by a constant factor, so no trial is spent on them."""
    trials = ease_result.trials
    assert "params_weighting" not in trials.columns and ease_result.best_params["weighting"] == "binary"
    assert len(trials) == 5
    assert (trials.iloc[0]["params_reg"], trials.iloc[0]["params_recency_half_life"]) == (400.0, math.inf)
    assert trials["params_reg"].nunique() == 5
    split = carve_validation(data, method="per_user", seed=3)
    assert ease_result.default_value == pytest.approx(score_on(build_recommender("ease", {}), split, "ndcg@10"))


def test_heavy_tailed_counts_try_log1p_defaults_first() -> None:
    plays = play_counts(n_users=40, n_items=150)  # fewer users than items: EASE trials share a spectrum
    result = tune(Dataset.from_frame(plays), "ease", "ndcg@10", trials=6, seed=0)
    first = result.trials.iloc[0]
    assert first["params_weighting"] == "log1p" and first["params_reg"] == 400.0
    assert result.default_value == pytest.approx(first["value"])
    assert set(result.trials["params_weighting"].iloc[:4]) == set(WEIGHTINGS)
    value, params = best_recorded(result)
    assert result.best_value == value and result.best_params == params


def test_shared_spectrum_scores_as_the_direct_fit() -> None:
    """Within `sharing_spectra`, EASE fits on one matrix share one eigendecomposition and score what the dense
    ``B`` scores (users fewer than items / sqrt(2): the spectral path)."""
    data = apply_weighting(Dataset.from_frame(play_counts(n_users=40, n_items=150)), "log1p")
    assert 2 * data.n_users**2 < data.n_items**2
    users, items = np.arange(data.n_users), np.array([0, 5, 17, data.n_items - 1])
    computed = []
    original = GramSpectrum.of
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(GramSpectrum, "of", classmethod(lambda cls, m: computed.append(m.shape) or original(m)))
        for reg in (10.0, 400.0, 5000.0):
            direct = EASEScorer(reg=reg).fit(data)
            with sharing_spectra():
                shared = EASEScorer(reg=reg).fit(data)
                again = EASEScorer(reg=reg * 2).fit(data)
            assert not hasattr(shared, "weights_") and hasattr(direct, "weights_")
            for fitted, expected in ((shared, direct), (again, EASEScorer(reg=reg * 2).fit(data))):
                scale = np.abs(expected.score(users)).max()
                np.testing.assert_allclose(fitted.score(users), expected.score(users), rtol=0, atol=1e-5 * scale)
                np.testing.assert_allclose(fitted.score(users, items), expected.score(users, items), rtol=0,
                                           atol=1e-5 * scale)
    assert computed == [(data.n_users, data.n_items)] * 3, "one decomposition per sharing block and matrix"


def test_trials_are_reported_and_the_timeout_stops_the_search(data: Dataset) -> None:
    reports: list[tuning.TrialReport] = []
    result = tune(data, "ease", "ndcg@10", trials=6, seed=3, on_trial=reports.append)
    assert [r.number for r in reports] == list(range(6))
    assert [r.value for r in reports] == pytest.approx(result.trials["value"].tolist())
    assert [r.best_value for r in reports] == pytest.approx(result.trials["value"].cummax().tolist())
    assert all(a.elapsed <= b.elapsed for a, b in zip(reports, reports[1:]))
    stopped = tune(data, "ease", "ndcg@10", trials=6, seed=3, timeout=1e-6)
    assert len(stopped.trials) == 1 and stopped.trials.iloc[0]["params_reg"] == 400.0  # the defaults first
    with pytest.raises(ConfigError, match="timeout must be a positive number of seconds, got 0"):
        tune(data, "ease", "ndcg@10", trials=2, timeout=0)


def test_cli_tune_prints_a_line_per_trial_and_honours_the_timeout(tmp_path: Path) -> None:
    play_counts(n_users=40, n_items=150).to_csv(tmp_path / "plays.csv", index=False)
    done = ok(cli("tune", "--interactions", "plays.csv", "--algorithm", "ease", "--trials", "3", "--output",
                  "best.json", cwd=tmp_path))
    lines = [line for line in done.stderr.splitlines() if line.startswith("trial ")]
    assert len(lines) == 3, done.stderr
    assert re.fullmatch(r"trial 1/3 reg=400 recency_half_life=inf weighting=log1p: ndcg@10 (\d\.\d{4}) "
                        r"\(best \1, trial 1\) \d+\.\d s", lines[0]), lines[0]
    assert lines[1].startswith("trial 2/3 reg=400 recency_half_life=inf weighting=raw: ndcg@10 ")
    assert set(json.loads((tmp_path / "best.json").read_text())) == {"reg", "recency_half_life", "weighting"}
    stopped = ok(cli("tune", "--interactions", "plays.csv", "--algorithm", "ease", "--trials", "20", "--timeout",
                     "0.001", "--output", "stopped.json", cwd=tmp_path))
    assert [line[:10] for line in stopped.stderr.splitlines() if line.startswith("trial ")] == ["trial 1/20"]
    refused = cli("tune", "--interactions", "plays.csv", "--algorithm", "ease", "--timeout", "-5", "--output",
                  "never.json", cwd=tmp_path)
    assert refused.returncode == 2 and "timeout must be a positive number of seconds, got -5" in flat(refused.stderr)
    assert not (tmp_path / "never.json").exists()


def test_the_best_is_the_argmax_of_the_recorded_trials(data: Dataset, ease_result: tuning.TuneResult) -> None:
    assert ease_result.validation == "per_user" and ease_result.metric == "ndcg@10"
    value, params = best_recorded(ease_result)
    assert ease_result.best_value == value
    assert ease_result.best_params == params | {"weighting": "binary"}  # the weighting auto chose, held fixed
    assert set(ease_result.best_params) == set(tuning.search_space("ease"))
    split = carve_validation(data, method="per_user", seed=3)  # the best parameters score what was recorded
    assert score_on(build_recommender("ease", ease_result.best_params), split, "ndcg@10") == pytest.approx(value)


def test_a_clearly_better_value_than_the_default_is_found() -> None:
    """On walks the next item follows the latest one: a short recency half-life (not the default, inf) wins."""
    result = tune(walks(), "ease", "hr@1", trials=6, seed=0, fixed={"reg": 10.0})
    assert result.validation == "leave_last_out" and result.trials.iloc[0]["params_recency_half_life"] == math.inf
    assert result.best_params["recency_half_life"] <= 10.0
    assert result.default_value < 0.7 and result.best_value > 0.9


def test_tuning_is_deterministic_for_a_seed(data: Dataset, ease_result: tuning.TuneResult) -> None:
    again = tune(data, "ease", "ndcg@10", trials=5, seed=3)
    pd.testing.assert_frame_equal(again.trials, ease_result.trials)
    assert again.best_params == ease_result.best_params and again.best_value == ease_result.best_value


def test_validation_is_carved_from_the_given_training_data_only(monkeypatch: pytest.MonkeyPatch) -> None:
    full = implicit_dataset(seed=4)
    outer = split_per_user(full, 0.2, seed=11)
    carved = []

    def spy(*args, **kwargs):
        result = carve_validation(*args, **kwargs)
        carved.append((args, kwargs, result))
        return result

    monkeypatch.setattr(tuning, "carve_validation", spy)
    result = tune(outer.train, "ease", "hr@10", trials=2, seed=5)
    assert len(carved) == 1
    (given, *_), _, split = carved[0]
    assert given is outer.train
    assert result.validation == "leave_last_out"
    inner = rows_of(split.train) + rows_of(split.test)
    assert inner == rows_of(outer.train), "validation split = a partition of the training data"
    assert not set(inner) & set(rows_of(outer.test)), "no test row reaches tuning"
    assert split.test.to_frame()["user_id"].is_unique  # leave-last-out: one validation row per user


@pytest.mark.parametrize(("metric", "method"), [("hr@10", "leave_last_out"), ("HR@5", "leave_last_out"),
                                                 ("rmse", "random"), ("mae", "random"), ("ndcg@10", "per_user"),
                                                 ("recall@20", "per_user")])
def test_validation_method_follows_the_metric(metric: str, method: str) -> None:
    assert validation_method(metric) == method


def test_explicit_validation_and_fixed_parameters(data: Dataset) -> None:
    result = tune(data, "ease", "recall@10", trials=2, seed=1, validation="random", fixed={"reg": 50.0})
    assert result.validation == "random"
    assert result.best_params["reg"] == 50.0
    assert "params_reg" not in result.trials.columns


def test_rating_metric_is_minimised_for_mf() -> None:
    ratings = ratings_dataset()
    result = tune(ratings, "mf", "rmse", trials=4, seed=2, fixed={"epochs": 30, "burn_in": 5})
    assert result.validation == "random" and result.metric == "rmse"
    value, params = best_recorded(result, minimise=True)
    assert result.best_value == value and result.best_params == params | {"epochs": 30, "burn_in": 5}
    assert 0 < result.best_value < 4


def test_unknown_metric_and_algorithm_fail_early(data: Dataset) -> None:
    with pytest.raises(ConfigError):
        tune(data, "ease", "nonsense@10", trials=1)
    with pytest.raises(ConfigError, match="nope"):
        tune(data, "nope", "ndcg@10", trials=1)


def test_rating_metric_with_implicit_algorithm_is_rejected(data: Dataset) -> None:
    with pytest.raises(ConfigError, match="rmse"):
        tune(data, "ease", "rmse", trials=1)


def test_a_scorer_narrows_its_space_to_what_the_data_allows() -> None:
    """The ranker without timestamps is searched over the carve that reads no time only, so no trial fails there;
    with them, over every carve."""
    pytest.importorskip("lightgbm")
    timed = implicit_dataset()
    untimed = Dataset.from_frame(timed.to_frame().drop(columns="timestamp"))
    assert tuning.search_space("ranker", untimed)["carve"].options == ("user",)
    assert tuning.search_space("ranker", timed)["carve"].options == ("time", "user", "last")
    result = tune(untimed, "ranker", trials=8, fixed={"retrievers": "ease,popularity", "candidates": 10})
    assert len(result.trials) == 8 and set(result.trials["params_carve"]) == {"user"}
