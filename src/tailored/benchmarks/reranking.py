"""`tailored benchmark movielens-100k-reranking`: what diversity and exposure stages cost in accuracy and time, and
what they buy in catalogue coverage, on protocol P1 of PROTOCOLS.md.

The algorithm is fitted once on the P1 training part (every rating a positive; full ranking of the training
items, the user's training items excluded); each setting then only swaps the fitted recommender's ``stages``
(stages that learn are fitted on the same training part). For each setting: NDCG@10, Coverage@10 (distinct items
in all top-10 lists / training items) and Gini@10, their change against no stage, the share of users left with
fewer than 10 items (an exposure cap may run out of items), and the overhead: the best of ``repeats`` timings of
the batch recommendation of all test users with the stages, minus the same without, per user. With
``validation=True`` P1 is applied again inside its own training part (what the defaults are chosen on); otherwise
the test part is scored, for reporting only. Requests are dated the day after the last training interaction, as if
the model served the next day (recent activity is then recent).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailored.benchmarks.movielens import ranking_splits
from tailored.data.activity import DAY
from tailored.eval.evaluator import ranked_lists
from tailored.eval.metrics import RankedLists, metric
from tailored.pipeline.recommender import Recommender, build_recommender
from tailored.rank.base import Reranker, Stage
from tailored.rank.calendar import CalendarAdjuster
from tailored.query import Context
from tailored.rank.diversity import MMRDiversifier
from tailored.rank.recent import RecentActivityBooster
from tailored.rank.rules import BusinessRules
from tailored.rank.time_of_day import TimeOfDayAdjuster
from tailored.rank.exposure import ExposureCap, LongTailBoost
from tailored.split import Split

K = 10
Stages = Sequence[Stage | Reranker]
Row = dict[str, Any]


def default_settings() -> dict[str, Stages]:
    """A grid of the diversity and exposure knobs, the context stages alone, and every kind of stage at once (for
    the overhead; MovieLens items carry no location, so the location stage is left out)."""
    settings: dict[str, Stages] = {}
    settings |= {f"diversity {value}": [MMRDiversifier(diversity=value)] for value in (0.1, 0.3, 0.5, 0.7, 0.9)}
    settings |= {f"exposure-cap {value}": [ExposureCap(max_share=value)] for value in (0.2, 0.1, 0.05, 0.02)}
    settings |= {f"long-tail {boost} head {head}": [LongTailBoost(boost=boost, head_share=head)]
                 for boost in (0.5, 0.7, 1.0) for head in (0.3, 0.5, 0.7)}
    settings |= {"recent-activity": [RecentActivityBooster()], "time-of-day": [TimeOfDayAdjuster()],
                 "calendar": [CalendarAdjuster()]}
    settings["every stage"] = [TimeOfDayAdjuster(), RecentActivityBooster(), CalendarAdjuster(),
                               BusinessRules(promoted={"50": 1.5}), MMRDiversifier(), LongTailBoost()]
    return settings


def reranking_tradeoffs(
    data_dir: str | Path,
    algorithm: str = "ease",
    settings: Mapping[str, Stages] | None = None,
    on_row: Callable[[Row], None] | None = None,
    validation: bool = False,
    repeats: int = 3,
) -> pd.DataFrame:
    """One row per setting (``name -> stages``; default `default_settings`), the first without any stage."""
    split = ranking_splits(Path(data_dir), validation)["P1"]
    recommender = build_recommender(algorithm).fit(split.train)
    view = recommender.restricted_to(split.train.items.ids(np.flatnonzero(split.train.item_counts() > 0)))
    rows: list[Row] = []
    moment = Context(dt.datetime.fromtimestamp(float(split.train.timestamps.max()) + DAY, dt.UTC))
    for name, stages in {"none": [], **(default_settings() if settings is None else settings)}.items():
        for stage in stages:
            stage.fit(split.train)
        view.stages = list(stages)
        lists, seconds = timed_lists(view, split, repeats, moment)
        row = {"setting": name, "ndcg@10": metric(f"ndcg@{K}").value(lists),
               "coverage@10": metric(f"coverage@{K}").value(lists), "gini@10": metric(f"gini@{K}").value(lists),
               "short_lists": float(((lists.items >= 0).sum(axis=1) < K).mean()), "seconds": seconds}
        base = rows[0] if rows else row
        row |= {"ndcg_change": row["ndcg@10"] / base["ndcg@10"] - 1,
                "coverage_ratio": row["coverage@10"] / base["coverage@10"],
                "overhead_ms_per_user": 1000 * (seconds - base["seconds"]) / len(lists.items)}
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return pd.DataFrame(rows)


def timed_lists(recommender: Recommender, split: Split, repeats: int, context: Context) -> tuple[RankedLists, float]:
    """Top-10 lists of every test user and the best of ``repeats`` wall times of the batch recommendation."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        lists = ranked_lists(recommender, split.train, split.test, K, context=context)
        best = min(best, time.perf_counter() - start)
    return lists, best
