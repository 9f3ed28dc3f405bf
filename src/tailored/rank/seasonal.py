"""Seasonality learned from history, and a cap on what a season may take of a list.

**`seasonal`** (adjuster). For each item and week of the year, pooled over the years, its sales against those the
catalogue's sales predict for it (`tailored.rank.lift.periodic_lift`): the item's **lift**. Both are summed over
windows of ``±smoothing_weeks`` and of doubling widths up to the whole year, each window's ratio shrunk towards the
next wider one with ``prior`` pseudo-sales (chosen on held-out users when not given; fewer for an item whose sales
vary over the year beyond chance), so an all-year item with a dozen sales is not zeroed by noise while a Christmas
item, with 40 sales or 4,000, gets a March lift near 0 -- nobody tags it. An item still selling at the end of the
history is exposed from its first sale (a launch is not out of season before it); one that stopped selling, from
the history's start (a summer item is out of season in January, even with a single year of history). If no prior
lets the profiles learned without one user in five predict when those users buy better than the catalogue's curve
(by ``min_gain`` nats), the stage learns nothing: noise is not a season (`tailored.rank.lift.learn_lift`). Each
user's scores are standardised (z-scores over the candidates, softly bounded to ±3) and ``strength * log(lift)`` is
added: the item's odds are multiplied by ``lift ** strength``, so an item that does not sell in a period is (nearly)
absent from it however popular it is. Less than ``min_history_days`` of data cannot show a yearly pattern: the stage
then learns nothing; a request without a date changes nothing either.

**`season-cap`** (re-ranker, learned by default with `seasonal`): the items in season -- a lift of at least 1.5 on
the request's date (`tailored.rank.lift.IN_SEASON`), the reason "in season" -- take at most ``max_share`` of each
list (at least one slot), the best of them first; the best other items fill the rest. A season lifts its items without
evicting everything else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np

from tailored.data.activity import DAY
from tailored.data.dataset import Dataset
from tailored.errors import ConfigError
from tailored.models.base import top_k
from tailored.rank.base import Request, register_stage
from tailored.rank.lift import Cycle, preset

IN_SEASON_TALLY = "in season"
"""The request's tally key under which `SeasonalAdjuster` leaves the items in season for `SeasonCap`."""


def week_of_year(seconds: np.ndarray) -> np.ndarray:
    """Week index 0..52 of unix timestamps (UTC day of the year // 7)."""
    days = (np.asarray(seconds, np.int64) // DAY).astype("datetime64[D]")
    return (days - days.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64) // 7


SEASONS = Cycle(stage="seasonal", class_name="SeasonalAdjuster", buckets=week_of_year, n_buckets=53, unit=DAY,
                smoothing="smoothing_weeks", min_history_days=330, rising="in season", falling="out of season",
                marks=IN_SEASON_TALLY)
SeasonalAdjuster = preset(SEASONS, __name__)


@register_stage("season-cap")
@dataclass(eq=False)
class SeasonCap:
    """Keeps each user's best items while the items in season hold at most ``max(1, floor(max_share * n))`` slots."""

    pool_factor: ClassVar[int] = 1

    max_share: float = 0.5

    def fit(self, dataset: Dataset) -> Self:
        if not 0 < self.max_share <= 1:
            raise ConfigError(f"Stage 'season-cap' parameter max_share = {self.max_share!r} must lie in (0, 1] (the "
                              f"share of a list that items in season may take; 1 leaves the lists as they are).")
        return self

    def rerank(self, items: np.ndarray, scores: np.ndarray, request: Request, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The pool without the items in season beyond the limit, followed by the best items out of season that the
        pool lacks (from the block's adjusted scores), in that order: later re-rankers pick from it, never past the
        cap."""
        seasonal = request.tally.get(IN_SEASON_TALLY)
        if seasonal is None or request.scores is None or self.max_share >= 1:
            return items, scores
        in_season = np.zeros(request.scores.shape[1], bool)
        in_season[: len(seasonal)] = seasonal
        rows = np.arange(len(items))[:, None]
        others = np.where(in_season, -np.inf, request.scores)
        others[np.broadcast_to(rows, items.shape)[items >= 0], items[items >= 0]] = -np.inf
        extra, extra_scores = top_k(others, n)
        pool = np.hstack([items, extra])
        values = np.hstack([scores, extra_scores])
        listed = (pool >= 0) & np.isfinite(values)
        capped = listed & in_season[np.where(listed, pool, 0)]
        keep = listed & (~capped | (np.cumsum(capped, axis=1) <= max(1, math.floor(self.max_share * n))))
        order = np.argsort(~keep, axis=1, kind="stable")
        kept = np.take_along_axis(keep, order, axis=1)
        pool = np.where(kept, np.take_along_axis(pool, order, axis=1), -1)
        values = np.where(kept, np.take_along_axis(values, order, axis=1), -np.inf).astype(scores.dtype)
        return pool, values
