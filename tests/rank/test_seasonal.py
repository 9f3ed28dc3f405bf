"""Seasonality learned from timestamps: Christmas-only items sink in March and rise in December."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.models import create_scorer
from tailored.pipeline.recommender import Recommender
from tailored.rank import SeasonalAdjuster, create_stage
from tailored.query import Context, parse_context
from tailored.rank.base import Catalogue, bare_request
from tailored.rank.seasonal import week_of_year
from tailored.registry.model_dir import load_model, save_model


def two_years(seed: int = 0) -> pd.DataFrame:
    """60 users buy all-year items every week and, from 25 November to 5 January, festive items too."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2024-01-01", "2025-12-31", freq="D", tz="UTC")
    rows = []
    for day in days:
        festive = (day.month == 12) or (day.month == 11 and day.day >= 25) or (day.month == 1 and day.day <= 5)
        for user in rng.choice(60, 6, replace=False):
            item = f"fest{rng.integers(5)}" if festive and rng.random() < 0.6 else f"year{rng.integers(200)}"
            rows.append((f"u{user}", item, int(day.timestamp()) + int(rng.integers(86_400))))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


@pytest.fixture(scope="module")
def seasonal_model() -> tuple[Recommender, list[str]]:
    frame = two_years()
    recommender = Recommender(create_scorer("popularity"), exclude_seen=False, stages=[SeasonalAdjuster()])
    recommender.fit(Dataset.from_frame(frame))  # repeat purchases allowed: every user has bought nearly everything
    return recommender, frame["user_id"].unique().tolist()


def festive_share(recommender: Recommender, users: list[str], date: str) -> float:
    frame = recommender.recommend(users, n=5, context=parse_context([f"date={date}"]))
    return float(frame["item_id"].str.startswith("fest").mean())


def test_festive_items_sink_in_march_and_rise_in_december(seasonal_model) -> None:
    recommender, users = seasonal_model
    assert festive_share(recommender, users, "2026-03-15") <= 0.01
    assert festive_share(recommender, users, "2026-12-15") >= 0.6
    plain = Recommender(create_scorer("popularity"), exclude_seen=False).fit(Dataset.from_frame(two_years()))
    assert festive_share(plain, users, "2026-03-15") == festive_share(plain, users, "2026-12-15")


def test_the_stage_is_saved_with_the_model(seasonal_model, tmp_path) -> None:
    recommender, users = seasonal_model
    save_model(recommender, tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    context = Context(pd.Timestamp("2026-12-20", tz="UTC").to_pydatetime())
    pd.testing.assert_frame_equal(recommender.recommend(users[:5], 5, context=context),
                                  loaded.recommend(users[:5], 5, context=context))


def test_less_than_a_year_of_history_learns_no_season() -> None:
    frame = two_years()
    short = frame[frame["timestamp"] < pd.Timestamp("2024-08-01", tz="UTC").timestamp()]
    stage = SeasonalAdjuster().fit(Dataset.from_frame(short))
    scores = np.array([[3.0, 1.0, -np.inf]], np.float32)
    np.testing.assert_array_equal(stage.adjust(scores, bare_request(1, Catalogue(np.arange(3)))), scores)


def test_context_parsing_and_clear_errors() -> None:
    context = parse_context(["date=2026-12-15T19:30", "lat=48.85", "lon=2.35", "device=mobile"])
    assert context.moment.month == 12 and context.moment.hour == 19
    assert (context.latitude, context.longitude, context.device) == (48.85, 2.35, "mobile")
    with pytest.raises(ConfigError, match="ISO-8601"):
        parse_context(["date=someday"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_context(["december"])
    with pytest.raises(ConfigError, match="Unknown stage 'weather'"):
        create_stage("weather")


def test_command_line_stage_and_context(tmp_path) -> None:
    from tests.cli.helpers import cli, ok

    two_years().to_csv(tmp_path / "history.csv", index=False)
    pd.DataFrame({"user_id": [f"u{u}" for u in range(60)]}).to_csv(tmp_path / "users.csv", index=False)
    ok(cli("train", "--interactions", "history.csv", "--algorithm", "item-knn", "--stage", "seasonal",
           "--model-dir", "model", cwd=tmp_path))
    shares = {}
    for date in ("2026-03-15", "2026-12-15"):
        ok(cli("recommend", "--model-dir", "model", "--users", "users.csv", "--k", "3", "--context", f"date={date}",
               "--output", f"{date}.csv", cwd=tmp_path))
        shares[date] = pd.read_csv(tmp_path / f"{date}.csv")["item_id"].str.startswith("fest").mean()
    assert shares["2026-03-15"] <= 0.01 < shares["2026-12-15"] <= 1 / 3, shares  # season-cap: 1 slot of 3
    bad = cli("recommend", "--model-dir", "model", "--users", "users.csv", "--context", "date=soon",
              "--output", "x.csv", cwd=tmp_path)
    assert bad.returncode == 2 and "ISO-8601" in bad.stderr and not (tmp_path / "x.csv").exists()


def test_reasons_name_the_season(seasonal_model) -> None:
    recommender, users = seasonal_model
    december = recommender.recommend(users[:3], 3, context=parse_context(["date=2026-12-15"]), explain=True)
    assert december["reasons"].str.contains(r"in season x\d", regex=True).all()
    lift = recommender.stages[0].lift_
    items = np.array([[0, -1]])
    week = int(week_of_year(np.array([int(pd.Timestamp("2026-03-15", tz="UTC").timestamp())]))[0])
    assert week == 10  # day 74 of the year
    request = bare_request(1, Catalogue(np.arange(lift.shape[0])), parse_context(["date=2026-03-15"]))
    reasons = recommender.stages[0].explain(items, request)
    expected = lift[0, week]
    assert reasons[0, 1] == ""
    assert reasons[0, 0] == "" if 2 / 3 < expected < 1.5 else f"x{expected:.1f}" in reasons[0, 0]
