"""Purchase histories with seasons, written independently of `tailored.data.synthetic`, to check that learned
seasonality generalises: Christmas items sell only in a Christmas window, summer items only in a summer window,
all-year items all year, and every customer has tastes across several groups (each group has items of each kind).
Season lengths, item popularity (a seasonal item may be the best seller overall) and years of history vary."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DAY = 86_400


@dataclass(frozen=True)
class Shop:
    """The knobs of one history; windows are (month, day) pairs, a window whose end precedes its start crosses the
    new year."""

    years: int = 2
    first_year: int = 2023
    first_day: str = "01-01"
    """MM-DD on which the history starts; it lasts ``years`` years."""
    customers: int = 500
    all_year_items: int = 200
    christmas_items: int = 20
    summer_items: int = 20
    groups: int = 6
    christmas: tuple[tuple[int, int], tuple[int, int]] = ((11, 25), (1, 5))
    summer: tuple[tuple[int, int], tuple[int, int]] = ((6, 1), (8, 31))
    purchases_per_day: float = 0.12
    season_appeal: float = 3.0
    """In their season, seasonal items' weights are multiplied by this (people come for them)."""
    seasonal_bestseller: bool = False
    seasonal_tastes: bool = False
    """Christmas items form one taste group and summer items another (some customers love the season), instead of
    being spread over the groups like the other items."""
    seed: int = 0


def in_window(days: pd.DatetimeIndex, window: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    month_day = days.month * 100 + days.day
    start, end = window[0][0] * 100 + window[0][1], window[1][0] * 100 + window[1][1]
    if start <= end:
        return np.asarray((month_day >= start) & (month_day <= end))
    return np.asarray((month_day >= start) | (month_day <= end))


def purchases(shop: Shop) -> pd.DataFrame:
    """``user_id, item_id, timestamp`` rows; item ids say their kind: ``xmas…``, ``summer…``, ``year…``."""
    rng = np.random.default_rng(shop.seed)
    kinds = np.repeat(np.array(["year", "xmas", "summer"]),
                      [shop.all_year_items, shop.christmas_items, shop.summer_items])
    ids = np.array([f"{kind}{i:03d}" for i, kind in enumerate(kinds)])
    popularity = rng.lognormal(0.0, 1.0, len(ids))
    if shop.seasonal_bestseller:  # sells more over the whole history than any all-year item, in a few weeks
        popularity[shop.all_year_items] = 40 * popularity.max()
    group = rng.integers(shop.groups - 2 * shop.seasonal_tastes, size=len(ids))
    if shop.seasonal_tastes:
        group[kinds == "xmas"], group[kinds == "summer"] = shop.groups - 2, shop.groups - 1
    tastes = rng.dirichlet(np.full(shop.groups, 0.7), size=shop.customers)  # every customer likes several groups
    activity = rng.lognormal(0.0, 0.6, shop.customers)
    start = pd.Timestamp(f"{shop.first_year}-{shop.first_day}", tz="UTC")
    days = pd.date_range(start, start + pd.DateOffset(years=shop.years) - pd.Timedelta(days=1), freq="D")
    states = np.where(in_window(days, shop.christmas), 1, np.where(in_window(days, shop.summer), 2, 0))
    rows = []
    for state in range(3):
        in_season = ((kinds == "xmas") & (state == 1)) | ((kinds == "summer") & (state == 2))
        available = (kinds == "year") + shop.season_appeal * in_season
        state_days = days[states == state]
        counts = rng.poisson(np.outer(activity, np.full(len(state_days), shop.purchases_per_day)))
        user, day = np.nonzero(counts)
        user, day = np.repeat(user, counts[user, day]), np.repeat(day, counts[user, day])
        weights = tastes[:, group] * popularity * available
        cumulative = np.cumsum(weights, axis=1)
        draws = rng.random(len(user)) * cumulative[user, -1]
        item = (cumulative[user] < draws[:, None]).sum(axis=1)
        midnight = (state_days[day] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        seconds = midnight + rng.integers(8 * 3600, 20 * 3600, len(user))
        rows.append(pd.DataFrame({"user_id": [f"c{u:04d}" for u in user], "item_id": ids[item], "timestamp": seconds}))
    return pd.concat(rows, ignore_index=True).sort_values("timestamp", kind="stable").reset_index(drop=True)
