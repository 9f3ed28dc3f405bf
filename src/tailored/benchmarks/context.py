"""`tailored benchmark context`: does the learned second stage learn what the context changes (issue 29)?

The synthetic retail history with its planted context effects (`generate_retail(context_effects=True)`: device,
channel and weekend change which categories are bought, and some products sell in the morning, others in the
evening), purchases only, split in time: the last ``test_days`` days are the test. Each test basket is asked in its
own context -- its device, its channel, and a date of its weekday and hour in the test period -- and scored by
NDCG@10 of the items its customer bought in that context that they had not bought before (seen items excluded, full
ranking); one value per (customer, context), the mean over them, and a paired test of each model against the ranker
without context.

Then the time-of-day check: the share of the test's customers whose top-10 list holds more morning products (the
generator's breakfast daypart) than evening ones, for a Tuesday 08:00 request and a Tuesday 19:30 one, beside ease
with the hand-crafted time-of-day stage (docs/stages.md).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tailored.data.activity import DAY
from tailored.data.columns import TIMESTAMP, USER_ID
from tailored.data.dataset import Dataset
from tailored.data.synthetic import generate_retail, product_dayparts
from tailored.eval.evaluator import ranked_lists
from tailored.eval.metrics import metric
from tailored.eval.significance import paired_test
from tailored.models.ranker_features import time_levels
from tailored.pipeline.recommender import Recommender, build_recommender
from tailored.query import Context
from tailored.rank.time_of_day import TimeOfDayAdjuster
from tailored.split import Split
from tailored.split.temporal import split_temporal

CONTEXT_COLUMNS = ("device", "channel")
BASELINE = "ranker, no context"
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "ease": ("ease", {}),
    BASELINE: ("ranker", {"context": "none"}),
    "ranker, device + channel (default)": ("ranker", {}),
    "ranker, device + channel + hour + weekday": ("ranker", {"context": "auto,hour,weekday"}),
}
"""Name -> (algorithm, parameters); every ranker with its default retrievers."""
MORNING, EVENING = "2026-03-17T08:00", "2026-03-17T19:30"  # a Tuesday
Say = Callable[[str], None]


@dataclass(frozen=True)
class ContextWorld:
    """The benchmark's data: the split, and each test row's context."""

    split: Split
    contexts: pd.DataFrame
    """Per test row: device, channel, weekday and hour (UTC)."""
    dayparts: pd.Series
    """Per item id: the generator's daypart (morning, evening, any)."""

    @classmethod
    def generate(cls, customers: int, products: int, days: int, test_days: float, seed: int) -> ContextWorld:
        data = generate_retail(customers, products, days=days, seed=seed, malformed=False, context_effects=True)
        purchases = data.interactions[data.interactions.event_type == "purchase"]
        frame = purchases[[USER_ID, "item_id", "value", TIMESTAMP, *CONTEXT_COLUMNS]]
        dataset = Dataset.from_frame(frame, users=data.customers, items=data.products)
        split = split_temporal(dataset, cutoff=float(frame[TIMESTAMP].max()) - test_days * DAY)
        test = split.test.interactions
        seconds = test[TIMESTAMP].to_numpy(np.float64)
        contexts = test[list(CONTEXT_COLUMNS)].assign(weekday=time_levels("weekday", seconds),
                                                       hour=time_levels("hour", seconds))
        return cls(split, contexts.reset_index(drop=True), product_dayparts(data.products))


