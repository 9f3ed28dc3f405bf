"""The synthetic retail generator: determinism, and each pattern the engine relies on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailored.data.columns import EVENT_TYPE, ITEM_ID, TIMESTAMP, USER_ID, VALUE
from tailored.data.io import read_table
from tailored.data.quality import QualityRules, check_quality
from tailored.data.synthetic import (
    BASKET_ID,
    CHANNEL,
    CHANNELS,
    DEVICE,
    DEVICES,
    EXTREME_PURCHASES,
    FUTURE_TIMESTAMP,
    PRODUCT_TEMPLATES,
    REGION,
    RetailData,
    generate_retail,
)
from tailored.errors import ConfigError

MALFORMED_REASONS = {
    "missing_value:item_id": 2,
    "invalid_value:value": 2,
    "below_minimum:value": 1,
    "future_timestamp:timestamp": 1,
    "unknown_id:item_id": 1,
    "duplicate_row:all_columns": 1,
}


@pytest.fixture(scope="module")
def retail() -> RetailData:
    return generate_retail()


@pytest.fixture(scope="module")
def purchases(retail: RetailData) -> pd.DataFrame:
    """Valid purchases joined with their products, with UTC date parts."""
    clean = check_quality(retail.interactions, QualityRules(min_value=1), items=retail.products).clean
    rows = clean[clean[EVENT_TYPE] == "purchase"].merge(retail.products, on=ITEM_ID)
    moments = pd.to_datetime(rows[TIMESTAMP], unit="s", utc=True)
    return rows.assign(month=moments.dt.month, day=moments.dt.day, hour=moments.dt.hour)


def test_same_seed_gives_identical_frames_and_another_seed_differs() -> None:
    first, second = generate_retail(300, 60, days=200, seed=7), generate_retail(300, 60, days=200, seed=7)
    for name in ("interactions", "customers", "products"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    other = generate_retail(300, 60, days=200, seed=8)
    assert not other.interactions.equals(first.interactions)


def test_default_size_columns_and_dtypes(retail: RetailData) -> None:
    frame = retail.interactions
    assert 50_000 <= len(frame) <= 150_000
    assert list(frame.columns) == [USER_ID, ITEM_ID, VALUE, TIMESTAMP, EVENT_TYPE, BASKET_ID, REGION]
    assert frame[VALUE].dtype == object  # the malformed rows hold text quantities
    assert frame[TIMESTAMP].dtype == np.int64
    assert set(frame[EVENT_TYPE]) == {"purchase", "view"}
    assert frame[TIMESTAMP].is_monotonic_increasing
    assert list(retail.customers.columns) == [USER_ID, "age", "gender", "segment", REGION]
    assert retail.customers["age"].between(18, 90).all()
    described = {"category", "sub_category", "price", "price_range", "tags", "title", "seasonal", "season"}
    assert described <= set(retail.products.columns)
    assert len(retail.products) == 500 and retail.products[ITEM_ID].is_unique
    assert set(retail.products["price_range"]) == {"low", "medium", "high"}
    assert retail.products["tags"].str.contains("|", regex=False).all()


def test_views_have_value_one_and_regions_come_from_customers(retail: RetailData) -> None:
    frame = retail.interactions.dropna(subset=[ITEM_ID])
    views = frame[frame[EVENT_TYPE] == "view"]
    assert (views[VALUE].astype(float) == 1.0).all()
    regions = frame[USER_ID].map(retail.customers.set_index(USER_ID)[REGION])
    assert (regions == frame[REGION]).all()


def test_without_malformed_rows_values_are_numbers_and_pass_every_rule() -> None:
    data = generate_retail(200, 60, days=365, seed=1, malformed=False)
    assert data.interactions[VALUE].dtype == np.float64
    report = check_quality(data.interactions, QualityRules(min_value=1), users=data.customers, items=data.products)
    report.raise_for_errors()
    assert len(report.rejected) == 0


@pytest.mark.parametrize(("season", "months"), [("christmas", {11, 12, 1}), ("summer", {6, 7, 8})])
def test_seasonal_products_sell_only_in_their_season(purchases: pd.DataFrame, season: str, months: set[int]) -> None:
    seasonal = purchases[purchases["season"] == season]
    assert len(seasonal) > 100
    assert set(seasonal["month"]) == months
    if season == "christmas":
        month_day = seasonal["month"] * 100 + seasonal["day"]
        assert ((month_day >= 1120) | (month_day <= 106)).all()


def test_catalogue_names_the_seasons(retail: RetailData) -> None:
    season = retail.products.set_index("title")["season"]
    assert season["Foie gras"] == "christmas"
    assert season[["Ice cream", "Sunscreen"]].tolist() == ["summer", "summer"]
    assert (retail.products["seasonal"] == (retail.products["season"] != "all_year")).all()


def test_time_of_day_patterns(purchases: pd.DataFrame) -> None:
    croissants = purchases[purchases["title"].str.endswith("Croissant")]
    wine = purchases[purchases["title"].str.endswith("Red wine")]
    assert (croissants["hour"] < 12).mean() > 0.7
    assert (wine["hour"] >= 17).mean() > 0.7


def test_weekends_are_busier(purchases: pd.DataFrame) -> None:
    weekday = pd.to_datetime(purchases[TIMESTAMP], unit="s").dt.day_of_week
    per_day = weekday.value_counts(normalize=True)
    assert per_day[5] > per_day[[0, 1, 2, 3]].max()


def test_complements_share_baskets(purchases: pd.DataFrame) -> None:
    baskets = purchases.groupby(BASKET_ID)["title"].agg(set)
    with_pasta = baskets[baskets.map(lambda titles: "Spaghetti" in titles)]
    sauce_with_pasta = with_pasta.map(lambda titles: "Pasta sauce" in titles).mean()
    sauce_overall = baskets.map(lambda titles: "Pasta sauce" in titles).mean()
    assert sauce_with_pasta > 0.5 > 5 * sauce_overall


def test_segments_prefer_categories(retail: RetailData, purchases: pd.DataFrame) -> None:
    segment = purchases[USER_ID].map(retail.customers.set_index(USER_ID)["segment"])
    baby_share = (purchases["category"] == "Baby").groupby(segment).mean()
    deli_share = (purchases["category"] == "Delicatessen").groupby(segment).mean()
    assert baby_share["family"] > 3 * baby_share["student"]
    assert deli_share["gourmet"] > 3 * deli_share["budget"]


def test_heavy_tail_with_one_extreme_buyer(purchases: pd.DataFrame) -> None:
    per_pair = purchases.groupby([USER_ID, "title"]).size().sort_values(ascending=False)
    assert per_pair.iloc[0] == EXTREME_PURCHASES
    assert per_pair.index[0][1] == "Sparkling water"
    assert per_pair.iloc[1] < EXTREME_PURCHASES / 4
    assert per_pair.median() == 1


def test_check_quality_finds_each_malformed_row(retail: RetailData) -> None:
    rules = QualityRules(min_value=1)
    report = check_quality(retail.interactions, rules, users=retail.customers, items=retail.products)
    assert report.rejected["reason"].value_counts().to_dict() == MALFORMED_REASONS
    future = report.rejected[report.rejected["reason"] == "future_timestamp:timestamp"]
    assert future[TIMESTAMP].tolist() == [FUTURE_TIMESTAMP]
    assert sorted(report.rejected.loc[report.rejected["reason"] == "invalid_value:value", VALUE]) == ["1,5", "two"]


def test_extreme_buyer_is_the_only_outlier_at_a_retail_threshold(retail: RetailData) -> None:
    report = check_quality(retail.interactions, QualityRules(min_value=1, max_count_zscore=7), items=retail.products)
    outliers = report.rejected[report.rejected["reason"] == "outlier_count:value"]
    assert len(outliers) == EXTREME_PURCHASES
    assert outliers[USER_ID].nunique() == 1 and outliers[ITEM_ID].nunique() == 1


def test_write_round_trips_through_csv_with_the_same_problems(tmp_path) -> None:
    small = generate_retail(300, 60, days=400, seed=3)
    directory = small.write(tmp_path / "retail")
    assert sorted(path.name for path in directory.iterdir()) == ["complements.csv", "customers.csv", "interactions.csv",
                                                                 "products.csv"]
    text = read_table(directory / "interactions.csv")
    assert len(text) == len(small.interactions)
    report = check_quality(text, QualityRules(min_value=1), items=read_table(directory / "products.csv"))
    assert report.rejected["reason"].value_counts().to_dict() == MALFORMED_REASONS


def test_invalid_sizes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=f"at least {len(PRODUCT_TEMPLATES)}"):
        generate_retail(n_products=10)
    with pytest.raises(ConfigError, match="days=0"):
        generate_retail(days=0)


def test_the_scale_set_is_seeded_sized_and_clustered() -> None:
    from tailored.data.synthetic import generate_scale

    frame = generate_scale(users=5_000, items=2_000, per_user=8.0, tastes=20, seed=3)
    assert frame.equals(generate_scale(users=5_000, items=2_000, per_user=8.0, tastes=20, seed=3))
    assert not frame.duplicated().any() and frame["user_id"].nunique() == 5_000 and 6.5 < len(frame) / 5_000 < 8.5
    assert frame["item_id"].str.fullmatch(r"i\d+").all() and frame["user_id"].str.fullmatch(r"u\d+").all()
    # tastes: pairs of items are bought together by more users than after shuffling items across users
    def co_bought(table: pd.DataFrame) -> float:
        pairs = table.merge(table, on="user_id").query("item_id_x < item_id_y")
        return float(pairs.groupby(["item_id_x", "item_id_y"]).size().mean())

    shuffled = frame.assign(item_id=np.random.default_rng(0).permutation(frame["item_id"].to_numpy()))
    assert co_bought(frame) > 1.3 * co_bought(shuffled)


@pytest.mark.parametrize("seed", [3, 42])
def test_context_effects_change_what_is_bought_on_each_device_channel_and_day(seed: int) -> None:
    """``context_effects``: the same customers and baskets (same days and hours), each with a device and a channel,
    and the planted category shifts visible in the purchases (as generated; several seeds); the default data set is
    untouched (no such columns)."""
    plain, shifted = generate_retail(seed=seed), generate_retail(seed=seed, context_effects=True)
    assert DEVICE not in plain.interactions and CHANNEL not in plain.interactions
    baskets = [frame.interactions.groupby(BASKET_ID).agg(user=(USER_ID, "first"), day=(TIMESTAMP, "min"))
               for frame in (plain, shifted)]
    same = baskets[0].index.intersection(baskets[1].index)
    same = same[same <= baskets[0].index.max() - EXTREME_PURCHASES]  # the extreme buyer's come last, drawn after
    assert len(same) == len(baskets[0]) - EXTREME_PURCHASES
    assert (baskets[0].loc[same, "user"] == baskets[1].loc[same, "user"]).all()
    assert (baskets[0].loc[same, "day"] // 3600 - baskets[1].loc[same, "day"] // 3600).abs().max() <= 1
    rows = shifted.interactions[shifted.interactions[EVENT_TYPE] == "purchase"].merge(shifted.products, on=ITEM_ID)
    assert set(rows[DEVICE]) == set(DEVICES) and set(rows[CHANNEL]) == set(CHANNELS)

    def share(category: str, column: str | pd.Series) -> pd.Series:
        return (rows["category"] == category).groupby(rows[column] if isinstance(column, str) else column).mean()

    assert share("Snacks", DEVICE)["mobile"] > 3 * share("Snacks", DEVICE)["desktop"]
    assert share("Household", DEVICE)["desktop"] > 2 * share("Household", DEVICE)["mobile"]
    assert share("Delicatessen", CHANNEL)["email"] > 2 * share("Delicatessen", CHANNEL)["web"]
    assert share("Fresh", CHANNEL)["app"] > 1.3 * share("Fresh", CHANNEL)["web"]
    weekend = pd.to_datetime(rows[TIMESTAMP], unit="s", utc=True).dt.day_of_week >= 5
    assert share("Household", weekend)[False] > 1.3 * share("Household", weekend)[True]
    assert generate_retail(seed=seed, context_effects=True).interactions.equals(shifted.interactions)