def context_learned(customers: int = 2000, products: int = 500, days: int = 730, test_days: float = 28.0,
                    seed: int = 42, models: Mapping[str, tuple[str, dict[str, Any]]] | None = None,
                    say: Say = lambda text: None) -> dict[str, pd.DataFrame]:
    """The accuracy table (NDCG@10 per model, its 95 % interval, the paired difference to the ranker without
    context), the time-of-day table, and the data's figures."""
    world = ContextWorld.generate(customers, products, days, test_days, seed)
    say(f"{len(world.split.train):,} training purchases, {len(world.split.test):,} test purchases; "
        f"{world.contexts.drop_duplicates().shape[0]:,} test contexts")
    per_group, fitted, seconds = {}, {}, {}
    for name, (algorithm, params) in (MODELS if models is None else models).items():
        start = time.perf_counter()
        fitted[name] = build_recommender(algorithm, params).fit(world.split.train)
        seconds[name] = time.perf_counter() - start
        per_group[name] = context_ndcg(fitted[name], world)
        say(f"{name}: NDCG@10 {per_group[name].mean():.4f} (fit {seconds[name]:.1f} s)")
    accuracy = accuracy_table(per_group, seconds)
    fitted["ease + time-of-day stage"] = stage_model(world.split.train)
    return {"accuracy": accuracy, "time of day": time_of_day_table(fitted, world)}


def context_ndcg(recommender: Recommender, world: ContextWorld) -> pd.Series:
    """NDCG@10 per (customer, context) of the test, each asked in its context: (user id, context) -> value."""
    test, values = world.split.test, []
    period = dt.datetime.fromtimestamp(float(test.interactions[TIMESTAMP].min()), dt.UTC)
    monday = (period + dt.timedelta(days=7 - period.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    for (device, channel, weekday, hour), rows in world.contexts.groupby(["device", "channel", "weekday", "hour"]):
        moment = monday + dt.timedelta(days=int(weekday), hours=int(hour), minutes=30)
        group = test.subset(np.isin(np.arange(len(test)), rows.index.to_numpy()))
        lists = ranked_lists(recommender, world.split.train, group, 10,
                             context=Context(moment=moment, device=str(device), channel=str(channel)))
        scored = lists.n_relevant > 0
        users = np.unique(group.users.ids(group.user_index))
        label = f"{device}/{channel}/{weekday}/{hour}"
        values.append(pd.Series(metric("ndcg@10")(lists)[scored], index=[f"{user}@{label}" for user in
                                                                         users[scored]]))
    return pd.concat(values)


def accuracy_table(per_group: Mapping[str, pd.Series], seconds: Mapping[str, float]) -> pd.DataFrame:
    """One row per model: the mean over (customer, context), its bootstrap interval, the paired difference to
    `BASELINE` with its interval and p-values."""
    rows = []
    for name, values in per_group.items():
        row: dict[str, Any] = {"model": name, "ndcg@10": values.mean(), "groups": len(values),
                               "fit_s": seconds[name]}
        if name != BASELINE and BASELINE in per_group:
            test = paired_test(values, per_group[BASELINE])
            row |= {"vs no context": test.mean_difference, "low": test.ci_low, "high": test.ci_high,
                    "t-test p": test.t_pvalue}
        rows.append(row)
    return pd.DataFrame(rows)


def stage_model(train: Dataset) -> Recommender:
    """The hand-crafted reference: ease with the time-of-day stage."""
    return Recommender(build_recommender("ease").scorer, stages=[TimeOfDayAdjuster()]).fit(train)


def time_of_day_table(fitted: Mapping[str, Recommender], world: ContextWorld) -> pd.DataFrame:
    """Per model, the share of the test's customers whose top-10 list holds more morning products than evening ones
    for a request at `MORNING`, and at `EVENING` (no device or channel given)."""
    items = fitted[next(iter(fitted))].items_
    dayparts = world.dayparts.reindex(items.external_ids).to_numpy()
    users = np.unique(world.split.test.user_index)
    rows = []
    for name, recommender in fitted.items():
        row: dict[str, Any] = {"model": name}
        for moment in (MORNING, EVENING):
            when = Context(moment=dt.datetime.fromisoformat(moment).replace(tzinfo=dt.UTC))
            lists = np.concatenate([block for _, block, _, _ in recommender.recommend_indices(users, 10, when)])
            parts = np.where(lists >= 0, dayparts[np.maximum(lists, 0)], "")
            morning_first = (parts == "morning").sum(axis=1) > (parts == "evening").sum(axis=1)
            row[f"more morning than evening at {moment[-5:]}"] = float(morning_first.mean())
        rows.append(row)
    return pd.DataFrame(rows)
